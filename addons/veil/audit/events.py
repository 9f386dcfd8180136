"""What one audit record says: the events, the request facts, and the record itself.

Facts and hashes only: no image bytes, no face crops, no query strings."""

from dataclasses import dataclass
from datetime import UTC, datetime

EVENTS = ("sanitised", "monitored", "blocked", "passed")
# Written when a forwarded request's exchange ends: did what Veil let through arrive?
UPSTREAM = "upstream"


@dataclass(frozen=True)
class RequestFacts:
    """What the audit needs to know about the request an image travelled in."""

    client: str
    user: str | None
    service: str
    rule: str
    method: str
    url: str  # scheme://host/path, never the query string
    # Ties a request's records together, and to the `upstream` record of its outcome.
    request_id: str | None = None


def public_url(scheme: str, host: str, port: int, path: str) -> str:
    default_port = {"https": 443, "http": 80}.get(scheme)
    authority = host if port == default_port else f"{host}:{port}"
    return f"{scheme}://{authority}{path.split('?', 1)[0]}"


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def image_record(
    event: str,
    facts: RequestFacts,
    *,
    envelope: str | None,
    location: str | None,
    report: dict | None = None,
    reason: str | None = None,
    duration_ms: float | None = None,
    image_facts: dict | None = None,
) -> dict:
    """One record. `report` is a sanitise report (dict); `image_facts` fills the size and
    hash fields when there is no report (a blocked or passed image)."""
    assert event in EVENTS, event
    report = report or {}
    facts_before = image_facts or {}
    common = _common_fields(facts)
    return {
        "ts": common.pop("ts"),
        "event": event,
        **common,
        "envelope": envelope,
        "location": location,
        "format": report.get("format", facts_before.get("format")),
        "actions": _actions(event, report),
        "metadata_removed": report.get("metadata_removed", []),
        "faces": len(report.get("faces", [])),
        "text": dict(report.get("text") or {}),  # masked text and codes by kind ({"email": 2, "code": 1}), never the text
        "bytes_before": report.get("bytes_before", facts_before.get("bytes")),
        "bytes_after": report.get("bytes_after") if event == "sanitised" else None,
        "sha256_before": report.get("sha256_before", facts_before.get("sha256")),
        "sha256_after": report.get("sha256_after") if event == "sanitised" else None,
        "duration_ms": None if duration_ms is None else round(duration_ms, 2),
        "reason": reason,
    }


def _actions(event: str, report: dict) -> list[str]:
    if event not in ("sanitised", "monitored") or not report:
        return []
    actions = ["strip"] if report.get("metadata_removed") else []
    if report.get("faces"):
        actions.append(f"faces:{report.get('face_mode')}")
    if report.get("text"):
        actions.append(f"text:{report.get('text_mode')}")
    if report.get("reencoded"):
        actions.append("reencode")
    if report.get("padding"):
        actions.append("pad")  # zero filler added to keep the original length (preserve_length)
    return actions


def upstream_record(facts: RequestFacts, status: int | None = None, error: str | None = None) -> dict:
    """How the exchange of a request Veil let through ended: the service's status, or why
    it never answered. `delivered` is the fact a reader wants: the service took it."""
    delivered = error is None and status is not None and status < 400
    outcome = f"HTTP {status}" if error is None else error
    # The image fields are there, empty, so every record has the same keys (a SIEM's schema).
    common = _common_fields(facts)
    record = {"ts": common.pop("ts"), "event": UPSTREAM, **common} | {
        "envelope": None, "location": None, "format": None, "actions": [], "metadata_removed": [], "faces": 0,
        "bytes_before": None, "bytes_after": None, "sha256_before": None, "sha256_after": None, "duration_ms": None,
        "reason": f"{'delivered' if delivered else 'not delivered'}: {outcome}",
    }  # fmt: skip
    return record | {"status": status, "error": error, "delivered": delivered}


def _common_fields(facts: RequestFacts) -> dict:
    return {
        "ts": now_rfc3339(),
        "request_id": facts.request_id,
        "client": facts.client,
        "user": facts.user,
        "service": facts.service,
        "rule": facts.rule,
        "method": facts.method,
        "url": facts.url,
    }
