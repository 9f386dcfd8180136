"""Reading a policy file: YAML in, an immutable `Policy` out, or one `PolicyError` listing
every problem found, each as `file, line N: dotted.path: what is wrong; what is allowed`.

The file is read through PyYAML's node tree (not `safe_load`) so that every value keeps its
line number, duplicate keys are caught (PyYAML would silently keep the last one) and words
like `off` stay words (YAML 1.1 would turn `faces: off` into the boolean false). Settings
are resolved here, once: built-in defaults <- `defaults:` <- service <- rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..clean.options import DetectionSettings, FaceMode
from .catalogue import (
    CATALOGUE_FOLDER,
    ENTRY_KEYS,
    Catalogue,
    CatalogueEntry,
    load_catalogue,
)
from .errors import PolicyError, PolicyProblem
from .matching import UPLOAD_METHODS, HostPattern, PathPattern
from .model import (
    CATCH_ALL_SERVICE,
    DEFAULT_POLICY_PATH,
    SUPPORTED_VERSION,
    Action,
    ImageReferences,
    Limits,
    OnError,
    OpaqueFiles,
    Documents,
    DocumentComments,
    OfficeMacros,
    UnknownMembers,
    Policy,
    Protect,
    Route,
    Rule,
    Service,
    UnnamedDestinations,
    UnparsedBodies,
)
from .values import (
    YAML_SCALARS,
    Invalid,
    choices,
    describe,
    did_you_mean,
    enum_reader,
    line_of,
    positive_reader,
    range_reader,
    read_bool,
    read_host_pattern,
    read_method,
    read_path_pattern,
    read_rule_name,
    read_text,
    read_user_name,
)


def load_policy(path: str | Path, catalogue_folder: str | Path = CATALOGUE_FOLDER) -> Policy:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError([PolicyProblem(source, None, "", f"cannot read the policy: {error}")]) from None
    return load_policy_text(text, source, catalogue_folder)


def load_default_policy() -> Policy:
    return load_policy(DEFAULT_POLICY_PATH)


def load_policy_text(text: str, source_name: str = "<policy>", catalogue_folder: str | Path = CATALOGUE_FOLDER) -> Policy:
    root = _compose(text, source_name)
    reader = _PolicyReader(source_name, lambda: load_catalogue(catalogue_folder))
    policy = reader.read(root)
    if reader.problems:
        raise PolicyError(_in_document_order(reader.problems))
    assert policy is not None
    return policy


def _compose(text: str, source: str) -> Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        raise PolicyError([_syntax_problem(error, source)]) from None
    except yaml.YAMLError as error:  # e.g. a control character PyYAML refuses outright
        raise PolicyError([PolicyProblem(source, None, "", f"not valid YAML: {error}")]) from None


def _syntax_problem(error: yaml.MarkedYAMLError, source: str) -> PolicyProblem:
    mark = error.problem_mark or error.context_mark
    line = mark.line + 1 if mark else None
    what = error.problem or error.context or "not valid YAML"
    if error.context and error.problem:
        started = error.context_mark.line + 1 if error.context_mark else None
        where = f" that starts at line {started}" if started and started != line else ""
        what += f" ({error.context}{where})"
    return PolicyProblem(source, line, "", f"YAML syntax error: {what}")


def _in_document_order(problems: list[PolicyProblem]) -> list[PolicyProblem]:
    unique = list(dict.fromkeys(problems))
    # The policy's own problems first, then each catalogue file's, each in line order.
    return sorted(unique, key=lambda problem: (problem.source != problems[0].source, problem.source, problem.line or 0))


# ---- settings shared by defaults, services and rules -------------------------------------

_SETTING_READERS: dict[str, Callable[[Node], Any]] = {
    "action": enum_reader(Action),
    "strip": read_bool,
    "faces": enum_reader(FaceMode),
    "keep_icc": read_bool,
    "on_error": enum_reader(OnError),
    "preserve_length": read_bool,
    "unparsed_bodies": enum_reader(UnparsedBodies),
    "image_references": enum_reader(ImageReferences),
    "opaque_files": enum_reader(OpaqueFiles),
    "documents": enum_reader(Documents),
    "unknown_members": enum_reader(UnknownMembers),
    "document_comments": enum_reader(DocumentComments),
    "office_macros": enum_reader(OfficeMacros),
}
_LIMIT_READERS: dict[str, Callable[[Node], Any]] = {
    "max_image_pixels": positive_reader(accept_fractions=False),
    "max_body_bytes": positive_reader(accept_fractions=False),
    "image_timeout_seconds": positive_reader(accept_fractions=True),
    "max_document_pages": positive_reader(accept_fractions=False),
    "max_archive_members": positive_reader(accept_fractions=False),
    "max_inflated_bytes": positive_reader(accept_fractions=False),
}


# `detection:` (see DetectionSettings for what each one does).
_DETECTION_READERS: dict[str, Callable[[Node], Any]] = {
    "threshold": range_reader(True, 0.0, 1.0, low_inclusive=False),
    "nms_iou": range_reader(True, 0.0, 1.0, low_inclusive=False),
    "min_face_px": range_reader(False, 4, 10_000),
    "max_detect_long_side": range_reader(False, 64, 100_000),
    "upscale_below": range_reader(False, 0, 10_000),
    "tile_px": range_reader(False, 128, 8192, multiple=32),
    "tile_overlap_px": range_reader(False, 0, 4096),
    "largest_face_px": range_reader(False, 32, 4096),
    "mask_scale": range_reader(True, 1.0, 4.0),
    "mask_min_margin_px": range_reader(False, 0, 1000),
}
SETTING_KEYS = (*_SETTING_READERS, "limits", "detection")
TOP_LEVEL_KEYS = ("version", "defaults", "groups", "catalogue", "services", "protect", "tunnel", "unnamed_destinations")
SERVICE_KEYS = ("hosts", "rules", *SETTING_KEYS)
CATALOGUE_KEYS = ("include", "except")
# A `services:` entry without hosts that names a catalogue service adjusts it: rules of its
# own (tried before the catalogue's), settings for the whole service, settings per rule.
ADJUSTMENT_KEYS = ("rules", "rule_settings", *SETTING_KEYS)
RULE_KEYS = ("name", "paths", "methods", "users", "groups", *SETTING_KEYS)

_SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


@dataclass(frozen=True)
class _Setting:
    """A value with where it was written, so a conflict can point at the right line."""

    value: Any
    line: int | None
    path: str
    # 0 built in, 1 defaults, 2 service, 3 rule; for a catalogue service, 4 the policy's
    # settings for the service and 5 its rule_settings: higher is more specific, and the
    # policy always has the last word over the catalogue.
    depth: int
    source: str = ""  # the file it was written in (the policy or a catalogue file)


# A layer maps setting names ("faces", "limits.max_body_bytes") to where they were set.
_Layer = dict[str, _Setting]


def _built_in_layer() -> _Layer:
    built_in = Rule()
    layer = {key: _Setting(getattr(built_in, key), None, "", 0) for key in _SETTING_READERS}
    for key in _LIMIT_READERS:
        layer[f"limits.{key}"] = _Setting(getattr(built_in.limits, key), None, "", 0)
    for key in _DETECTION_READERS:
        layer[f"detection.{key}"] = _Setting(getattr(built_in.detection, key), None, "", 0)
    return layer


def _rule_from(layer: _Layer) -> Rule:
    limits = Limits(**{key: layer[f"limits.{key}"].value for key in _LIMIT_READERS})
    detection = DetectionSettings(**{key: layer[f"detection.{key}"].value for key in _DETECTION_READERS})
    return Rule(**{key: layer[key].value for key in _SETTING_READERS}, limits=limits, detection=detection)


class _PolicyReader:
    """Walks the node tree once, collecting every problem instead of stopping at the first."""

    def __init__(self, source: str, catalogue_loader: Callable[[], Catalogue]):
        self.source = source  # the file being read: the policy, or a catalogue file for a while
        self.policy_source = source
        self.problems: list[PolicyProblem] = []
        self.host_nodes: dict[tuple[str, str], tuple[str, Node]] = {}  # (service, pattern) -> (file, where written)
        self.groups: dict[str, frozenset[str]] = {}  # top-level `groups:`, read before the services
        self._catalogue_loader = catalogue_loader
        self._catalogue: Catalogue | None = None

    @property
    def catalogue(self) -> Catalogue:
        """Read on first use only: a policy that names no catalogue service never needs it."""
        if self._catalogue is None:
            try:
                self._catalogue = self._catalogue_loader()
            except PolicyError as error:
                self.problems.extend(error.problems)
                self._catalogue = Catalogue({}, {})
        return self._catalogue

    @contextmanager
    def reading(self, source: str) -> Iterator[None]:
        """Problems found meanwhile belong to `source` (a catalogue file)."""
        previous, self.source = self.source, source
        try:
            yield
        finally:
            self.source = previous

    def problem(self, node: Node | None, path: str, message: str) -> None:
        line = line_of(node) if node is not None else 1
        self.problems.append(PolicyProblem(self.source, line, path, message))

    # ---- structure helpers ----

    def mapping(self, node: Node, path: str, allowed: Iterable[str] | None) -> dict[str, tuple[Node, Node]]:
        """Key -> (key node, value node). Reports non-mappings, duplicate and unknown keys."""
        if not isinstance(node, MappingNode):
            self.problem(node, path, f"expected a mapping of keys to values, got {describe(node)}")
            return {}
        entries: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key = self.key(key_node, path, allowed)
            if key is None:
                continue
            if key in entries:
                first = line_of(entries[key][0])
                self.problem(
                    key_node,
                    _join(path, key),
                    f"duplicate key (first at line {first}); YAML would silently keep only the last one, so remove one",
                )
                continue
            entries[key] = (key_node, value_node)
        return entries

    def key(self, key_node: Node, path: str, allowed: Iterable[str] | None) -> str | None:
        if not isinstance(key_node, ScalarNode) or key_node.tag.endswith(":null"):
            self.problem(key_node, path, f"keys must be plain names, got {describe(key_node)}")
            return None
        key = key_node.value
        if allowed is not None and key not in allowed:
            allowed = list(allowed)
            hint = did_you_mean(key, allowed)
            self.problem(key_node, _join(path, key), f"unknown key; {hint}allowed here: {choices(allowed)}")
            return None
        return key

    def sequence(self, node: Node, path: str, example: str) -> list[Node] | None:
        if not isinstance(node, SequenceNode):
            self.problem(node, path, f"expected a list, e.g. {example}; got {describe(node)}")
            return None
        if not node.value:
            self.problem(node, path, f"the list is empty; list at least one, e.g. {example}")
            return None
        return node.value

    def value(self, reader: Callable[[Node], Any], node: Node, path: str) -> Any:
        try:
            return reader(node)
        except Invalid as invalid:
            self.problem(node, path, str(invalid))
            return None

    # ---- the document ----

    def read(self, root: Node | None) -> Policy | None:
        if root is None:
            self.problem(None, "", "the policy is empty; it starts with 'version: 1', then 'services:'")
            return None
        entries = self.mapping(root, "", TOP_LEVEL_KEYS)
        if not isinstance(root, MappingNode):
            return None
        self.version(entries.get("version"), root)
        defaults_layer = {**_built_in_layer(), **self.defaults(entries.get("defaults"))}
        self.check_combination(defaults_layer)
        self.groups = self.read_groups(entries.get("groups"))
        protect = self.optional(entries.get("protect"), "protect", enum_reader(Protect), Protect.AI_SERVICES)
        unnamed = self.optional(entries.get("unnamed_destinations"), "unnamed_destinations",
                                enum_reader(UnnamedDestinations), UnnamedDestinations.TUNNEL)  # fmt: skip
        included = self.catalogue_selection(entries.get("catalogue"))
        services = self.services(entries.get("services"), root, defaults_layer, included, protect)
        tunnel = self.tunnel(entries.get("tunnel"), services)
        if self.problems:
            return None
        defaults = _rule_from(defaults_layer)
        catch_all = None
        if protect is Protect.ALL_UPLOADS:
            catch_all = Service(CATCH_ALL_SERVICE, (), (Route("all-uploads", None, UPLOAD_METHODS, defaults),))
        return Policy(self.source, defaults, services, self.groups, protect, tunnel, unnamed, catch_all)

    def optional(self, entry: tuple[Node, Node] | None, path: str, reader: Callable[[Node], Any], default: Any) -> Any:
        if entry is None:
            return default
        value = self.value(reader, entry[1], path)
        return default if value is None else value

    def version(self, entry: tuple[Node, Node] | None, root: Node) -> None:
        if entry is None:
            self.problem(root, "version", f"missing; add 'version: {SUPPORTED_VERSION}' at the top")
            return
        node = entry[1]
        if isinstance(node, ScalarNode) and node.tag.endswith(":int"):
            if YAML_SCALARS.construct_yaml_int(node) == SUPPORTED_VERSION:
                return
        self.problem(node, "version", f"{describe(node)} is not supported; this Veil reads version {SUPPORTED_VERSION}")

    def defaults(self, entry: tuple[Node, Node] | None) -> _Layer:
        if entry is None:
            return {}
        return self.settings(self.mapping(entry[1], "defaults", SETTING_KEYS), "defaults", depth=1)

    def settings(self, entries: dict[str, tuple[Node, Node]], path: str, depth: int) -> _Layer:
        """The setting keys present in an already-read mapping, as a layer."""
        layer: _Layer = {}
        for key, reader in _SETTING_READERS.items():
            if key in entries:
                self.setting(layer, key, reader, entries[key][1], _join(path, key), depth)
        if "limits" in entries:
            limits_path = _join(path, "limits")
            limit_entries = self.mapping(entries["limits"][1], limits_path, _LIMIT_READERS)
            for key, (_, node) in limit_entries.items():
                self.setting(layer, f"limits.{key}", _LIMIT_READERS[key], node, _join(limits_path, key), depth)
        if "detection" in entries:
            detection_path = _join(path, "detection")
            detection_entries = self.mapping(entries["detection"][1], detection_path, _DETECTION_READERS)
            for key, (_, node) in detection_entries.items():
                self.setting(layer, f"detection.{key}", _DETECTION_READERS[key], node, _join(detection_path, key), depth)
        return layer

    def setting(self, layer: _Layer, key: str, reader: Callable[[Node], Any], node: Node, path: str, depth: int) -> None:
        value = self.value(reader, node, path)
        if value is not None:
            layer[key] = _Setting(value, line_of(node), path, depth, self.source)

    def check_combination(self, layer: _Layer) -> None:
        """Cleaning always removes metadata: masking re-encodes from pixels, which drops it
        anyway, and the core has no way to keep it. So `strip: false` only makes sense for
        rules that never clean (allow, block)."""
        self.check_tiles(layer)
        action, strip = layer["action"], layer["strip"]
        if action.value not in (Action.SANITISE, Action.MONITOR) or strip.value:
            return
        advice = "cleaning always removes metadata; use action: allow to pass images unchanged"
        if strip.depth >= action.depth:
            origin = f"from {action.path}, line {action.line}" if action.line else "the built-in action"
            message = f"strip: false cannot be combined with action: {action.value.value} ({origin}); {advice}"
            self.problems.append(PolicyProblem(strip.source or self.source, strip.line, strip.path, message))
        else:
            origin = f"from {strip.path}, line {strip.line}"
            message = f"action: {action.value.value} needs strip: true, but strip is false ({origin}); {advice}"
            self.problems.append(PolicyProblem(action.source or self.source, action.line, action.path, message))

    def check_tiles(self, layer: _Layer) -> None:
        """Tiles overlap by at least tile_overlap_px, and the coarsest pass by the largest face,
        so both must fit in half a tile, or the windows could not advance (or faces be cut)."""
        tile = layer["detection.tile_px"]
        for key in ("largest_face_px", "tile_overlap_px"):
            self.check_half_tile(layer[f"detection.{key}"], key, tile)

    def check_half_tile(self, part: _Setting, key: str, tile: _Setting) -> None:
        if part.value * 2 <= tile.value:
            return
        blame = part if part.depth >= tile.depth else tile
        if blame.line is None:
            return  # both built in: cannot happen with the shipped defaults

        def origin(setting: _Setting) -> str:
            if setting is blame:
                return "here"
            return f"from {setting.path}, line {setting.line}" if setting.line else "built in"

        why = "the largest face fits whole in a tile" if key == "largest_face_px" else "the tiles advance"
        message = (
            f"detection.{key} ({part.value}, {origin(part)}) must be at most half of "
            f"detection.tile_px ({tile.value}, {origin(tile)}), so {why}; raise tile_px or lower {key}"
        )
        self.problems.append(PolicyProblem(blame.source or self.source, blame.line, blame.path, message))

    # ---- services ----

    def services(
        self, entry: tuple[Node, Node] | None, root: Node, defaults: _Layer, included: list[str] | None, protect: Protect
    ) -> tuple[Service, ...]:
        """The policy's own services, then the catalogue's it includes (each adjusted by a
        `services:` entry of its name, or replaced by one that lists its own hosts)."""
        written: dict[str, tuple[Node, Node]] = {}
        if entry is not None:
            written = self.mapping(entry[1], "services", allowed=None)
            if isinstance(entry[1], MappingNode) and not entry[1].value:
                self.problem(entry[1], "services", "no services; the policy would protect nothing")
        elif included is None and protect is Protect.AI_SERVICES:
            self.problem(root, "services", "missing; list the services to protect, each with its hosts, "
                         "or include catalogue services: catalogue: {include: [all]}")  # fmt: skip
        services: list[Service] = []
        adjustments: dict[str, tuple[Node, Node]] = {}
        for name, (key_node, node) in written.items():
            if self.adjusts_catalogue(name, key_node, node):
                adjustments[name] = (key_node, node)
            else:
                services.append(self.service(name, key_node, node, defaults))
        own = {service.name for service in services}
        for name in dict.fromkeys([*(included or []), *adjustments]):
            if name not in own and name in self.catalogue.entries:
                services.append(self.catalogue_service(self.catalogue.entries[name], defaults, adjustments.get(name)))
        self.check_hosts_unique(tuple(services))
        return tuple(services)

    def adjusts_catalogue(self, name: str, key_node: Node, node: Node) -> bool:
        """A `services:` entry without hosts adjusts the catalogue service of its name."""
        if not isinstance(node, MappingNode) or any(getattr(key, "value", None) == "hosts" for key, _ in node.value):
            return False
        return name in self.catalogue.entries

    def service(self, name: str, key_node: Node, node: Node, defaults: _Layer) -> Service:
        path = _join("services", name)
        if not _SERVICE_NAME.fullmatch(name):
            self.problem(key_node, path, "a service name uses letters, digits, '-' and '_' (it appears in audit records)")
        entries = self.mapping(node, path, SERVICE_KEYS)
        if not isinstance(node, MappingNode):
            return Service(name, (), ())
        hosts = self.hosts(entries.get("hosts"), node, path)
        self.host_nodes.update({(name, pattern.text): (self.source, item) for pattern, item in hosts.items()})
        layer = {**defaults, **self.settings(entries, path, depth=2)}
        routes = self.routes(entries.get("rules"), path, name, layer)
        return Service(name, tuple(hosts), routes)

    def catalogue_service(self, entry: CatalogueEntry, defaults: _Layer, adjustment: tuple[Node, Node] | None) -> Service:
        """A catalogue entry read like a policy's service (its problems point into its file),
        with the policy's adjustments on top: the policy has the last word."""
        path = _join("services", entry.name)
        with self.reading(entry.file):
            entries = self.mapping(entry.node, path, (*SERVICE_KEYS, *ENTRY_KEYS))
            hosts = self.hosts(entries.get("hosts"), entry.node, path)
            self.host_nodes.update({(entry.name, pattern.text): (self.source, item) for pattern, item in hosts.items()})
            layer = {**defaults, **self.settings(entries, path, depth=2)}
        own_rules, overlay = self.adjustment(entry.name, adjustment, layer, _rule_names(entries.get("rules"), entry.name))
        with self.reading(entry.file):
            routes = self.routes(entries.get("rules"), path, entry.name, layer, overlay)
        # The policy's own rules come first on purpose (an exception for a group, a block for
        # everyone): one that makes a catalogue rule unreachable is an override, not a mistake,
        # so only their names are checked against the catalogue's.
        for route in own_rules:
            clash = next((r for r in routes if r.name == route.name), None)
            if clash is not None:
                node = adjustment[1] if adjustment else entry.node
                self.problem(node, _join(path, "rules"), f"'{route.name}' is already the name of a rule of the catalogue's "
                             f"{entry.name} ({entry.file}, line {clash.line}); use another name, or rule_settings to adjust it")  # fmt: skip
        return Service(entry.name, tuple(hosts), (*own_rules, *routes), from_catalogue=True)

    def adjustment(
        self, name: str, adjustment: tuple[Node, Node] | None, catalogue_layer: _Layer, rule_names: list[str]
    ) -> tuple[tuple[Route, ...], Callable[[str], _Layer]]:
        """The policy's `services.<name>` for a catalogue service: its own rules (tried first)
        and the overlay of settings each catalogue rule gets (service-wide, then per rule)."""
        if adjustment is None:
            return (), lambda rule: {}
        path = _join("services", name)
        entries = self.mapping(adjustment[1], path, ADJUSTMENT_KEYS)
        service_wide = self.settings(entries, path, depth=4)
        per_rule = self.rule_settings(entries.get("rule_settings"), _join(path, "rule_settings"), rule_names)
        own_rules = ()
        if "rules" in entries:
            own_rules = self.routes(entries["rules"], path, name, {**catalogue_layer, **service_wide})
        return own_rules, lambda rule: {**service_wide, **per_rule.get(rule, {})}

    def rule_settings(self, entry: tuple[Node, Node] | None, path: str, rule_names: list[str]) -> dict[str, _Layer]:
        if entry is None:
            return {}
        layers = {}
        for rule, (key_node, node) in self.mapping(entry[1], path, allowed=None).items():
            if rule not in rule_names:
                hint = did_you_mean(rule, rule_names)
                self.problem(key_node, _join(path, rule), f"the catalogue service has no rule '{rule}'; {hint}its rules: {choices(rule_names)}")
                continue
            layers[rule] = self.settings(self.mapping(node, _join(path, rule), SETTING_KEYS), _join(path, rule), depth=5)
        return layers

    def catalogue_selection(self, entry: tuple[Node, Node] | None) -> list[str] | None:
        """`catalogue: {include: [...], except: [...]}`: the catalogue services included, in
        order; None without a `catalogue:` key."""
        if entry is None:
            return None
        entries = self.mapping(entry[1], "catalogue", CATALOGUE_KEYS)
        if isinstance(entry[1], MappingNode) and "include" not in entries:
            self.problem(entry[1], "catalogue.include", "missing; name catalogue services or groups, e.g. include: [all]")
        included = self.catalogue_names(entries.get("include"), "catalogue.include")
        excepted = self.catalogue_names(entries.get("except"), "catalogue.except")
        for name, node in excepted.items():
            if name not in included:
                self.problem(node, "catalogue.except", f"'{name}' is not included, so excepting it changes nothing")
        return [name for name in included if name not in excepted]

    def catalogue_names(self, entry: tuple[Node, Node] | None, path: str) -> dict[str, Node]:
        """Service and group names, expanded to services: {service: the item that named it}."""
        names: dict[str, Node] = {}
        if entry is None:
            return names
        for index, item in enumerate(self.sequence(entry[1], path, "[all-apis, chatgpt-web]") or []):
            name = self.value(read_text, item, f"{path}[{index}]")
            if name is None:
                continue
            expanded = self.catalogue.expand(name)
            if expanded is None:
                hint = did_you_mean(name, self.catalogue.names())
                groups = choices(group for group in self.catalogue.groups)
                self.problem(item, f"{path}[{index}]", f"unknown catalogue service or group '{name}'; {hint}groups: {groups}")
                continue
            names.update({service: item for service in expanded if service not in names})
        return names

    def tunnel(self, entry: tuple[Node, Node] | None, services: tuple[Service, ...]) -> tuple[HostPattern, ...]:
        """`tunnel:` hosts are never decrypted; one that would hide a named service's exact
        host is reported, since that service would silently lose its protection."""
        if entry is None:
            return ()
        example = 'tunnel: ["*.mybank.example", "pinned-app.example.com"]'
        patterns = self.unique_items(entry[1], "tunnel", example, read_host_pattern, lambda pattern: pattern.text)
        for pattern, node in patterns.items():
            hidden = [(s.name, h.text) for s in services for h in s.hosts if not h.is_wildcard and pattern.matches(h.text)]
            if hidden:
                self.problem(node, "tunnel", f"'{pattern.text}' would leave {hidden[0][1]} of service '{hidden[0][0]}' "
                             "unprotected; except the service instead (catalogue.except), or narrow the pattern")  # fmt: skip
        return tuple(patterns)

    def hosts(self, entry: tuple[Node, Node] | None, service_node: Node, path: str) -> dict[HostPattern, Node]:
        hosts_path = _join(path, "hosts")
        if entry is None:
            example = 'hosts: ["api.example.com"]'
            name = path.split(".", 1)[-1]
            hint = did_you_mean(name, self.catalogue.entries).strip() or "config/services/ lists them"
            self.problem(service_node, hosts_path, f"missing; list the host names this service uses, e.g. {example}, "
                         f"or name a catalogue service to adjust it ({hint})")  # fmt: skip
            return {}
        example = 'hosts: ["api.example.com", "*.example.net"]'
        return self.unique_items(entry[1], hosts_path, example, read_host_pattern, lambda pattern: pattern.text)

    def check_hosts_unique(self, services: tuple[Service, ...]) -> None:
        """A host pattern belongs to one service; otherwise which one records it is a guess."""
        owner: dict[str, str] = {}
        for service in services:
            for pattern in service.hosts:
                if pattern.text in owner:
                    source, node = self.host_nodes[(service.name, pattern.text)]
                    message = f"'{pattern.text}' is already listed by service '{owner[pattern.text]}'"
                    path = _join("services", service.name, "hosts")
                    with self.reading(source):
                        self.problem(node, path, f"{message}; a host belongs to one service")
                else:
                    owner[pattern.text] = service.name

    # ---- rules ----

    def routes(
        self, entry: tuple[Node, Node] | None, path: str, service: str, layer: _Layer, overlay: Callable[[str], _Layer] = lambda rule: {}
    ) -> tuple[Route, ...]:
        """`overlay(rule name)`: settings laid over each rule's own (the policy's adjustments
        of a catalogue service)."""
        if entry is None:  # no rules: one catch-all rule with the service's settings
            layer = {**layer, **overlay(f"{service}#0")}
            self.check_combination(layer)
            return (Route(f"{service}#0", None, UPLOAD_METHODS, _rule_from(layer)),)
        rules_path = _join(path, "rules")
        items = self.sequence(entry[1], rules_path, "rules: [{paths: [\"/v1/*\"]}]") or []
        routes: list[Route] = []
        for index, item in enumerate(items):
            route = self.route(item, f"{rules_path}[{index}]", f"{service}#{index}", layer, overlay)
            if route is not None:
                self.check_name_unique(route, routes, item, f"{rules_path}[{index}]")
                self.check_reachable(route, routes, item, f"{rules_path}[{index}]")
                routes.append(route)
        return tuple(routes)

    def route(self, node: Node, path: str, default_name: str, service_layer: _Layer, overlay: Callable[[str], _Layer]) -> Route | None:
        entries = self.mapping(node, path, RULE_KEYS)
        if not isinstance(node, MappingNode):
            return None
        name = default_name
        if "name" in entries:
            name = self.value(read_rule_name, entries["name"][1], _join(path, "name")) or default_name
        paths = self.paths(entries.get("paths"), _join(path, "paths"))
        methods = self.methods(entries.get("methods"), _join(path, "methods"))
        audience = self.audience(entries.get("users"), entries.get("groups"), path)
        layer = {**service_layer, **self.settings(entries, path, depth=3), **overlay(name)}
        self.check_combination(layer)
        return Route(name, paths, methods, _rule_from(layer), line_of(node), audience)

    def paths(self, entry: tuple[Node, Node] | None, path: str) -> tuple[PathPattern, ...] | None:
        if entry is None:
            return None
        example = 'paths: ["/v1/files", "/v1/uploads/*"]; or leave paths out to match every path'
        items = self.sequence(entry[1], path, example) or []
        patterns = (self.value(read_path_pattern, item, f"{path}[{index}]") for index, item in enumerate(items))
        return tuple(pattern for pattern in patterns if pattern is not None)

    def methods(self, entry: tuple[Node, Node] | None, path: str) -> frozenset[str]:
        if entry is None:
            return UPLOAD_METHODS
        items = self.sequence(entry[1], path, "methods: [POST, PUT]") or []
        methods = (self.value(read_method, item, f"{path}[{index}]") for index, item in enumerate(items))
        return frozenset(method for method in methods if method is not None)

    # ---- identity: top-level groups, per-rule users and groups ----

    def read_groups(self, entry: tuple[Node, Node] | None) -> dict[str, frozenset[str]]:
        if entry is None:
            return {}
        groups: dict[str, frozenset[str]] = {}
        entries = self.mapping(entry[1], "groups", allowed=None)
        if isinstance(entry[1], MappingNode) and not entry[1].value:
            self.problem(entry[1], "groups", "no groups; define at least one, e.g. groups: {research: [alice, bob]}, or remove 'groups:'")
        for name, (key_node, node) in entries.items():
            path = _join("groups", name)
            if not _SERVICE_NAME.fullmatch(name):
                self.problem(key_node, path, "a group name uses letters, digits, '-' and '_'")
                continue
            groups[name] = frozenset(self.user_names(node, path, "research: [alice, bob]"))
        return groups

    def user_names(self, node: Node, path: str, example: str) -> list[str]:
        return list(self.unique_items(node, path, example, read_user_name, str))

    def unique_items(
        self, node: Node, path: str, example: str, reader: Callable[[Node], Any], shown: Callable[[Any], str]
    ) -> dict[Any, Node]:
        """A YAML list read item by item, each value once: {value: its node}. A repeat is a
        problem pointing at the first occurrence."""
        items: dict[Any, Node] = {}
        for index, item in enumerate(self.sequence(node, path, example) or []):
            item_path = f"{path}[{index}]"
            value = self.value(reader, item, item_path)
            if value is None:
                continue
            if value in items:
                self.problem(item, item_path, f"'{shown(value)}' is listed twice (first at line {line_of(items[value])})")
                continue
            items[value] = item
        return items

    def audience(self, users: tuple[Node, Node] | None, groups: tuple[Node, Node] | None, path: str) -> frozenset[str] | None:
        """The user names a rule is for (its users plus its groups' members), or None: everyone."""
        if users is None and groups is None:
            return None
        audience: set[str] = set()
        if users is not None:
            audience.update(self.user_names(users[1], _join(path, "users"), "users: [alice, bob]"))
        if groups is not None:
            groups_path = _join(path, "groups")
            for index, item in enumerate(self.sequence(groups[1], groups_path, "groups: [research]") or []):
                item_path = f"{groups_path}[{index}]"
                name = self.value(read_text, item, item_path)
                if name is None:
                    continue
                if name not in self.groups:
                    defined = list(self.groups)
                    hint = did_you_mean(name, defined)
                    known = f"groups defined: {choices(defined)}" if defined else "no groups are defined; add them under a top-level 'groups:'"
                    self.problem(item, item_path, f"unknown group '{name}'; {hint}{known}")
                    continue
                audience.update(self.groups[name])
        return frozenset(audience)

    def check_name_unique(self, route: Route, earlier: list[Route], node: Node, path: str) -> None:
        """Audit records name the rule that acted; two rules of one name would be confused."""
        for before in earlier:
            if before.name == route.name:
                message = f"'{route.name}' is already the name of the rule at line {before.line}"
                self.problem(_value_node(node, "name"), _join(path, "name"), f"{message}; rule names are unique within a service")
                return

    def check_reachable(self, route: Route, earlier: list[Route], node: Node, path: str) -> None:
        for before in earlier:
            if before.shadows(route):
                earlier_rule = f"rule '{before.name}' (line {before.line})"
                self.problem(
                    node,
                    path,
                    f"this rule can never match: {earlier_rule} comes first and matches every request this one would; "
                    "move this rule above it or remove it",
                )
                return


def _rule_names(entry: tuple[Node, Node] | None, service: str) -> list[str]:
    """The names of a service's rules as routes() will give them (`name:`, else service#index),
    read from the nodes without reading the rules."""
    if entry is None:
        return [f"{service}#0"]
    items = entry[1].value if isinstance(entry[1], SequenceNode) else []
    names = []
    for index, item in enumerate(items):
        written = _value_node(item, "name")
        names.append(written.value.strip() if written is not item and isinstance(written, ScalarNode) else f"{service}#{index}")
    return names


def _value_node(mapping: Node, key: str) -> Node:
    """The node written for `key` in a mapping, to point at its line; else the mapping."""
    for key_node, value_node in getattr(mapping, "value", []):
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return value_node
    return mapping


def _join(*parts: str) -> str:
    return ".".join(part for part in parts if part)


