"""mkdocs hook: renders the service catalogue (config/services/) into docs/services.md at
build time, so the published table of services, hosts, flows and sources cannot drift from
the catalogue Veil loads. A catalogue file with a problem fails the build."""

import sys
from pathlib import Path

# Document this checkout's code and catalogue, whatever `veil` the interpreter has installed.
ADDONS = Path(__file__).resolve().parents[2] / "addons"
sys.path.insert(0, str(ADDONS))

from mkdocs.exceptions import PluginError  # noqa: E402
from veil.policy import PolicyError  # noqa: E402
from veil.policy.catalogue_reference import render_catalogue  # noqa: E402

PAGE = "services.md"
PLACEHOLDER = "<!-- service-catalogue: rendered from config/services/ -->"
CATALOGUE = Path(__file__).resolve().parents[2] / "config" / "services"


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri != PAGE:
        return markdown
    if PLACEHOLDER not in markdown:
        raise PluginError(f"docs/{PAGE} lost its placeholder line {PLACEHOLDER!r}; the catalogue would be missing")
    try:
        table = render_catalogue(CATALOGUE)
    except PolicyError as error:
        raise PluginError(f"the service catalogue has problems:\n{error}") from None
    return markdown.replace(PLACEHOLDER, table)
