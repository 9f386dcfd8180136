"""The policy reference (docs/policy-reference.md), rendered from the code that reads policies.

The keys, the built-in defaults and the allowed values all come from the reader and the
model (`reader.SETTING_KEYS` and its `_*_READERS`, `Rule()`, `Limits()`,
`DetectionSettings()`, the enums); only the prose is written here. A key the reader accepts
without a description here, or a description of a key the reader no longer accepts, makes
`render_reference()` raise, so the documentation build (docs/hooks/policy_reference.py)
fails before a setting ships undocumented or a removed one stays documented.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any

from ..clean.options import DetectionSettings, TextDetectionSettings
from . import reader, settings
from .matching import ANY_METHOD, KNOWN_METHODS, UPLOAD_METHODS
from .model import SUPPORTED_VERSION, Limits, Rule
from .values import read_bool

# ---- the prose: one paragraph per key, by where the key is written -------------------------

TOP_LEVEL = {
    "version": "The format of the file; required, and always {supported_version} for now. A "
    "later Veil that changes the format will read a new number, so an old file is never "
    "silently read with new meanings.",
    "defaults": "The settings every rule starts from (any key of the settings table below). "
    "Settings are resolved once, at load: built-in default ← `defaults` ← service ← rule; "
    "`limits` and `detection` are inherited key by key.",
    "groups": "Named lists of proxy-auth user names, e.g. `research: [alice, bob]`, for rules' "
    "`groups:`. Names are compared exactly as users log in to the proxy (case matters); a "
    "name listed twice, an empty list or a name with `:` is reported. Read at start-up only.",
    "catalogue": "The services of Veil's catalogue (config/services/, one file per provider; "
    "see [the catalogue](services.md#the-catalogue)) this policy protects, by name or group: "
    "`include: [all]`, `except: [character-ai]`. Each comes with its hosts and rules; a "
    "`services:` entry of the same name without `hosts` adjusts it, one with `hosts` replaces it.",
    "services": "One entry per service, keyed by a name of letters, digits, `-` and `_` that "
    "appears in audit records: a service of your own (with `hosts`), or the name of a catalogue "
    "service to adjust (without `hosts`: its settings, `rule_settings` and rules of your own). "
    "Required unless `catalogue` or `protect: all-uploads` gives the policy something to "
    "protect. Hosts no service lists are never decrypted (under `protect: ai-services`).",
    "protect": "`ai-services` (the default): decrypt and check only the hosts of the policy's "
    "services. `all-uploads`: decrypt every host but those in `tunnel`, and clean image "
    "uploads (any POST, PUT or PATCH carrying an image) to any of them; a host no service "
    "names gets the catch-all rule `any-host` with the `defaults`. See "
    "[the catch-all](policy.md#every-upload-protect-all-uploads) for the trade-off.",
    "tunnel": "Host patterns never decrypted, whatever else the policy says: certificate-pinned "
    "apps, banking, health. Matters most with `protect: all-uploads` or `veil_decrypt_all`. A "
    "pattern that would hide a service's host is reported.",
    "unnamed_destinations": "A connection Veil cannot name (a CONNECT to a bare IP address "
    "whose TLS handshake has no server name): `tunnel` (the default) passes it unopened; "
    "`block` closes it and writes a `blocked` audit record.",
}

CATALOGUE = {
    "include": "Catalogue service names and groups: `all` (every API and web app), `all-apis`, "
    "`all-web-apps`, `upload-storage` (shared stores such as Azure Blob, opt-in), or a "
    "provider's group (`openai`, `google`, …: the file names of config/services/). An unknown "
    "name is reported with a suggestion.",
    "except": "Names or groups to leave out of `include`; one that `include` does not cover is "
    "reported, as it would change nothing.",
}

ADJUSTMENT = {
    "rules": "Rules of your own for the catalogue service, tried before the catalogue's rules "
    "(e.g. uploads allowed for one group); their names must differ from the catalogue's.",
    "rule_settings": "Settings per catalogue rule, by the rule's name (e.g. "
    "`{{upload: {{action: block}}}}`: chat allowed, file uploads refused). They beat the "
    "catalogue's settings and this entry's service-wide ones.",
}

SERVICE = {
    "hosts": "Required. Host names whose traffic Veil decrypts and checks: `api.openai.com` "
    "matches that host only, `*.example.com` every sub-domain at any depth but not "
    "`example.com` itself. Case, a port and a trailing dot are ignored. When several services "
    "match a host, the most specific pattern wins (an exact name beats any wildcard), so the "
    "order of services never matters. A host may belong to one service only.",
    "rules": "Tried in order; the first whose `paths`, `methods` and audience (`users`, "
    "`groups`) match decides. A service without `rules` has one catch-all rule. Requests no "
    "rule matches pass untouched, except WebSocket upgrades (see `unparsed_bodies`).",
}

RULE = {
    "name": "The rule's name in audit records and messages: one non-empty line. Without it "
    "the rule is named after its service. Names are unique within a service.",
    "paths": "URL path patterns, matched against the whole path without the query string. "
    "`*` matches any run of characters, `/` included, so `/v1/*` covers "
    "`/v1/uploads/abc/parts`; everything else is literal and case-sensitive. Without "
    "`paths` the rule matches every path.",
    "methods": "The HTTP methods the rule applies to, among {known_methods}, or `{any_method}` "
    "for any. Default {upload_methods}: the methods that carry uploads.",
    "users": "Proxy-auth user names the rule is for (with `groups`, either list). A request "
    "without a user (no proxy authentication) matches no rule with `users` or `groups`; put "
    "such rules above the rule for everyone, since the first match wins.",
    "groups": "Names of top-level `groups` whose members the rule is for (with `users`, "
    "either list). An unknown group is reported with a suggestion.",
}

SETTINGS = {
    "action": "What Veil does with a matching request: `sanitise` cleans every image, then "
    "forwards the request; `block` refuses it with a readable 403; `allow` forwards it "
    "untouched (each image still gets a `passed` record); `monitor` works out what sanitise "
    "would do, records it as `monitored` and changes nothing (for trials).",
    "strip": "Remove metadata: EXIF (GPS, camera serials, dates), XMP, IPTC, comments, "
    "thumbnails. Must stay true whenever `action` is `sanitise` or `monitor`: cleaning always "
    "removes metadata.",
    "faces": "How faces are hidden: `mask` (an opaque box over the face box enlarged by "
    "`detection.mask_scale`) cannot be undone; `blur` and `pixelate` are weaker (blurred and "
    "mosaiced faces have been re-identified, and small pixelated faces usually fail "
    "verification, so such photos are blocked); `off` leaves faces as they are.",
    "keep_icc": "Keep ICC colour profiles. They describe colour, not people; dropping them "
    "shifts colours.",
    "on_error": "What happens to an image that cannot be cleaned (malformed, unsupported, too "
    "large, too slow, or not verifiable): `block` refuses the request with a readable 403; "
    "`allow` forwards the original image, metadata and faces included, with a `passed` record.",
    "preserve_length": "Make every cleaned image exactly as long as the original, padded with "
    "inert zero filler that the verifier accepts and nothing else, for services told the file "
    "size before the bytes (ChatGPT, OpenAI Uploads, Google resumable uploads, Perplexity's "
    "S3 POST, Claude.ai). An image that cannot be brought to its length goes to `on_error`. "
    "See [sizes declared first](policy.md#sizes-declared-before-the-bytes-preserve_length).",
    "unparsed_bodies": "Bodies on a protected rule that no envelope can read (gRPC, "
    "Connect-RPC protobuf, a format an app switches to), and WebSocket connections, whose "
    "frames Veil does not read: `allow` forwards without a record, `log` forwards and writes "
    "one `passed` record with the reason, `block` refuses with the readable 403. Under "
    "`action: monitor`, `block` acts as `log`.",
    "image_references": "Images a JSON body only points at (an https URL, a file id), which "
    "the provider fetches itself, so their bytes never cross Veil: `allow` forwards without a "
    "record, `log` writes one `passed` record per reference (its JSON path; the URL's scheme, "
    "host and path, never its query), `block` refuses the request naming the first reference.",
    "opaque_files": "Files the egress scan finds in a request but cannot look inside: an "
    "encrypted ZIP or PDF, a damaged or unknown container, one over the scan's size or depth "
    "limits, a video. Such a file may hold photos, faces or GPS that Veil cannot prove clean: "
    "`block` (the default: safe until shown otherwise) refuses the request naming the file, "
    "`log` forwards it with one `passed` record saying what and why, `allow` forwards it "
    "without a record. See [the egress scan](egress.md).",
    "documents": "PDFs, Word/PowerPoint/Excel files and ZIP/TAR archives found in a request: "
    "`clean` (the default) removes their personal metadata and cleans every image inside as an "
    "upload of its own, or refuses the document when it cannot (encrypted, macros, a part Veil "
    "does not know, over a limit); `block` refuses every request carrying one; `allow` "
    "forwards them as they are with one `passed` record each. See [Documents](formats.md#documents-and-archives).",
    "unknown_members": "Members of a ZIP or TAR archive that Veil cannot clean (text, "
    "binaries): `block` (the default) refuses the archive naming the member, `keep` forwards "
    "them as they are and names each in the record.",
    "document_comments": "Comments in Office and OpenDocument files: `drop` (the default) "
    "removes them with their anchors, `keep` keeps their text with their authors blanked.",
    "office_macros": "VBA projects in Office files: `block` (the default) refuses the "
    "document, `drop` forwards it without its macros.",
    "limits": "Size and time limits, a block inherited key by key (table below).",
    "detection": "How faces are searched for (CenterFace), a block inherited key by key "
    "(table below). See [Faces](faces.md) for the strategy these keys tune.",
    "text": "Text in pictures (OCR): `pii` covers personal text (e-mail addresses, phone "
    "numbers, card numbers, IBANs, national ID numbers, passport MRZ lines, names, birth dates "
    "and addresses in labelled fields, street addresses, number plates) and every QR code and "
    "barcode with opaque boxes; `all` covers every line of text and every code; `off` leaves "
    "text alone. See [Text](text.md) for what is found and what is not.",
    "text_detection": "How text is read (RapidOCR), a block inherited key by key (table below).",
}

TEXT_DETECTION = {
    "detect_long_side": "Text is detected on a copy whose long side is at most this (lines are "
    "then read from the full-size picture). Lower is faster and misses small text.",
    "box_threshold": "The detector's score for a line of text.",
    "min_text_score": "Recognised lines scoring below this are treated as unreadable.",
    "mask_margin": "Masks reach this share of the line's height beyond the token on every side …",
    "mask_min_margin_px": "… and at least this many pixels.",
    "rotate_below_chars": "When fewer characters read well upright (or the lines stand on "
    "end), the picture is also read turned by 90, 180 and 270 degrees and the best turn is "
    "used: documents photographed sideways or upside down. 0: never.",
}

LIMITS = {
    "max_document_pages": "Most pages a PDF may have; a longer one goes to `on_error`.",
    "max_archive_members": "Most entries a ZIP/TAR archive or Office file may have, counted "
    "from its directory before anything is inflated.",
    "max_inflated_bytes": "Most bytes a document's members may inflate to together, as its "
    "directory declares them, checked before anything is inflated (zip bombs).",
    "max_image_pixels": "Largest image, in pixels, read from the header and checked before "
    "anything is decoded: stops decompression bombs. A larger image goes to `on_error`.",
    "max_body_bytes": "Largest protected request body, in bytes. A larger one is refused, "
    "never streamed past Veil uncleaned; it is also the per-image byte limit, since no image "
    "is larger than the body that carries it. Veil refuses to start when mitmproxy's "
    "`stream_large_bodies` is below it.",
    "image_timeout_seconds": "Time to clean one image, counted from when a worker starts on "
    "it (not while it queues). Past it the image goes to `on_error` and the worker stuck on "
    "it is killed and replaced.",
}

DETECTION = {
    "threshold": "CenterFace's score for a face. Lower finds more faces, with more false "
    "boxes; higher misses small and turned faces.",
    "nms_iou": "Boxes overlapping this much (intersection over union) are one face.",
    "min_face_px": "The smallest face, in original pixels, that must still be found: the "
    "finest pass runs at scale 12 / `min_face_px` (never above 1), since CenterFace reliably "
    "finds faces of about 12 pixels. 16 costs about 1.6× the time on a 12 MP photo.",
    "max_detect_long_side": "Despite the name, a floor: the finest pass's copy is at least "
    "this long (or the original size), whatever `min_face_px` allows, so raising "
    "`min_face_px` saves time only with this lowered (1920 with `min_face_px: 25`: about "
    "0.65× the time, 98% of the crowd faces).",
    "upscale_below": "Uploads whose long side is under this are upscaled ×2 before detection "
    "(0: never).",
    "tile_px": "The largest inference window, a multiple of 32 (the network's input step). "
    "Tiles bound memory: a whole 12 MP window peaks at 2.3 GB, a tile at 0.26 GB.",
    "tile_overlap_px": "Neighbouring windows share at least this many pixels of the copy they "
    "cut; a pass that needs more takes more (faces cut at the finest pass's seams are whole in "
    "the next, coarser pass; the coarsest overlaps by the largest face). At most `tile_px / 2`.",
    "largest_face_px": "The coarsest pass shows a face filling the picture's short side at "
    "this size, the largest face CenterFace still boxes whole. At most `tile_px / 2`.",
    "mask_scale": "Masks cover the detected face box enlarged by this factor …",
    "mask_min_margin_px": "… and by at least this many pixels beyond the box on every side: "
    "a small face's box comes from a reduced copy and is only as exact as the network's "
    "4-pixel output cells.",
}


class UndocumentedPolicyKeys(Exception):
    """The reader and this module's prose disagree: a key lacks a description, or a
    description names a key the reader does not accept."""


# ---- what the code says about each key -------------------------------------------------------


def allowed_values(read: Callable) -> str:
    """The values a reader accepts, as Markdown, taken from the reader itself: the enum of an
    `enum_reader`, the bounds of a `range_reader`, the kind of a `positive_reader`."""
    if read is read_bool:
        return "`true` or `false`"
    factory = read.__qualname__.split(".<locals>.")[0]
    captured = inspect.getclosurevars(read).nonlocals
    if factory == "enum_reader":
        return " · ".join(f"`{member.value}`" for member in captured["enum"])
    if factory in ("positive_reader", "range_reader"):
        kind = "a number" if captured["accept_fractions"] else "a whole number"
        if factory == "positive_reader":
            return f"{kind} > 0"
        low, high = captured["low"], captured["high"]
        low_bound = f"{'≥' if captured['low_inclusive'] else '>'} {low:g}"
        bounds = f"{low_bound}, ≤ {high:g}" if high is not None else low_bound
        multiple = f", a multiple of {captured['multiple']}" if captured["multiple"] else ""
        return f"{kind} {bounds}{multiple}"
    raise UndocumentedPolicyKeys(
        f"the reader {read.__qualname__} is not one reference.allowed_values knows; teach it "
        "how to describe the values that reader accepts"
    )


def enum_of(read: Callable) -> type[Enum] | None:
    """The enum an `enum_reader` reads into, or None for any other reader."""
    return inspect.getclosurevars(read).nonlocals.get("enum")


def yaml_value(value: Any) -> str:
    """A default as it would be written in the policy file."""
    if isinstance(value, Enum):
        return f"`{value.value}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int):
        # Underscores as config/policy.yaml writes big numbers (YAML reads 50_000_000 as a number).
        return f"`{value:_}`" if value >= 100_000 else f"`{value}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    raise UndocumentedPolicyKeys(f"no YAML rendering for a default of type {type(value).__name__}")


def _code_facts() -> dict[str, str]:
    """Values from the code that the prose quotes ({placeholders})."""
    return {
        "supported_version": f"`{SUPPORTED_VERSION}`",
        "known_methods": ", ".join(f"`{method}`" for method in KNOWN_METHODS),
        "any_method": ANY_METHOD,
        "upload_methods": ", ".join(f"`{method}`" for method in KNOWN_METHODS if method in UPLOAD_METHODS),
    }


def _own_keys(keys: Iterable[str]) -> list[str]:
    """The keys of a service or rule besides the settings every level shares."""
    return [key for key in keys if key not in reader.SETTING_KEYS]


def _sections() -> list[tuple[str, Iterable[str], dict[str, str]]]:
    """(where the keys are written, the keys the reader accepts there, their prose)."""
    return [
        ("top level", reader.TOP_LEVEL_KEYS, TOP_LEVEL),
        ("catalogue", reader.CATALOGUE_KEYS, CATALOGUE),
        ("adjusting a catalogue service", _own_keys(reader.ADJUSTMENT_KEYS), ADJUSTMENT),
        ("a service", _own_keys(reader.SERVICE_KEYS), SERVICE),
        ("a rule", _own_keys(reader.RULE_KEYS), RULE),
        ("settings", reader.SETTING_KEYS, SETTINGS),
        ("limits", settings.LIMIT_READERS, LIMITS),
        ("detection", settings.DETECTION_READERS, DETECTION),
        ("text_detection", settings.TEXT_DETECTION_READERS, TEXT_DETECTION),
    ]


def check_descriptions() -> None:
    """Raises UndocumentedPolicyKeys unless every key the reader accepts has a description
    here and every description belongs to such a key."""
    problems = []
    for where, keys, prose in _sections():
        keys = list(keys)
        problems += [f"{where}: '{key}' has no description" for key in keys if not prose.get(key, "").strip()]
        problems += [f"{where}: '{key}' is described but the reader does not accept it" for key in prose if key not in keys]
    for read in settings.SETTING_READERS.values():
        allowed_values(read)  # raises for a reader it cannot describe
    if problems:
        raise UndocumentedPolicyKeys(
            "the policy reference (addons/veil/policy/reference.py) does not match the reader: " + "; ".join(problems)
        )


# ---- Markdown ---------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _key_table(keys: Iterable[str], prose: dict[str, str], facts: dict[str, str]) -> str:
    return _table(["key", "meaning"], [[f"`{key}`", prose[key].format(**facts)] for key in keys])


def _settings_table(
    readers: dict[str, Callable], defaults: object, prose: dict[str, str], facts: dict[str, str], prefix: str = ""
) -> str:
    rows = [
        [f"`{prefix}{key}`", allowed_values(read), yaml_value(getattr(defaults, key)), prose[key].format(**facts)]
        for key, read in readers.items()
    ]
    return _table(["key", "allowed values", "built-in default", "meaning"], rows)


def render_reference() -> str:
    """The Markdown tables of docs/policy-reference.md. Raises UndocumentedPolicyKeys when a
    key lacks a description."""
    check_descriptions()
    facts = _code_facts()
    built_in = Rule()
    block_keys = [key for key in reader.SETTING_KEYS if key not in settings.SETTING_READERS]
    parts = [
        "## Top level",
        _key_table(reader.TOP_LEVEL_KEYS, TOP_LEVEL, facts),
        "## `catalogue`",
        _key_table(reader.CATALOGUE_KEYS, CATALOGUE, facts),
        "## Adjusting a catalogue service",
        "A `services:` entry without `hosts` whose name is a catalogue service's. Besides these, "
        "it may set any key of [the settings](#settings), for all the service's rules; the "
        "policy's settings beat the catalogue's.",
        _key_table(_own_keys(reader.ADJUSTMENT_KEYS), ADJUSTMENT, facts),
        "## In a service",
        "Besides these, a service may set any key of [the settings](#settings), for all its rules.",
        _key_table(_own_keys(reader.SERVICE_KEYS), SERVICE, facts),
        "## In a rule",
        "Besides these, a rule may set any key of [the settings](#settings), for itself alone.",
        _key_table(_own_keys(reader.RULE_KEYS), RULE, facts),
        "## Settings",
        "Written under `defaults:`, a service or a rule; the most specific wins. The built-in "
        "default applies where none of them sets the key.",
        _settings_table(settings.SETTING_READERS, built_in, SETTINGS, facts),
        _key_table(block_keys, SETTINGS, facts),
        "### `limits`",
        _settings_table(settings.LIMIT_READERS, Limits(), LIMITS, facts, prefix="limits."),
        "### `detection`",
        _settings_table(settings.DETECTION_READERS, DetectionSettings(), DETECTION, facts, prefix="detection."),
        "### `text_detection`",
        _settings_table(settings.TEXT_DETECTION_READERS, TextDetectionSettings(), TEXT_DETECTION, facts, prefix="text_detection."),
    ]
    return "\n\n".join(parts) + "\n"


def enums_documented() -> dict[str, type[Enum]]:
    """Setting key -> the enum its reader accepts: the values the reference must list."""
    return {key: enum for key, read in settings.SETTING_READERS.items() if (enum := enum_of(read)) is not None}
