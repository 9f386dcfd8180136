"""The policy: which requests Veil cleans, and how. YAML in, an immutable `Policy` out.

Pure: no mitmproxy import, no network. The addon asks four questions of a `Policy`:

- `allow_hosts_patterns()`: which connections to decrypt at all (mitmproxy's `allow_hosts`),
  so traffic to unprotected hosts is never even opened.
- `protects_host(host)`: is this host one Veil is responsible for?
- `match(host, path, method)`: which service and rule apply to this request, with every
  setting already resolved (built-in defaults <- `defaults:` <- service <- rule).
- `match_websocket(host, path)`: the rule for a WebSocket upgrade, a GET: the first rule
  whose paths match, whatever its methods (its `unparsed_bodies` decides: frames are not read).

Loading is all-or-nothing: either a complete, valid `Policy` or one `PolicyError` that lists
every problem found, each as `file, line N: dotted.path: what is wrong; what is allowed`.
The file is read through PyYAML's node tree (not `safe_load`) so that every value keeps its
line number, duplicate keys are caught (PyYAML would silently keep the last one) and words
like `off` stay words (YAML 1.1 would turn `faces: off` into the boolean false).

Matching semantics, in short (the default config/policy.yaml says the same to its readers):

- Host patterns: `api.openai.com` matches that host only; `*.example.com` matches every
  sub-domain at any depth (`a.example.com`, `a.b.example.com`) but not `example.com` itself.
  Case, a port and a trailing dot in the request's host are ignored. When several services
  match a host, the most specific pattern wins (an exact name beats any wildcard, a longer
  wildcard beats a shorter one), so the order of services never matters.
- Rules of a service are tried in order; the first whose `paths` and `methods` both match
  wins. A rule without `paths` matches every path; without `methods`, POST, PUT and PATCH
  (the methods that carry uploads). A service without `rules` has one such catch-all rule.
- Path patterns are matched against the whole path without the query string. `*` matches
  any run of characters, `/` included, so `/v1/*` covers `/v1/uploads/abc/parts`; every
  other character is literal and matching is case-sensitive, as URL paths are.
- A rule with `users:` and/or `groups:` (names from the top-level `groups:`) applies only to
  those proxy-auth users (either list); a request without a user (no proxy authentication)
  matches no such rule. First match still wins, so a rule for a group goes above the rule
  for everyone.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .options import DetectionSettings, FaceMode, SanitiseOptions

SUPPORTED_VERSION = 1

# The repository's default policy. It sits beside the package in a source checkout (and an
# editable install); a packaged install should pass its own path to `load_policy`.
DEFAULT_POLICY_PATH = Path(__file__).resolve().parents[2] / "config" / "policy.yaml"


# --------------------------------------------------------------------------------------------
# The resolved settings
# --------------------------------------------------------------------------------------------


class Action(str, Enum):
    SANITISE = "sanitise"  # clean every image, then forward the request
    BLOCK = "block"  # refuse the request with a readable 403
    ALLOW = "allow"  # forward untouched (still recorded in the audit log)
    MONITOR = "monitor"  # work out what sanitise would do, record it, change nothing


class OnError(str, Enum):
    """What happens to a request holding an image that cannot be cleaned."""

    BLOCK = "block"
    ALLOW = "allow"  # forwards the original image, metadata and faces included


class UnparsedBodies(str, Enum):
    """What happens to a protected request whose body Veil cannot look inside (gRPC,
    Connect/protobuf, any unknown format) and to WebSocket connections, whose frames Veil
    does not inspect."""

    ALLOW = "allow"  # forward, no record
    LOG = "log"  # forward, and write one `passed` record saying why
    BLOCK = "block"  # refuse with the readable 403


class ImageReferences(str, Enum):
    """What happens to a request that only refers to an image (an https URL, a file id):
    the provider fetches it, so its bytes never cross Veil."""

    ALLOW = "allow"  # forward, no record
    LOG = "log"  # forward, and write one `passed` record per reference
    BLOCK = "block"  # refuse with the readable 403


@dataclass(frozen=True)
class Limits:
    max_image_pixels: int = 50_000_000  # checked before decoding: stops decompression bombs
    max_body_bytes: int = 100 * 1024 * 1024  # larger protected bodies are refused, never streamed
    image_timeout_seconds: float = 20.0


@dataclass(frozen=True)
class Rule:
    """Every setting that applies to one request, after inheritance."""

    action: Action = Action.SANITISE
    strip: bool = True
    faces: FaceMode = FaceMode.MASK
    keep_icc: bool = True
    on_error: OnError = OnError.BLOCK
    preserve_length: bool = False  # pad cleaned images to their original length (size declared first)
    limits: Limits = field(default_factory=Limits)
    unparsed_bodies: UnparsedBodies = UnparsedBodies.LOG
    image_references: ImageReferences = ImageReferences.LOG
    detection: DetectionSettings = field(default_factory=DetectionSettings)  # how faces are searched for

    def sanitise_options(self) -> SanitiseOptions:
        # No single image can be larger than the body that carries it, so the body limit is
        # also the per-image byte limit.
        return SanitiseOptions(
            faces=self.faces,
            keep_icc=self.keep_icc,
            max_pixels=self.limits.max_image_pixels,
            max_bytes=self.limits.max_body_bytes,
            preserve_length=self.preserve_length,
            detection=self.detection,
        )


# --------------------------------------------------------------------------------------------
# Hosts, paths, routes, services
# --------------------------------------------------------------------------------------------


def normalise_host(host: str) -> str:
    """'API.OpenAI.com.:443' -> 'api.openai.com'; '[::1]:8080' -> '::1'."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


@dataclass(frozen=True)
class HostPattern:
    text: str  # normalised: lower case, no trailing dot

    @property
    def is_wildcard(self) -> bool:
        return self.text.startswith("*.")

    @property
    def suffix(self) -> str:
        """The part a wildcard's sub-domains end with, dot included: '.oaiusercontent.com'."""
        return self.text[1:]

    def matches(self, normalised_host: str) -> bool:
        if self.is_wildcard:
            return normalised_host.endswith(self.suffix) and len(normalised_host) > len(self.suffix)
        return normalised_host == self.text

    @property
    def specificity(self) -> int:
        """Higher wins: any exact name beats any wildcard; longer wildcards beat shorter ones."""
        labels = self.text.count(".") + 1
        return labels if self.is_wildcard else 1000 + labels

    def allow_hosts_regex(self) -> str:
        """A regex for mitmproxy's `allow_hosts`, which `re.search`es it (ignoring case) in
        'host:port' strings built from the CONNECT target, the Host header and the TLS SNI.
        Anchored at both ends so 'api.openai.com.evil.com:443' cannot match."""
        # Host patterns hold only letters, digits, '-', '_' and dots, so escaping the dots is
        # enough, and keeps the regexes readable in mitmproxy's option list.
        if self.is_wildcard:
            name = r"(?:[^.:/\s]+\.)+" + _escape_dots(self.suffix[1:])
        else:
            name = _escape_dots(self.text)
        return rf"^{name}\.?(?::\d+)?$"


def _escape_dots(host: str) -> str:
    return host.replace(".", r"\.")


@dataclass(frozen=True)
class PathPattern:
    text: str
    regex: re.Pattern[str]

    @classmethod
    def from_glob(cls, text: str) -> PathPattern:
        literal_parts = (re.escape(part) for part in text.split("*"))
        return cls(text, re.compile(".*".join(literal_parts), re.DOTALL))

    def matches(self, path: str) -> bool:
        return self.regex.fullmatch(path) is not None

    def covers(self, other: PathPattern) -> bool:
        """True when every path `other` matches is matched by this pattern too. Reading the
        other glob's `*` as a literal character is exact here: only one of our own `*`
        can consume it, and that `*` would equally consume whatever it stands for."""
        return self.matches(other.text)


ANY_METHOD = "*"
UPLOAD_METHODS = frozenset({"POST", "PUT", "PATCH"})
KNOWN_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True)
class Route:
    """One entry of a service's `rules:` list: when it applies, and the settings it gives."""

    name: str
    paths: tuple[PathPattern, ...] | None  # None: every path
    methods: frozenset[str]  # upper case; {"*"}: every method
    rule: Rule
    line: int | None = None
    # Who the rule is for: the proxy-auth user names its `users:` and `groups:` list (groups
    # resolved at load time), or None for everyone. A request without a user matches no such rule.
    audience: frozenset[str] | None = None

    def matches(self, path: str, method: str, user: str | None = None) -> bool:
        return self._method_matches(method) and self._path_matches(path) and self._user_matches(user)

    def _user_matches(self, user: str | None) -> bool:
        return self.audience is None or (user is not None and user in self.audience)

    def _method_matches(self, method: str) -> bool:
        return ANY_METHOD in self.methods or method.upper() in self.methods

    def _path_matches(self, path: str) -> bool:
        if self.paths is None:
            return True
        return any(pattern.matches(path) for pattern in self.paths)

    def shadows(self, later: Route) -> bool:
        """True when this route matches every request `later` would, so `later` is dead."""
        if ANY_METHOD not in self.methods and not later.methods <= self.methods:
            return False
        if self.audience is not None and (not later.audience or not later.audience <= self.audience):
            return False
        if self.paths is None:
            return True
        later_paths = later.paths or (PathPattern.from_glob("*"),)
        return all(any(mine.covers(theirs) for mine in self.paths) for theirs in later_paths)


@dataclass(frozen=True)
class Service:
    name: str  # appears in audit records
    hosts: tuple[HostPattern, ...]
    routes: tuple[Route, ...]

    def host_specificity(self, normalised_host: str) -> int | None:
        """How specifically this service claims the host, or None when it does not."""
        scores = [pattern.specificity for pattern in self.hosts if pattern.matches(normalised_host)]
        return max(scores, default=None)

    def route_for(self, path: str, method: str, user: str | None = None) -> Route | None:
        return next((route for route in self.routes if route.matches(path, method, user)), None)


@dataclass(frozen=True)
class Match:
    service: str
    rule_name: str
    rule: Rule


@dataclass(frozen=True)
class Policy:
    source: str
    defaults: Rule
    services: tuple[Service, ...]
    groups: dict[str, frozenset[str]] = field(default_factory=dict)  # top-level `groups:`

    def names_users(self) -> bool:
        """True when some rule applies only to certain users (needs proxy authentication)."""
        return any(route.audience is not None for service in self.services for route in service.routes)

    def service_for_host(self, host: str) -> Service | None:
        normalised = normalise_host(host)
        best: tuple[int, Service] | None = None
        for service in self.services:
            score = service.host_specificity(normalised)
            if score is not None and (best is None or score > best[0]):
                best = (score, service)
        return best[1] if best else None

    def protects_host(self, host: str) -> bool:
        return self.service_for_host(host) is not None

    def match(self, host: str, path: str, method: str, user: str | None = None) -> Match | None:
        """The service and rule for a request, or None when the policy does not cover it: the
        host belongs to no service, or no rule of its service matches the path, method and
        user (e.g. a GET with the default methods). `path` may still carry its query string;
        `user` is the proxy-auth user name, None without proxy authentication."""
        service = self.service_for_host(host)
        if service is None:
            return None
        route = service.route_for(path.split("?", 1)[0], method, user)
        if route is None:
            return None
        return Match(service=service.name, rule_name=route.name, rule=route.rule)

    def match_websocket(self, host: str, path: str, user: str | None = None) -> Match | None:
        """The rule for a WebSocket upgrade (a GET) on a protected host: the first rule whose
        paths match, whatever its methods, since the frames that follow carry the data. None
        when the host is not protected or no rule's paths match."""
        service = self.service_for_host(host)
        if service is None:
            return None
        bare = path.split("?", 1)[0]
        route = next((r for r in service.routes if r._path_matches(bare) and r._user_matches(user)), None)
        if route is None:
            return None
        return Match(service=service.name, rule_name=route.name, rule=route.rule)

    def largest_body_limit(self) -> int:
        """The largest `max_body_bytes` any rule allows. mitmproxy's `stream_large_bodies` must
        stay above it: a streamed body passes before Veil has seen it and cannot be changed."""
        return max((route.rule.limits.max_body_bytes for service in self.services for route in service.routes),
                   default=self.defaults.limits.max_body_bytes)

    def allow_hosts_patterns(self) -> list[str]:
        """Regexes for mitmproxy's `allow_hosts` option: decrypt protected hosts, nothing else."""
        patterns = (pattern.allow_hosts_regex() for service in self.services for pattern in service.hosts)
        return list(dict.fromkeys(patterns))


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyProblem:
    source: str
    line: int | None  # 1-based; None when the whole file is the problem (unreadable)
    path: str  # dotted location in the document, e.g. services.openai-api.rules[0].faces
    message: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}, line {self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class PolicyError(Exception):
    """Every problem found in a policy, one per line of str(error)."""

    def __init__(self, problems: Iterable[PolicyProblem]):
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_policy(path: str | Path) -> Policy:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError([PolicyProblem(source, None, "", f"cannot read the policy: {error}")]) from None
    return load_policy_text(text, source)


def load_default_policy() -> Policy:
    return load_policy(DEFAULT_POLICY_PATH)


def load_policy_text(text: str, source_name: str = "<policy>") -> Policy:
    root = _compose(text, source_name)
    reader = _PolicyReader(source_name)
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
    return sorted(unique, key=lambda problem: problem.line or 0)


class _Invalid(Exception):
    """A value that cannot be used; the message says why and what would be accepted."""


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag.endswith(":null"):
        return "an empty value"
    return f"'{node.value}'"


def _choices(values: Iterable[str]) -> str:
    return ", ".join(values)


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""


# ---- scalar readers: node -> value, or _Invalid ------------------------------------------


def _read_text(node: Node) -> str:
    if not isinstance(node, ScalarNode) or node.tag.endswith(":null"):
        raise _Invalid(f"expected a text value, got {_describe(node)}")
    return node.value


def _enum_reader(enum: type[Enum]) -> Callable[[Node], Enum]:
    allowed = [member.value for member in enum]

    def read(node: Node) -> Enum:
        # The raw scalar text, whatever YAML resolved it to: `faces: off` is the word off.
        if isinstance(node, ScalarNode) and node.value.lower() in allowed:
            return enum(node.value.lower())
        raise _Invalid(f"{_describe(node)} is not allowed; use one of {_choices(allowed)}")

    return read


def _read_bool(node: Node) -> bool:
    if isinstance(node, ScalarNode) and node.tag.endswith(":bool"):
        if node.value.lower() in ("true", "false"):
            return node.value.lower() == "true"
        raise _Invalid(f"'{node.value}' is ambiguous in YAML; write true or false")
    raise _Invalid(f"expected true or false, got {_describe(node)}")


# PyYAML's own scalar constructors, so 50_000_000, 0x10 and 1.5e3 mean what YAML says they do.
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def _number(node: Node, accept_fractions: bool) -> int | float:
    kinds = (":int", ":float") if accept_fractions else (":int",)
    if isinstance(node, ScalarNode) and node.tag.endswith(kinds):
        if node.tag.endswith(":int"):
            return _CONSTRUCTOR.construct_yaml_int(node)
        return _CONSTRUCTOR.construct_yaml_float(node)
    if isinstance(node, ScalarNode) and node.tag.endswith(":str") and node.style in ("'", '"'):
        raise _Invalid(f"expected a number, got the text '{node.value}'; remove the quotes")
    kind = "a number" if accept_fractions else "a whole number (underscores allowed: 50_000_000)"
    raise _Invalid(f"expected {kind}, got {_describe(node)}")


def _positive_reader(accept_fractions: bool) -> Callable[[Node], int | float]:
    def read(node: Node) -> int | float:
        value = _number(node, accept_fractions)
        if not value > 0 or value == float("inf"):
            raise _Invalid(f"must be greater than 0, got {node.value}")
        return float(value) if accept_fractions else value

    return read


# ---- settings shared by defaults, services and rules -------------------------------------

_SETTING_READERS: dict[str, Callable[[Node], Any]] = {
    "action": _enum_reader(Action),
    "strip": _read_bool,
    "faces": _enum_reader(FaceMode),
    "keep_icc": _read_bool,
    "on_error": _enum_reader(OnError),
    "preserve_length": _read_bool,
    "unparsed_bodies": _enum_reader(UnparsedBodies),
    "image_references": _enum_reader(ImageReferences),
}
_LIMIT_READERS: dict[str, Callable[[Node], Any]] = {
    "max_image_pixels": _positive_reader(accept_fractions=False),
    "max_body_bytes": _positive_reader(accept_fractions=False),
    "image_timeout_seconds": _positive_reader(accept_fractions=True),
}


def _range_reader(
    accept_fractions: bool, low: float, high: float | None = None, low_inclusive: bool = True, multiple: int | None = None
) -> Callable[[Node], int | float]:
    """A number from `low` (inclusive or not) to `high` (inclusive), optionally a multiple of `multiple`."""

    def read(node: Node) -> int | float:
        value = _number(node, accept_fractions)
        too_low = value < low if low_inclusive else value <= low
        if too_low or (high is not None and value > high) or value != value:
            lower = f"{'at least' if low_inclusive else 'greater than'} {low:g}"
            wanted = f"from {low:g} to {high:g}" if high is not None and low_inclusive else lower
            if high is not None and not low_inclusive:
                wanted = f"greater than {low:g} and at most {high:g}"
            raise _Invalid(f"must be {wanted}, got {node.value}")
        if multiple and value % multiple:
            raise _Invalid(f"must be a multiple of {multiple} (the network's input step), got {node.value}")
        return float(value) if accept_fractions else value

    return read


# `detection:` (see DetectionSettings for what each one does).
_DETECTION_READERS: dict[str, Callable[[Node], Any]] = {
    "threshold": _range_reader(True, 0.0, 1.0, low_inclusive=False),
    "nms_iou": _range_reader(True, 0.0, 1.0, low_inclusive=False),
    "min_face_px": _range_reader(False, 4, 10_000),
    "max_detect_long_side": _range_reader(False, 64, 100_000),
    "upscale_below": _range_reader(False, 0, 10_000),
    "tile_px": _range_reader(False, 128, 8192, multiple=32),
    "tile_overlap_px": _range_reader(False, 0, 4096),
    "largest_face_px": _range_reader(False, 32, 4096),
    "mask_scale": _range_reader(True, 1.0, 4.0),
    "mask_min_margin_px": _range_reader(False, 0, 1000),
}
SETTING_KEYS = (*_SETTING_READERS, "limits", "detection")
TOP_LEVEL_KEYS = ("version", "defaults", "groups", "services")
SERVICE_KEYS = ("hosts", "rules", *SETTING_KEYS)
RULE_KEYS = ("name", "paths", "methods", "users", "groups", *SETTING_KEYS)

_SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


@dataclass(frozen=True)
class _Setting:
    """A value with where it was written, so a conflict can point at the right line."""

    value: Any
    line: int | None
    path: str
    depth: int  # 0 built in, 1 defaults, 2 service, 3 rule: higher is more specific


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

    def __init__(self, source: str):
        self.source = source
        self.problems: list[PolicyProblem] = []
        self.host_nodes: dict[tuple[str, str], Node] = {}  # (service, pattern) -> where written
        self.groups: dict[str, frozenset[str]] = {}  # top-level `groups:`, read before the services

    def problem(self, node: Node | None, path: str, message: str) -> None:
        line = _line(node) if node is not None else 1
        self.problems.append(PolicyProblem(self.source, line, path, message))

    # ---- structure helpers ----

    def mapping(self, node: Node, path: str, allowed: Iterable[str] | None) -> dict[str, tuple[Node, Node]]:
        """Key -> (key node, value node). Reports non-mappings, duplicate and unknown keys."""
        if not isinstance(node, MappingNode):
            self.problem(node, path, f"expected a mapping of keys to values, got {_describe(node)}")
            return {}
        entries: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key = self.key(key_node, path, allowed)
            if key is None:
                continue
            if key in entries:
                first = _line(entries[key][0])
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
            self.problem(key_node, path, f"keys must be plain names, got {_describe(key_node)}")
            return None
        key = key_node.value
        if allowed is not None and key not in allowed:
            allowed = list(allowed)
            hint = _did_you_mean(key, allowed)
            self.problem(key_node, _join(path, key), f"unknown key; {hint}allowed here: {_choices(allowed)}")
            return None
        return key

    def sequence(self, node: Node, path: str, example: str) -> list[Node] | None:
        if not isinstance(node, SequenceNode):
            self.problem(node, path, f"expected a list, e.g. {example}; got {_describe(node)}")
            return None
        if not node.value:
            self.problem(node, path, f"the list is empty; list at least one, e.g. {example}")
            return None
        return node.value

    def value(self, reader: Callable[[Node], Any], node: Node, path: str) -> Any:
        try:
            return reader(node)
        except _Invalid as invalid:
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
        services = self.services(entries.get("services"), root, defaults_layer)
        if self.problems:
            return None
        return Policy(self.source, _rule_from(defaults_layer), services, self.groups)

    def version(self, entry: tuple[Node, Node] | None, root: Node) -> None:
        if entry is None:
            self.problem(root, "version", f"missing; add 'version: {SUPPORTED_VERSION}' at the top")
            return
        node = entry[1]
        if isinstance(node, ScalarNode) and node.tag.endswith(":int"):
            if _CONSTRUCTOR.construct_yaml_int(node) == SUPPORTED_VERSION:
                return
        self.problem(node, "version", f"{_describe(node)} is not supported; this Veil reads version {SUPPORTED_VERSION}")

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
            layer[key] = _Setting(value, _line(node), path, depth)

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
            self.problems.append(PolicyProblem(self.source, strip.line, strip.path, message))
        else:
            origin = f"from {strip.path}, line {strip.line}"
            message = f"action: {action.value.value} needs strip: true, but strip is false ({origin}); {advice}"
            self.problems.append(PolicyProblem(self.source, action.line, action.path, message))

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
        self.problems.append(PolicyProblem(self.source, blame.line, blame.path, message))

    # ---- services ----

    def services(self, entry: tuple[Node, Node] | None, root: Node, defaults: _Layer) -> tuple[Service, ...]:
        if entry is None:
            self.problem(root, "services", "missing; list the services to protect, each with its hosts")
            return ()
        entries = self.mapping(entry[1], "services", allowed=None)
        if isinstance(entry[1], MappingNode) and not entry[1].value:
            self.problem(entry[1], "services", "no services; the policy would protect nothing")
        services = tuple(self.service(name, key_node, node, defaults) for name, (key_node, node) in entries.items())
        self.check_hosts_unique(services)
        return services

    def service(self, name: str, key_node: Node, node: Node, defaults: _Layer) -> Service:
        path = _join("services", name)
        if not _SERVICE_NAME.fullmatch(name):
            self.problem(key_node, path, "a service name uses letters, digits, '-' and '_' (it appears in audit records)")
        entries = self.mapping(node, path, SERVICE_KEYS)
        if not isinstance(node, MappingNode):
            return Service(name, (), ())
        hosts = self.hosts(entries.get("hosts"), node, path)
        self.host_nodes.update({(name, pattern.text): item for pattern, item in hosts.items()})
        layer = {**defaults, **self.settings(entries, path, depth=2)}
        routes = self.routes(entries.get("rules"), path, name, layer)
        return Service(name, tuple(hosts), routes)

    def hosts(self, entry: tuple[Node, Node] | None, service_node: Node, path: str) -> dict[HostPattern, Node]:
        hosts_path = _join(path, "hosts")
        if entry is None:
            example = 'hosts: ["api.example.com"]'
            self.problem(service_node, hosts_path, f"missing; list the host names this service uses, e.g. {example}")
            return {}
        example = 'hosts: ["api.example.com", "*.example.net"]'
        return self.unique_items(entry[1], hosts_path, example, _read_host_pattern, lambda pattern: pattern.text)

    def check_hosts_unique(self, services: tuple[Service, ...]) -> None:
        """A host pattern belongs to one service; otherwise which one records it is a guess."""
        owner: dict[str, str] = {}
        for service in services:
            for pattern in service.hosts:
                if pattern.text in owner:
                    node = self.host_nodes[(service.name, pattern.text)]
                    message = f"'{pattern.text}' is already listed by service '{owner[pattern.text]}'"
                    path = _join("services", service.name, "hosts")
                    self.problem(node, path, f"{message}; a host belongs to one service")
                else:
                    owner[pattern.text] = service.name

    # ---- rules ----

    def routes(self, entry: tuple[Node, Node] | None, path: str, service: str, layer: _Layer) -> tuple[Route, ...]:
        if entry is None:  # no rules: one catch-all rule with the service's settings
            self.check_combination(layer)
            return (Route(f"{service}#0", None, UPLOAD_METHODS, _rule_from(layer)),)
        rules_path = _join(path, "rules")
        items = self.sequence(entry[1], rules_path, "rules: [{paths: [\"/v1/*\"]}]") or []
        routes: list[Route] = []
        for index, item in enumerate(items):
            route = self.route(item, f"{rules_path}[{index}]", f"{service}#{index}", layer)
            if route is not None:
                self.check_name_unique(route, routes, item, f"{rules_path}[{index}]")
                self.check_reachable(route, routes, item, f"{rules_path}[{index}]")
                routes.append(route)
        return tuple(routes)

    def route(self, node: Node, path: str, default_name: str, service_layer: _Layer) -> Route | None:
        entries = self.mapping(node, path, RULE_KEYS)
        if not isinstance(node, MappingNode):
            return None
        name = default_name
        if "name" in entries:
            name = self.value(_read_rule_name, entries["name"][1], _join(path, "name")) or default_name
        paths = self.paths(entries.get("paths"), _join(path, "paths"))
        methods = self.methods(entries.get("methods"), _join(path, "methods"))
        audience = self.audience(entries.get("users"), entries.get("groups"), path)
        layer = {**service_layer, **self.settings(entries, path, depth=3)}
        self.check_combination(layer)
        return Route(name, paths, methods, _rule_from(layer), _line(node), audience)

    def paths(self, entry: tuple[Node, Node] | None, path: str) -> tuple[PathPattern, ...] | None:
        if entry is None:
            return None
        example = 'paths: ["/v1/files", "/v1/uploads/*"]; or leave paths out to match every path'
        items = self.sequence(entry[1], path, example) or []
        patterns = (self.value(_read_path_pattern, item, f"{path}[{index}]") for index, item in enumerate(items))
        return tuple(pattern for pattern in patterns if pattern is not None)

    def methods(self, entry: tuple[Node, Node] | None, path: str) -> frozenset[str]:
        if entry is None:
            return UPLOAD_METHODS
        items = self.sequence(entry[1], path, "methods: [POST, PUT]") or []
        methods = (self.value(_read_method, item, f"{path}[{index}]") for index, item in enumerate(items))
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
        return list(self.unique_items(node, path, example, _read_user_name, str))

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
                self.problem(item, item_path, f"'{shown(value)}' is listed twice (first at line {_line(items[value])})")
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
                name = self.value(_read_text, item, item_path)
                if name is None:
                    continue
                if name not in self.groups:
                    defined = list(self.groups)
                    hint = _did_you_mean(name, defined)
                    known = f"groups defined: {_choices(defined)}" if defined else "no groups are defined; add them under a top-level 'groups:'"
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


def _value_node(mapping: Node, key: str) -> Node:
    """The node written for `key` in a mapping, to point at its line; else the mapping."""
    for key_node, value_node in getattr(mapping, "value", []):
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return value_node
    return mapping


def _join(*parts: str) -> str:
    return ".".join(part for part in parts if part)


def _read_rule_name(node: Node) -> str:
    name = _read_text(node).strip()
    if not name or "\n" in name:
        raise _Invalid("a rule name is one non-empty line (it appears in audit records)")
    return name


def _read_user_name(node: Node) -> str:
    """A proxy-auth user name, as the client sends it (htpasswd or LDAP): compared exactly."""
    name = _read_text(node)
    if not name.strip() or name != name.strip() or ":" in name or "\n" in name:
        raise _Invalid(f"'{name}' is not a user name: write it as the user logs in to the proxy (not empty, no ':', no spaces around it)")
    return name


def _read_host_pattern(node: Node) -> HostPattern:
    raw = _read_text(node).strip()
    text = raw.lower().rstrip(".")
    if text == "*":
        raise _Invalid("'*' alone would decrypt every host; list the hosts to protect")
    if "://" in text:
        raise _Invalid(f"'{raw}': write the host name only, without '{raw.split('://')[0]}://'")
    if "/" in text:
        raise _Invalid(f"'{raw}': write the host name only; paths go in a rule's paths")
    if ":" in text:
        raise _Invalid(f"'{raw}': ports are ignored when matching; write '{text.split(':')[0]}'")
    name = text[2:] if text.startswith("*.") else text
    if "*" in name:
        raise _Invalid(f"'{raw}': a wildcard may only be the whole first label, as in '*.example.com'")
    if not all(_HOST_LABEL.fullmatch(label) for label in name.split(".")):
        raise _Invalid(f"'{raw}' is not a valid host name (letters, digits and '-' between dots)")
    if text.startswith("*.") and "." not in name:
        raise _Invalid(f"'{raw}' is too broad: it would match every '.{name}' host")
    return HostPattern(text)


def _read_path_pattern(node: Node) -> PathPattern:
    text = _read_text(node).strip()
    if not text.startswith(("/", "*")):
        raise _Invalid(f"'{text}': a path starts with '/' (host names go in hosts)")
    if "?" in text or "#" in text:
        raise _Invalid(f"'{text}': paths are matched without the query string; remove what follows '?'")
    if any(character.isspace() for character in text):
        raise _Invalid(f"'{text}': a path has no spaces")
    return PathPattern.from_glob(text)


def _read_method(node: Node) -> str:
    method = _read_text(node).strip().upper()
    if method == ANY_METHOD or method in KNOWN_METHODS:
        return method
    hint = _did_you_mean(method, KNOWN_METHODS)
    allowed = f"{_choices(KNOWN_METHODS)}, or '*' for any"
    raise _Invalid(f"'{node.value}' is not an HTTP method; {hint}use one of {allowed}")
