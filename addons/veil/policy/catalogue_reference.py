"""The catalogue table of docs/services.md, rendered from config/services/ at docs build time
(docs/hooks/service_catalogue.py), so the published list of services, hosts and sources is
always the catalogue's own."""

from __future__ import annotations

from .catalogue import CATALOGUE_FOLDER, Catalogue, CatalogueEntry, load_catalogue

_KIND_ORDER = {"api": 0, "web-app": 1, "storage": 2}


def render_catalogue(folder=CATALOGUE_FOLDER) -> str:
    """A summary line and one table row per service. Raises PolicyError for a broken catalogue."""
    catalogue = load_catalogue(folder)
    entries = sorted(catalogue.entries.values(), key=lambda entry: (_KIND_ORDER[entry.kind], entry.provider, entry.name))
    header = ["service", "kind", "hosts", "flows", "envelopes", "size or checksum declared apart", "source"]
    lines = [_summary(catalogue), "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(cell) for cell in _row(entry)) + " |" for entry in entries]
    return "\n".join(lines) + "\n"


def _summary(catalogue: Catalogue) -> str:
    entries = list(catalogue.entries.values())
    hosts = sum(len(_hosts(entry)) for entry in entries)
    known = sum(entry.flows != "generic" for entry in entries)
    groups = ", ".join(f"`{name}` ({len(members)})" for name, members in catalogue.groups.items())
    return (f"**{len(entries)} services, {hosts} host patterns.** Flows known for {known} "
            f"({sum(e.flows == 'captured' for e in entries)} captured, {sum(e.flows == 'documented' for e in entries)} "
            f"documented), generic for {len(entries) - known}. Groups: {groups}.")  # fmt: skip


def _row(entry: CatalogueEntry) -> list[str]:
    hosts = ", ".join(f"`{host}`" for host in _hosts(entry))
    flows = {"captured": "known (captured)", "documented": "known (documented)", "generic": "generic (not captured)"}[entry.flows]
    envelopes = ", ".join(entry.envelopes)
    return [f"`{entry.name}`: {entry.title}", entry.kind, hosts, flows, envelopes, entry.declares_size, entry.source]


def _hosts(entry: CatalogueEntry) -> list[str]:
    """The entry's host patterns as written (reader.py checks them when a policy includes it)."""
    for key, value in entry.node.value:
        if getattr(key, "value", None) == "hosts":
            return [getattr(item, "value", "") for item in getattr(value, "value", [])]
    return []


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
