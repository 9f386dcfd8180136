"""The script `veil run` gives to `mitmdump -s`: builds the Veil addons, nothing else.

It lives inside the package so an installed Veil (a wheel, no checkout) has it too;
addons/veil_addon.py is the same for `mitmdump -s` from a checkout.
"""

from veil.proxy.addon import Veil
from veil.proxy.pac_addon import ServePac

veil = Veil()
addons = [veil, ServePac(lambda: veil.policy)]
