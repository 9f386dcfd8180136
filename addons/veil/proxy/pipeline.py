"""What happens to one request body on a protected route, as pure decisions.

The mitmproxy addon feeds bodies in and applies the verdict; everything here is
testable without a proxy: find the images, clean each one as the rule says, decide
whether the request may go on, and rebuild the body byte-exactly.
"""

import hashlib
from dataclasses import dataclass, field

from .. import audit
from ..clean.errors import SanitiseError
from ..clean.report import Result
from ..policy import Rule
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
class ImageOutcome:
    slot: ImageSlot
    event: str  # one of audit.EVENTS
    result: Result | None
    reason: str | None
    duration_ms: float

    @property
    def replacement(self) -> bytes | None:
        return self.result.data if self.event == "sanitised" else None


UNPARSED_REASON = "the body's format has no parser in Veil (gRPC, Connect/protobuf…); forwarded uninspected as the policy allows"
WEBSOCKET_REASON = "WebSocket frames are not inspected; the connection was let through as the policy allows"


@dataclass
class BodyVerdict:
    envelope: str
    outcomes: list[ImageOutcome] = field(default_factory=list)
    body: bytes | None = None  # the rebuilt body when anything changed
    unparsed: bool = False  # a body no envelope could read, forwarded and logged as the policy says
    references: list[Reference] = field(default_factory=list)  # images given by URL or file id, to log

    @property
    def blocked(self) -> ImageOutcome | None:
        return next((outcome for outcome in self.outcomes if outcome.event == "blocked"), None)


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


def clean_image(slot: ImageSlot, rule: Rule) -> ImageOutcome:
    """In-process cleaning of one slot (the proxy uses worker processes: see workers.py)."""
    from .workers import clean

    result, error, ms = clean(slot.image, rule.sanitise_options())
    return judge(slot, rule, result, error, ms)


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


def rebuild(body: bytes, outcomes: list[ImageOutcome]) -> bytes | None:
    replacements = [(outcome.slot, outcome.replacement) for outcome in outcomes if outcome.replacement is not None]
    return splice(body, replacements) if replacements else None


def records(verdict: BodyVerdict, facts: audit.RequestFacts) -> list[dict]:
    """One record per image and per image reference, or a single record for a blocked request."""
    if verdict.unparsed:
        return [audit.image_record("passed", facts, envelope=None, location=None, reason=UNPARSED_REASON)]
    blocked = verdict.blocked
    if blocked:
        return [_record(blocked, verdict.envelope, facts)]
    images = [_record(outcome, verdict.envelope, facts) for outcome in verdict.outcomes]
    return images + [reference_record(reference, verdict.envelope, facts) for reference in verdict.references]


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
        image_facts=None if report else {"bytes": len(image), "sha256": hashlib.sha256(image).hexdigest()},
    )


def refusal_record(facts: audit.RequestFacts, reason: str, envelope: str | None = None) -> dict:
    return audit.image_record("blocked", facts, envelope=envelope, location=None, reason=reason)


def summary(verdict: BodyVerdict) -> str:
    """The one line a reviewer sees in mitmweb's flow comment."""
    if verdict.blocked:
        return f"Veil blocked this upload: {verdict.blocked.reason}"
    parts = []
    if verdict.references:
        parts.append(f"{len(verdict.references)} image(s) given by URL or file id, not seen")
    for outcome in verdict.outcomes:
        report = outcome.result.report if outcome.result else None
        removed = ", ".join(report.metadata_removed) if report and report.metadata_removed else "no metadata"
        faces = f"{len(report.faces)} face(s) {report.face_mode}" if report and report.faces else "no faces"
        parts.append(f"{outcome.slot.location}: {outcome.event} ({removed}; {faces})")
    return "Veil: " + "; ".join(parts)
