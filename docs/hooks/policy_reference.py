"""mkdocs hook: renders the policy reference into docs/policy-reference.md at build time.

The tables come from addons/veil/policy/reference.py, which reads the keys, defaults and
allowed values from the policy reader itself; a key without a description raises there,
and this hook lets it fail the build. The page keeps only a placeholder, so the published
reference is always the code's.
"""

import sys
from pathlib import Path

# Document this checkout's code, whatever `veil` the running interpreter has installed.
ADDONS = Path(__file__).resolve().parents[2] / "addons"
sys.path.insert(0, str(ADDONS))

from mkdocs.exceptions import PluginError  # noqa: E402
from veil.policy.reference import UndocumentedPolicyKeys, render_reference  # noqa: E402

PAGE = "policy-reference.md"
PLACEHOLDER = "<!-- policy-reference: rendered from addons/veil/policy/reference.py -->"


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri != PAGE:
        return markdown
    if PLACEHOLDER not in markdown:
        raise PluginError(f"docs/{PAGE} lost its placeholder line {PLACEHOLDER!r}; the reference would be missing")
    try:
        reference = render_reference()
    except UndocumentedPolicyKeys as error:  # a clean build error rather than a traceback
        raise PluginError(str(error)) from None
    return markdown.replace(PLACEHOLDER, reference)
