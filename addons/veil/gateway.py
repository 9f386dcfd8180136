"""What happens to one request body on a protected route, as pure decisions.

The mitmproxy addon feeds bodies in and applies the verdict; everything here is
testable without a proxy: find the images, clean each one as the rule says, decide
whether the request may go on, and rebuild the body byte-exactly.
"""

import hashlib
from dataclasses import dataclass, field

from . import audit
from .envelopes import find_images, splice
from .envelopes.base import EnvelopeError, ImageSlot
from .errors import SanitiseError
from .policy import Rule
from .report import Result


class RequestRefused(Exception):
    """The whole request must be answered by Veil instead of reaching the service."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


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
    unparsed: bool = False  # a body no envelope could read, let through as the policy allows

    @property
    def blocked(self) -> ImageOutcome | None:
        return next((outcome for outcome in self.outcomes if outcome.event == "blocked"), None)


def locate_images(body: bytes, content_type: str | None, rule: Rule) -> tuple[str, list[ImageSlot]]:
    try:
        envelope, slots = find_images(body, content_type)
    except EnvelopeError as error:
        raise RequestRefused(f"the request body could not be parsed: {error.reason}") from None
    if envelope == "none" and body and rule.unparsed_bodies == "block":
        raise RequestRefused("the request body is in a format Veil cannot inspect, and the policy blocks those")
    return envelope, slots


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
    """One record per image, or a single record for a blocked request."""
    if verdict.unparsed:
        reason = "the body's format has no parser in Veil; forwarded uninspected as the policy allows"
        return [audit.image_record("passed", facts, envelope=None, location=None, reason=reason)]
    blocked = verdict.blocked
    chosen = [blocked] if blocked else verdict.outcomes
    return [_record(outcome, verdict.envelope, facts) for outcome in chosen]


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
    for outcome in verdict.outcomes:
        report = outcome.result.report if outcome.result else None
        removed = ", ".join(report.metadata_removed) if report and report.metadata_removed else "no metadata"
        faces = f"{len(report.faces)} face(s) {report.face_mode}" if report and report.faces else "no faces"
        parts.append(f"{outcome.slot.location}: {outcome.event} ({removed}; {faces})")
    return "Veil: " + "; ".join(parts)
