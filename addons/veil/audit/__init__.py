"""Veil's audit log: writing the hash chain, reading, verifying and summarising it.

Layer rule: `audit` imports nothing from `clean`, `policy`, `proxy` or `cli`: it works on
records (dicts of facts and hashes), never on images or requests.

- `events`: what one record says (`image_record`, `RequestFacts`, `EVENTS`).
- `writer`: `AuditLog`, the one writer of a chain (rotation, repair of a torn tail).
- `chain`: the hash chain both the writer and the verifier use; `files`: rotated file names.
- `verify`, `records`, `summary`, `ecs`, `html_report`: read logs as streams, one line at a
  time, so memory stays bounded however long the log is. `veil audit …` (cli/audit.py) is a
  thin adapter over them.
"""

from .events import (
    EVENTS,
    UPSTREAM,
    RequestFacts,
    image_record,
    now_rfc3339,
    public_url,
    upstream_record,
)
from .writer import AuditLog, LogInUse, Rotation

__all__ = ["EVENTS", "UPSTREAM", "upstream_record", "AuditLog", "LogInUse", "RequestFacts", "Rotation", "image_record", "now_rfc3339", "public_url"]
