"""Audit records as Elastic Common Schema documents, for a SIEM.

Veil's own facts that ECS has no field for live under `veil.*`. `event.outcome` is
"failure" for a blocked upload (the upload did not go through) and "success" otherwise.
"""

from urllib.parse import urlsplit

ECS_VERSION = "8.11.0"
_EVENT_TYPE = {"sanitised": ["change", "allowed"], "monitored": ["info", "allowed"], "passed": ["allowed"], "blocked": ["denied"]}


def to_ecs(record: dict) -> dict:
    event = record.get("event")
    document = {
        "@timestamp": record.get("ts"),
        "ecs": {"version": ECS_VERSION},
        "event": _drop_none({
            "kind": "event",
            "category": ["web", "file"],
            "type": _EVENT_TYPE.get(event, ["info"]),
            "action": event,
            "outcome": "failure" if event == "blocked" else "success",
            "reason": record.get("reason"),
            "duration": None if record.get("duration_ms") is None else int(record["duration_ms"] * 1_000_000),
            "module": "veil",
            "dataset": "veil.audit",
            "sequence": record.get("seq"),
            "hash": record.get("hash"),
        }),
        "observer": {"vendor": "Veil", "product": "Veil", "type": "proxy"},
        "source": _drop_none({"ip": record.get("client")}),
        "user": _drop_none({"name": record.get("user")}),
        "http": _drop_none({"request": _drop_none({"method": record.get("method")})}),
        "url": _url(record.get("url")),
        "rule": _drop_none({"name": record.get("rule")}),
        "file": _file(record),
        "veil": _drop_none({
            "service": record.get("service"),
            "envelope": record.get("envelope"),
            "location": record.get("location"),
            "actions": record.get("actions"),
            "metadata_removed": record.get("metadata_removed"),
            "faces": record.get("faces"),
            "image": _drop_none({
                "sha256_before": record.get("sha256_before"),
                "sha256_after": record.get("sha256_after"),
                "bytes_before": record.get("bytes_before"),
                "bytes_after": record.get("bytes_after"),
            }),
            "chain": _drop_none({"prev_hash": record.get("prev_hash"), "seq": record.get("seq")}),
        }),
    }
    return _drop_none(document)


def _url(url: str | None) -> dict | None:
    if not url:
        return None
    parts = urlsplit(url)
    full = f"{parts.scheme}://{parts.netloc}{parts.path}"  # never a query: it may carry signatures
    return _drop_none({"full": full, "scheme": parts.scheme, "domain": parts.hostname, "port": parts.port, "path": parts.path})


def _file(record: dict) -> dict | None:
    """The file the service received when it was cleaned, else the one Veil saw."""
    sha256 = record.get("sha256_after") or record.get("sha256_before")
    size = record.get("bytes_after") or record.get("bytes_before")
    if not sha256 and not size:
        return None
    return _drop_none({"hash": {"sha256": sha256} if sha256 else None, "size": size, "extension": record.get("format")})


def _drop_none(mapping: dict) -> dict | None:
    kept = {key: value for key, value in mapping.items() if value not in (None, {}, [])}
    return kept or None
