"""One protected request, top to bottom: what Veil decides, as pure steps.

`examine` is the whole story of a request on a protected route, in the order it happens:

1. route      the rule may refuse the service outright
2. decode     undo Content-Encoding (every gzip member), within the body limit
3. find       the envelope and every image in it (and images only referred to by URL)
4. clean      each image in a worker process, judged by the rule
5. rebuild    the body byte-exactly, only the image bytes changed
6. prove      scan the bytes that will leave for any image Veil did not produce
7. record     one audit record per image, reference or refusal

The addon (`addon.py`) turns a mitmproxy flow into a `Request`, awaits `examine`, and applies
the `Decision`: write its records, then forward (with the new body and header fixes) or
answer the refusal. Cleaning and slow parsing run elsewhere (worker processes, a thread
pool); `examine` receives them as a `Helpers` so it stays free of mitmproxy and of pools.
"""

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from .. import audit
from ..clean import documents, formats
from ..clean.errors import SanitiseError
from ..clean.report import Result
from ..policy import Match, Rule
from . import content_encoding, egress, egress_check, integrity
from .envelopes import find_images, json_lines, splice
from .envelopes.base import EnvelopeError, ImageSlot
from .envelopes.references import Reference, find_references


class RequestRefused(Exception):
    """The whole request must be answered by Veil instead of reaching the service: 403 for
    what will never pass, 503 with Retry-After for what may pass a little later."""

    def __init__(self, reason: str, status: int = 403, retry_after: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class Request:
    """What Veil needs of one HTTP request, without mitmproxy."""

    method: str
    path: str
    headers: Mapping[str, str]  # case-insensitive in the addon (mitmproxy's Headers)
    raw_body: bytes  # as received, Content-Encoding still applied
    facts: audit.RequestFacts

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


@dataclass(frozen=True)
class ImageOutcome:
    slot: ImageSlot
    event: str  # one of audit.EVENTS
    result: Result | None
    reason: str | None
    duration_ms: float

    @property
    def replacement(self) -> bytes | None:
        return self.result.data if self.event == "sanitised" else None


@dataclass
class BodyVerdict:
    envelope: str
    outcomes: list[ImageOutcome] = field(default_factory=list)
    body: bytes | None = None  # the rebuilt body when anything changed
    unparsed: bool = False  # a body no envelope could read, forwarded and logged as the policy says
    references: list[Reference] = field(default_factory=list)  # images given by URL or file id, to log
    notes: list[str] = field(default_factory=list)  # what the egress scan saw leave unseen, to log

    @property
    def blocked(self) -> ImageOutcome | None:
        return next((outcome for outcome in self.outcomes if outcome.event == "blocked"), None)


@dataclass
class Decision:
    """What the addon applies: the records to write first, then a refusal or a forward."""

    records: list[dict]
    refusal: RequestRefused | None = None
    verdict: BodyVerdict | None = None

    @property
    def new_body(self) -> bytes | None:
        return None if self.refusal or self.verdict is None else self.verdict.body

    def resized(self) -> list[integrity.Resized]:
        outcomes = self.verdict.outcomes if self.verdict else []
        return [integrity.Resized(len(o.slot.image), len(o.replacement)) for o in outcomes if o.replacement is not None]


@dataclass(frozen=True)
class Helpers:
    """The slow work `examine` hands off: cleaning images (worker processes, admission)
    and running a blocking function off the event loop (large bodies' parsing)."""

    clean_all: Callable[[list[ImageSlot], Rule], Awaitable[list[ImageOutcome]]]
    run_blocking: Callable[..., Awaitable]


INLINE_PARSE_BYTES = 256 * 1024  # a chat request parses in microseconds: no hand-off


async def examine(request: Request, match: Match, helpers: Helpers) -> Decision:
    """The decision for one request on a protected route (see the module's docstring)."""
    try:
        verdict = await _verdict(request, match, helpers)
    except RequestRefused as refusal:
        return Decision([refusal_record(request.facts, refusal.reason)], refusal)
    if verdict.blocked:
        return Decision(records(verdict, request.facts), RequestRefused(verdict.blocked.reason), verdict)
    return Decision(records(verdict, request.facts), None, verdict)


async def _verdict(request: Request, match: Match, helpers: Helpers) -> BodyVerdict:
    rule = match.rule
    # 1. route
    if rule.action == "block":
        raise RequestRefused(f"the policy blocks uploads to {match.service}")
    # 2. decode
    body = decoded_body(request.raw_body, request.headers, rule.limits.max_body_bytes)
    # 3. find
    if len(body) <= INLINE_PARSE_BYTES:
        inspection = inspect(body, request.content_type, rule)
    else:
        inspection = await helpers.run_blocking(inspect, body, request.content_type, rule)
    if rule.action == "sanitise":
        split = integrity.split_upload_refusal(request.headers, bool(inspection.slots))
        if split:
            raise RequestRefused(split)
    verdict = BodyVerdict(inspection.envelope, unparsed=unparsed_to_log(inspection, body, rule), references=inspection.references)
    # 4. clean
    if rule.action == "allow":
        verdict.outcomes = [allowed(slot) for slot in inspection.slots]
    else:
        verdict.outcomes = await _clean_slots(inspection.slots, rule, helpers)
    if verdict.blocked:
        return verdict
    # 5. rebuild
    if rule.action == "sanitise":
        verdict.body = rebuild(body, verdict.outcomes)
    if verdict.body is None and content_encoding.codings(request.headers.get("transfer-encoding", "")) not in ([], ["chunked"]):
        verdict.body = body  # sent decoded: the addon drops the transfer codings it undid
    # 6. prove
    leaving = body if verdict.body is None else verdict.body
    judgement = await _judge_egress(leaving, verdict, rule, helpers)
    if judgement.refusal:
        raise RequestRefused(judgement.refusal)
    verdict.notes = judgement.notes
    return verdict


async def _judge_egress(leaving: bytes, verdict: BodyVerdict, rule: Rule, helpers: Helpers) -> egress_check.EgressJudgement:
    # The cleaned outputs, and what the rule knowingly lets through as it was (monitored and
    # passed images have records of their own); for documents, every image inside them too.
    accounted_for = [outcome.replacement or outcome.slot.image for outcome in verdict.outcomes]
    accounted_for += [image for outcome in verdict.outcomes for image in _images_inside(outcome)]
    documents_handled = any(is_document(outcome.slot.image) for outcome in verdict.outcomes)
    # allow and monitor never refuse: what they would have refused becomes a record.
    arguments = (leaving, accounted_for, rule.opaque_files, rule.action == "sanitise", documents_handled)
    if len(leaving) <= INLINE_PARSE_BYTES:
        return egress_check.judge(*arguments)
    return await helpers.run_blocking(egress_check.judge, *arguments)


def _images_inside(outcome: ImageOutcome) -> list[bytes]:
    """The images Veil wrote into a cleaned document; for a document the rule passes as it
    is, the images the egress scan finds in it (they leave knowingly, with its record)."""
    if outcome.replacement is not None:
        return list(outcome.result.embedded_outputs)
    if not is_document(outcome.slot.image):
        return []
    return [bytes(finding.image) for finding in egress.scan(outcome.slot.image).of_kind("image") if finding.image is not None]


# ---- 2. decode -------------------------------------------------------------------------


def decoded_body(raw: bytes, headers: Mapping[str, str], limit: int) -> bytes:
    """The body as the service will read it: every transfer coding mitmproxy left (`gzip,
    chunked`: it only removes `chunked`) and every Content-Encoding undone, within `limit`."""
    if len(raw) > limit:
        raise RequestRefused(f"the request body is {len(raw):,} bytes; the policy inspects at most {limit:,}")
    body = raw
    for header in ("transfer-encoding", "content-encoding"):
        try:
            body = content_encoding.decode(body, headers.get(header, ""), limit)
        except content_encoding.UndecodableBody as error:
            name = "Transfer-Encoding" if header == "transfer-encoding" else "Content-Encoding"
            raise RequestRefused(f"the request body's {name} could not be decoded ({error})") from None
    if len(body) > limit:
        raise RequestRefused(f"the decoded request body exceeds the policy's {limit:,} byte limit")
    return body


# ---- 3. find ---------------------------------------------------------------------------

UNPARSED_REASON = "the body's format has no parser in Veil (gRPC, Connect/protobuf…); forwarded uninspected as the policy allows"
WEBSOCKET_REASON = "WebSocket frames are not inspected; the connection was let through as the policy allows"


@dataclass(frozen=True)
class Inspection:
    """What a body holds: its envelope, the images in it, and the images it only refers to."""

    envelope: str
    slots: list[ImageSlot]
    references: list[Reference]

    def unparsed(self, body: bytes) -> bool:
        return self.envelope == "none" and bool(body)


def locate_images(body: bytes, content_type: str | None, rule: Rule) -> tuple[str, list[ImageSlot]]:
    try:
        envelope, slots = find_images(body, content_type)
    except EnvelopeError as error:
        raise RequestRefused(f"the request body could not be parsed: {error.reason}") from None
    if envelope == "none" and body and rule.unparsed_bodies == "block" and rule.action != "monitor":
        raise RequestRefused("the request body is in a format Veil cannot inspect, and the policy blocks those")
    return envelope, slots


def inspect(body: bytes, content_type: str | None, rule: Rule) -> Inspection:
    """locate_images, plus the image references a JSON body holds as `image_references` says:
    allow skips the search, block refuses the request at the first one (unless the rule
    only monitors), log returns them to be recorded."""
    envelope, slots = locate_images(body, content_type, rule)
    references: list[Reference] = []
    if envelope in ("json", "jsonl") and rule.image_references != "allow" and rule.action in ("sanitise", "monitor"):
        references = find_references(body) if envelope == "json" else json_lines.find_references(body)
        if references and rule.image_references == "block" and rule.action == "sanitise":
            first = references[0]
            more = f" (and {len(references) - 1} more)" if len(references) > 1 else ""
            raise RequestRefused(
                f"{first.describe()} ({first.location}{more}), and the policy blocks images Veil cannot clean this way"
            )
    return Inspection(envelope, slots, references)


def unparsed_to_log(inspection: Inspection, body: bytes, rule: Rule) -> bool:
    """True when an unparsed body is forwarded with a `passed` record: unparsed_bodies: log,
    or block on a rule that only monitors (monitor never blocks)."""
    return inspection.unparsed(body) and (rule.unparsed_bodies == "log" or rule.action == "monitor" and rule.unparsed_bodies == "block")


def websocket_decision(rule: Rule) -> str:
    """allow | log | block for a WebSocket upgrade on a protected host: its frames are not
    inspected, so `unparsed_bodies` decides."""
    if rule.action == "block":
        return "block"
    if rule.action == "monitor" and rule.unparsed_bodies == "block":
        return "log"  # monitor never blocks
    return rule.unparsed_bodies.value


def websocket_record(facts: audit.RequestFacts) -> dict:
    return audit.image_record("passed", facts, envelope="websocket", location=None, reason=WEBSOCKET_REASON)


# ---- 4. clean --------------------------------------------------------------------------


DOCUMENTS_ALLOWED = "the policy forwards documents without cleaning them (documents: allow)"


def is_document(data: bytes) -> bool:
    """A PDF, Office file or archive (or one Veil refuses by name), as the cleaner sniffs it."""
    try:
        return documents.sniff(data) is not None
    except SanitiseError:
        return True


async def _clean_slots(slots: list[ImageSlot], rule: Rule, helpers: Helpers) -> list[ImageOutcome]:
    """Images are cleaned; documents as the rule's `documents` says: cleaned like images (in
    the same workers, under the same time limit), refused, or passed with a record. A rule
    that only monitors cleans them to report what it would do."""
    held_back = set()
    if rule.documents != "clean" and rule.action == "sanitise":
        held_back = {index for index, slot in enumerate(slots) if is_document(slot.image)}
    if held_back and rule.documents == "block":
        first = slots[min(held_back)]
        raise RequestRefused(f"the request carries a document ({first.location}), and the policy blocks documents")
    to_clean = [slot for index, slot in enumerate(slots) if index not in held_back]
    cleaned = iter(await helpers.clean_all(to_clean, rule) if to_clean else [])
    return [
        ImageOutcome(slot, "passed", None, DOCUMENTS_ALLOWED, 0.0) if index in held_back else next(cleaned)
        for index, slot in enumerate(slots)
    ]


def clean_image(slot: ImageSlot, rule: Rule) -> ImageOutcome:
    """In-process cleaning of one slot (the proxy uses worker processes: see workers.py)."""
    from .workers import clean

    result, error, ms = clean(slot.image, rule.sanitise_options())
    return judge(slot, rule, result, error, ms)


async def clean_in_process(slots: list[ImageSlot], rule: Rule) -> list[ImageOutcome]:
    """`Helpers.clean_all` for callers without a worker pool (tests, the CLI)."""
    return [clean_image(slot, rule) for slot in slots]


async def run_inline(function, *args):
    """`Helpers.run_blocking` for callers without a thread pool."""
    return function(*args)


def in_process() -> Helpers:
    return Helpers(clean_in_process, run_inline)


def judge(slot: ImageSlot, rule: Rule, result: Result | None, error: SanitiseError | None, ms: float) -> ImageOutcome:
    if rule.action == "monitor":
        reason = f"would block: {error.reason}" if error and rule.on_error == "block" else error and error.reason
        return ImageOutcome(slot, "monitored", result, reason, ms)
    if error is None:
        return ImageOutcome(slot, "sanitised", result, None, ms)
    event = "passed" if rule.on_error == "allow" else "blocked"
    return ImageOutcome(slot, event, None, error.reason, ms)


def allowed(slot: ImageSlot) -> ImageOutcome:
    return ImageOutcome(slot, "passed", None, "the policy allows this service without cleaning", 0.0)


def timed_out(slot: ImageSlot, rule: Rule, seconds: float) -> ImageOutcome:
    reason = f"cleaning the image took longer than {seconds:g} s"
    return judge(slot, rule, None, SanitiseError(reason), seconds * 1000)


# ---- 5. rebuild ------------------------------------------------------------------------


def rebuild(body: bytes, outcomes: list[ImageOutcome]) -> bytes | None:
    replacements = [(outcome.slot, outcome.replacement) for outcome in outcomes if outcome.replacement is not None]
    return splice(body, replacements) if replacements else None


# ---- 7. record -------------------------------------------------------------------------


def records(verdict: BodyVerdict, facts: audit.RequestFacts) -> list[dict]:
    """One record per image and per image reference, or a single record for a blocked request."""
    if verdict.unparsed:
        unparsed = audit.image_record("passed", facts, envelope=None, location=None, reason=UNPARSED_REASON)
        return [unparsed] + [audit.image_record("passed", facts, envelope=None, location=None, reason=note) for note in verdict.notes]
    blocked = verdict.blocked
    if blocked:
        return [_record(blocked, verdict.envelope, facts)]
    images = [_record(outcome, verdict.envelope, facts) for outcome in verdict.outcomes]
    references = [reference_record(reference, verdict.envelope, facts) for reference in verdict.references]
    notes = [audit.image_record("passed", facts, envelope=verdict.envelope, location=None, reason=note) for note in verdict.notes]
    return images + references + notes


def reference_record(reference: Reference, envelope: str, facts: audit.RequestFacts) -> dict:
    """`passed`: the request goes on, the image it names was never seen (nor its URL's query)."""
    return audit.image_record("passed", facts, envelope=envelope, location=reference.location, reason=reference.describe())


def _record(outcome: ImageOutcome, envelope: str, facts: audit.RequestFacts) -> dict:
    report = outcome.result.report.to_dict() if outcome.result else None
    image = outcome.slot.image
    return audit.image_record(
        outcome.event,
        facts,
        envelope=envelope,
        location=outcome.slot.location,
        report=report,
        reason=outcome.reason,
        duration_ms=outcome.duration_ms,
        image_facts=None if report else {"bytes": len(image), "sha256": hashlib.sha256(image).hexdigest(), "format": _format_of(image)},
    )


def _format_of(image: bytes) -> str | None:
    """The format a blocked or passed image was, when its first bytes say (issue 19: blocked
    records said `format: null` even when the format was known)."""
    try:
        return formats.sniff(image).name
    except SanitiseError:
        return None


def refusal_record(facts: audit.RequestFacts, reason: str, envelope: str | None = None) -> dict:
    return audit.image_record("blocked", facts, envelope=envelope, location=None, reason=reason)


def summary(verdict: BodyVerdict) -> str:
    """The one line a reviewer sees in mitmweb's flow comment."""
    if verdict.blocked:
        return f"Veil blocked this upload: {verdict.blocked.reason}"
    if verdict.unparsed:
        return "Veil: body format not inspected (allowed by the policy)"
    parts = []
    if verdict.references:
        parts.append(f"{len(verdict.references)} image(s) given by URL or file id, not seen")
    for outcome in verdict.outcomes:
        report = outcome.result.report if outcome.result else None
        removed = ", ".join(report.metadata_removed) if report and report.metadata_removed else "no metadata"
        faces = f"{len(report.faces)} face(s) {report.face_mode}" if report and report.faces else "no faces"
        text = "; text masked: " + ", ".join(f"{kind} {count}" for kind, count in report.text.items()) if report and report.text else ""
        parts.append(f"{outcome.slot.location}: {outcome.event} ({removed}; {faces}{text})")
    return "Veil: " + "; ".join(parts)


def run_examine(request: Request, match: Match) -> Decision:
    """`examine` with in-process cleaning, for tests and the CLI."""
    return asyncio.run(examine(request, match, in_process()))
