"""Property-based fuzzing (hypothesis) of the core, the envelopes and the proxy.

The profile is chosen by VEIL_FUZZ_PROFILE: `ci` (default, bounded) or `big`
(scripts/fuzz). See conftest.py.
"""
