"""The `veil` command: one module per group of subcommands.

Layer rule: `cli` sits on top and may import every other layer; nothing imports `cli`.
"""
