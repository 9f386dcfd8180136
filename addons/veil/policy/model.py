"""The policy: which requests Veil cleans, and how. YAML in, an immutable `Policy` out.

Pure: no mitmproxy import, no network. The addon asks four questions of a `Policy`:

- `allow_hosts_patterns()`: which connections to decrypt at all (mitmproxy's `allow_hosts`),
  so traffic to unprotected hosts is never even opened.
- `protects_host(host)`: is this host one Veil is responsible for?
- `match(host, path, method)`: which service and rule apply to this request, with every
  setting already resolved (built-in defaults <- `defaults:` <- service <- rule).
- `match_any_method(host, path)`: the rule for a WebSocket upgrade or a GET with a body: the first rule
  whose paths match, whatever its methods (its `unparsed_bodies` decides: frames are not read).

Reading the YAML (with line-precise errors) is `reader.py`; host and path patterns are
`matching.py`.

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

import importlib.resources
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from ..clean.options import (
    DetectionSettings,
    DocumentLimits,
    FaceMode,
    SanitiseOptions,
    TextDetectionSettings,
    TextMode,
)
from .matching import ANY_METHOD, HostPattern, PathPattern, normalise_host

SUPPORTED_VERSION = 1



def config_folder() -> Path:
    """The default policy's folder: veil/config/ inside an installed wheel (setup.py copies
    it there), else the checkout's config/ beside addons/ (a checkout, an editable install)."""
    packaged = Path(str(importlib.resources.files("veil") / "config"))
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[3] / "config"


DEFAULT_POLICY_PATH = config_folder() / "policy.yaml"


# --------------------------------------------------------------------------------------------
# The resolved settings
# --------------------------------------------------------------------------------------------


class Action(str, Enum):
    SANITISE = "sanitise"  # clean every image, then forward the request
    BLOCK = "block"  # refuse the request with a readable 403
    ALLOW = "allow"  # forward untouched (still recorded in the audit log)
    MONITOR = "monitor"  # work out what sanitise would do, record it, change nothing


class Protect(str, Enum):
    """Which hosts Veil decrypts and cleans uploads to."""

    AI_SERVICES = "ai-services"  # the services the policy names; every other host is tunnelled
    ALL_UPLOADS = "all-uploads"  # every host but those in `tunnel:`; unnamed hosts get the catch-all rule


class UnnamedDestinations(str, Enum):
    """What happens to a connection Veil cannot name: a CONNECT to a bare IP address whose
    TLS handshake carries no server name, so no policy host can be matched."""

    TUNNEL = "tunnel"  # pass it through unopened, as any unprotected host
    BLOCK = "block"  # close it, with an audit record


CATCH_ALL_SERVICE = "any-host"  # the audit name of the catch-all rule of `protect: all-uploads`


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


class OpaqueFiles(str, Enum):
    """What happens to a request carrying a file the egress scan cannot look inside: an
    encrypted ZIP or PDF, a damaged or unknown container, one over the scan's limits, a
    video. Such a file may hold photos, faces or GPS that Veil cannot prove clean."""

    ALLOW = "allow"  # forward, no record
    LOG = "log"  # forward, and write one `passed` record saying what and why
    BLOCK = "block"  # refuse with the readable 403


class Documents(str, Enum):
    """What happens to a PDF, Office file or ZIP/TAR archive found in a protected request."""

    CLEAN = "clean"  # cleaned like an image: metadata out, every image inside cleaned, or refused
    BLOCK = "block"  # refuse the request with the readable 403
    ALLOW = "allow"  # forward as it is, with one `passed` record


class UnknownMembers(str, Enum):
    """Archive members Veil cannot clean (a text file, a binary in a ZIP)."""

    BLOCK = "block"  # refuse the archive
    KEEP = "keep"  # forward them as they are, named in the record


class DocumentComments(str, Enum):
    """Comments in Office and OpenDocument files."""

    DROP = "drop"  # removed, with their anchors
    KEEP = "keep"  # kept, their authors blanked


class OfficeMacros(str, Enum):
    """VBA projects in Office files."""

    BLOCK = "block"  # refuse the document
    DROP = "drop"  # forward the document without its macros


@dataclass(frozen=True)
class Limits:
    max_image_pixels: int = 50_000_000  # checked before decoding: stops decompression bombs
    max_body_bytes: int = 100 * 1024 * 1024  # larger protected bodies are refused, never streamed
    image_timeout_seconds: float = 20.0  # per image, and per document (all its images together)
    max_document_pages: int = 500
    max_archive_members: int = 2_000  # ZIP/TAR entries and Office parts
    max_inflated_bytes: int = 512 * 1024 * 1024  # a document's members together, as declared


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
    # Safe by default: what cannot be opened cannot be shown clean (videos carry faces and
    # GPS too); a person or a company that accepts the gap says `log`.
    opaque_files: OpaqueFiles = OpaqueFiles.BLOCK
    detection: DetectionSettings = field(default_factory=DetectionSettings)  # how faces are searched for
    text: TextMode = TextMode.OFF  # personal text and codes in pictures (docs/text.md)
    text_detection: TextDetectionSettings = field(default_factory=TextDetectionSettings)  # how text is read
    documents: Documents = Documents.CLEAN
    unknown_members: UnknownMembers = UnknownMembers.BLOCK
    document_comments: DocumentComments = DocumentComments.DROP
    office_macros: OfficeMacros = OfficeMacros.BLOCK

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
            text=self.text,
            text_detection=self.text_detection,
            documents=DocumentLimits(
                max_pages=self.limits.max_document_pages,
                max_members=self.limits.max_archive_members,
                max_inflated_bytes=self.limits.max_inflated_bytes,
                keep_comments=self.document_comments == DocumentComments.KEEP,
                unknown_members=self.unknown_members.value,
                macros=self.office_macros.value,
            ),
        )


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
    from_catalogue: bool = False  # read from config/services/ (perhaps adjusted by the policy)

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
    protect: Protect = Protect.AI_SERVICES
    tunnel: tuple[HostPattern, ...] = ()  # never decrypted, whatever else the policy says
    unnamed_destinations: UnnamedDestinations = UnnamedDestinations.TUNNEL
    catch_all: Service | None = None  # under all-uploads: the rule for hosts no service names

    @property
    def protects_all_uploads(self) -> bool:
        return self.protect is Protect.ALL_UPLOADS

    def every_service(self) -> tuple[Service, ...]:
        return self.services + ((self.catch_all,) if self.catch_all else ())

    def names_users(self) -> bool:
        """True when some rule applies only to certain users (needs proxy authentication)."""
        return any(route.audience is not None for service in self.every_service() for route in service.routes)

    def is_tunnelled(self, host: str) -> bool:
        normalised = normalise_host(host)
        return any(pattern.matches(normalised) for pattern in self.tunnel)

    def service_for_host(self, host: str) -> Service | None:
        normalised = normalise_host(host)
        if self.is_tunnelled(normalised):
            return None
        best: tuple[int, Service] | None = None
        for service in self.services:
            score = service.host_specificity(normalised)
            if score is not None and (best is None or score > best[0]):
                best = (score, service)
        return best[1] if best else self.catch_all

    def protects_host(self, host: str) -> bool:
        return self.service_for_host(host) is not None

    def hosts(self) -> list[HostPattern]:
        """Every host pattern the named services protect, once each, in policy order."""
        return list(dict.fromkeys(pattern for service in self.services for pattern in service.hosts))

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

    def match_any_method(self, host: str, path: str, user: str | None = None) -> Match | None:
        """The rule for a request whose method the rules may not list but which carries data:
        a WebSocket upgrade (a GET; the frames that follow carry the data) or a GET/DELETE
        with a body. The first rule whose paths match, whatever its methods. None when the
        host is not protected or no rule's paths match."""
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
        return max((route.rule.limits.max_body_bytes for service in self.every_service() for route in service.routes),
                   default=self.defaults.limits.max_body_bytes)

    def masks_text(self) -> bool:
        """Whether any rule that cleans images masks text (the OCR model is then loaded at start)."""
        rules = [self.defaults] + [route.rule for service in self.services for route in service.routes]
        return any(rule.text is not TextMode.OFF and rule.action != "allow" for rule in rules)

    def allow_hosts_patterns(self) -> list[str]:
        """Regexes for mitmproxy's `allow_hosts`, which `re.search`es it (ignoring case) in
        'host:port' strings: decrypt protected hosts, nothing else. Empty under all-uploads:
        every host is decrypted but those of `ignore_hosts_patterns`."""
        if self.protects_all_uploads:
            return []
        return list(dict.fromkeys(pattern.allow_hosts_regex() for pattern in self.hosts()))

    def ignore_hosts_patterns(self) -> list[str]:
        """Regexes for mitmproxy's `ignore_hosts`: the `tunnel:` hosts, never decrypted."""
        return list(dict.fromkeys(pattern.allow_hosts_regex() for pattern in self.tunnel))
