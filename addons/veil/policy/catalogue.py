"""The service catalogue: what Veil knows about each AI service, as data (config/services/).

One YAML file per provider; each file lists services under `services:`, each with its hosts
and rules in the policy's own syntax, plus what is known about it:

- `title`, `kind` (`api`, `web-app`, or `storage`: a shared upload store, opt-in because
  listing it decrypts every upload to that store), `envelopes` (how images travel),
  `declares_size` (a size or checksum sent apart from the bytes, which a rewrite can break);
- `flows`: `captured` (seen on the wire: an SDK run through mitmproxy, or third-party code
  that replays the web app), `documented` (the vendor's documentation describes the upload
  format) or `generic` (not captured: protected by the generic envelopes and the egress scan);
- `source`: where the hosts and the flow come from (a documentation page, a capture).

This module reads the files and their descriptive keys, with line-precise problems; the
hosts, rules and settings are read by `reader.py` when a policy includes the service, so
they are checked exactly as a policy's own. A policy names services or groups of them:
`all` (every API and web app), `all-apis`, `all-web-apps`, `upload-storage`, and one group
per provider file (`openai`, `google`, …).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import PolicyError, PolicyProblem
from .model import config_folder
from .values import choices, describe, did_you_mean, line_of

CATALOGUE_FOLDER = config_folder() / "services"

KINDS = ("api", "web-app", "storage")
FLOWS = ("captured", "documented", "generic")
ENVELOPES = (
    "json-data-url", "json-base64", "multipart", "raw", "google-resumable", "openai-uploads",
    "s3-presigned-post", "azure-blob-put", "websocket", "grpc", "connect-protobuf", "trpc-json",
)  # fmt: skip
# Descriptive keys of a catalogue entry; its hosts, rules and settings are the policy's.
ENTRY_KEYS = ("title", "kind", "flows", "envelopes", "declares_size", "source")
FILE_KEYS = ("provider", "services")
GROUPS_BY_KIND = {"all-apis": ("api",), "all-web-apps": ("web-app",), "all": ("api", "web-app"), "upload-storage": ("storage",)}
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    provider: str  # the provider's display name (its file's `provider:`)
    group: str  # the provider group: the file's name without .yaml
    file: str
    title: str
    kind: str
    flows: str
    envelopes: tuple[str, ...]
    declares_size: str
    source: str
    node: MappingNode  # the whole entry: reader.py reads its hosts, rules and settings
    key_node: Node


@dataclass(frozen=True)
class Catalogue:
    entries: dict[str, CatalogueEntry]
    groups: dict[str, tuple[str, ...]]

    def expand(self, name: str) -> tuple[str, ...] | None:
        """The services a name stands for: itself, or a group's members; None when unknown."""
        if name in self.entries:
            return (name,)
        return self.groups.get(name)

    def names(self) -> list[str]:
        return [*self.groups, *self.entries]


def load_catalogue(folder: str | Path = CATALOGUE_FOLDER) -> Catalogue:
    """Every config/services/*.yaml, or one PolicyError listing every problem with its line."""
    reader = _CatalogueReader()
    for path in sorted(Path(folder).glob("*.yaml")):
        reader.read_file(path)
    if not reader.entries and not reader.problems:
        reader.problems.append(PolicyProblem(str(folder), None, "", "no catalogue files (*.yaml) here"))
    groups = reader.groups()
    if reader.problems:
        raise PolicyError(sorted(dict.fromkeys(reader.problems), key=lambda p: (p.source, p.line or 0)))
    return Catalogue(reader.entries, groups)


class _CatalogueReader:
    def __init__(self):
        self.entries: dict[str, CatalogueEntry] = {}
        self.problems: list[PolicyProblem] = []
        self.source = ""

    def problem(self, node: Node | None, path: str, message: str) -> None:
        self.problems.append(PolicyProblem(self.source, line_of(node) if node is not None else None, path, message))

    def read_file(self, path: Path) -> None:
        self.source = str(path)
        try:
            root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            self.problem(None, "", f"cannot read this catalogue file: {error}")
            return
        top = self.mapping(root, "", FILE_KEYS)
        provider = self.text(top.get("provider"), root, "provider")
        group = path.stem
        if not _NAME.fullmatch(group):
            self.problem(root, "", f"the file name '{group}' names the provider group: lower-case letters, digits and '-'")
        if "services" not in top:
            self.problem(root, "services", "missing; list the provider's services")
            return
        for name, (key_node, node) in self.mapping(top["services"][1], "services", None).items():
            self.entry(name, key_node, node, provider or group, group)

    def entry(self, name: str, key_node: Node, node: Node, provider: str, group: str) -> None:
        path = f"services.{name}"
        if not _NAME.fullmatch(name):
            self.problem(key_node, path, "a catalogue name uses lower-case letters, digits and '-' (policies and audit records name it)")
        if name in self.entries:
            self.problem(key_node, path, f"already defined in {self.entries[name].file}, line {line_of(self.entries[name].key_node)}")
            return
        if not isinstance(node, MappingNode):
            self.problem(node, path, f"expected a mapping, got {describe(node)}")
            return
        fields = {key.value: value for key, value in node.value if isinstance(key, ScalarNode) and key.value in ENTRY_KEYS}
        kind = self.one_of(fields.get("kind"), node, f"{path}.kind", KINDS)
        flows = self.one_of(fields.get("flows"), node, f"{path}.flows", FLOWS)
        envelopes = self.envelopes(fields.get("envelopes"), node, f"{path}.envelopes")
        texts = {key: self.text(fields.get(key), node, f"{path}.{key}") for key in ("title", "declares_size", "source")}
        if None in (kind, flows, *texts.values()):
            return
        self.entries[name] = CatalogueEntry(name, provider, group, self.source, texts["title"], kind, flows, envelopes,
                                            texts["declares_size"], texts["source"], node, key_node)  # fmt: skip

    def groups(self) -> dict[str, tuple[str, ...]]:
        groups = {name: tuple(e.name for e in self.entries.values() if e.kind in kinds) for name, kinds in GROUPS_BY_KIND.items()}
        for entry in self.entries.values():
            if entry.group in GROUPS_BY_KIND:
                continue  # upload-storage.yaml: its group is its kind's
            groups.setdefault(entry.group, ())
            groups[entry.group] += (entry.name,)
        for name in set(groups) & set(self.entries):
            entry = self.entries[name]
            self.source = entry.file
            self.problem(entry.key_node, f"services.{name}", f"'{name}' is also the name of a group; rename the service")
        return groups

    # ---- values ----

    def mapping(self, node: Node | None, path: str, allowed: tuple[str, ...] | None) -> dict[str, tuple[Node, Node]]:
        if not isinstance(node, MappingNode):
            self.problem(node, path, f"expected a mapping, got {describe(node) if node is not None else 'nothing'}")
            return {}
        entries = {}
        for key_node, value_node in node.value:
            key = getattr(key_node, "value", None)
            if allowed is not None and key not in allowed:
                self.problem(key_node, f"{path}.{key}".strip("."), f"unknown key; {did_you_mean(str(key), allowed)}allowed here: {choices(allowed)}")
            elif key in entries:
                self.problem(key_node, f"{path}.{key}".strip("."), f"duplicate key (first at line {line_of(entries[key][0])})")
            else:
                entries[key] = (key_node, value_node)
        return entries

    def text(self, entry: tuple[Node, Node] | Node | None, parent: Node, path: str) -> str | None:
        node = entry[1] if isinstance(entry, tuple) else entry
        if node is None:
            self.problem(parent, path, "missing; every catalogue entry says this (see config/services/README)")
            return None
        if not isinstance(node, ScalarNode) or not node.value.strip():
            self.problem(node, path, f"expected a text, got {describe(node)}")
            return None
        return node.value.strip()

    def one_of(self, node: Node | None, parent: Node, path: str, allowed: tuple[str, ...]) -> str | None:
        value = self.text(node, parent, path)
        if value is not None and value not in allowed:
            self.problem(node, path, f"'{value}' is not allowed; {did_you_mean(value, allowed)}use one of {choices(allowed)}")
            return None
        return value

    def envelopes(self, node: Node | None, parent: Node, path: str) -> tuple[str, ...]:
        if not isinstance(node, SequenceNode) or not node.value:
            self.problem(node or parent, path, f"expected a list of envelopes, e.g. [multipart, json-data-url]; known: {choices(ENVELOPES)}")
            return ()
        names = [self.one_of(item, node, f"{path}[{index}]", ENVELOPES) for index, item in enumerate(node.value)]
        return tuple(name for name in names if name)
