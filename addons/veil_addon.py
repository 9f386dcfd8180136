"""Entry point for `mitmdump -s addons/veil_addon.py`: builds the Veil addons, nothing else."""

import sys
from pathlib import Path

# Let the script work from a checkout even when the package is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from veil.proxy.addon import Veil  # noqa: E402
from veil.proxy.pac_addon import ServePac  # noqa: E402

veil = Veil()
addons = [veil, ServePac(lambda: veil.policy)]
