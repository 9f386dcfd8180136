"""Entry point for `mitmdump -s addons/veil_addon.py` from a checkout: the packaged
`veil/proxy/mitmdump_entry.py`, importable even when the package is not installed."""

import sys
from pathlib import Path

# Let the script work from a checkout even when the package is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from veil.proxy.mitmdump_entry import addons, veil  # noqa: E402, F401
