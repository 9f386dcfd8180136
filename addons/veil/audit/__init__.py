"""Reading, verifying and summarising Veil's audit log: pure functions over lines.

`chain` defines the hash chain both the writer (`veil.audit.AuditLog`) and the verifier
use; `files` knows how rotation names files; `verify`, `records`, `summary`, `ecs` and
`html_report` read logs as streams, one line at a time, so memory stays bounded
however long the log is. `veil audit …` (cli_audit.py) is a thin adapter over them.
"""
