"""One self-contained HTML report: inline CSS and SVG drawn here, no script, no network.

`gather` reads the records once into small counters; `render` turns those and the
chain verdict into a page. Every chart is an <svg class="chart"> of <rect class="bar">.
"""

import shlex
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape

from .events import EVENTS, now_rfc3339
from .records import is_upload, is_upstream
from .summary import Summary, Tally
from .verify import Verdict

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
TOP = 10


# The columns of the per-user and per-service tables: every event kind, then what was removed.
TABLE_COLUMNS = ("uploads", *EVENTS, "faces_masked", "gps_removed", "delivered", "not_delivered")


@dataclass
class ReportData:
    summary: Summary = field(default_factory=Summary)  # totals, by user, service, event, and the time range
    per_day_service: Counter = field(default_factory=Counter)  # (day, service) -> interventions
    users: Counter = field(default_factory=Counter)
    metadata: Counter = field(default_factory=Counter)
    block_reasons: Counter = field(default_factory=Counter)
    text_masked: Counter = field(default_factory=Counter)  # kind of text or code -> areas masked in forwarded images

    @property
    def total(self) -> Tally:
        return self.summary.total


def gather(records: Iterable[dict]) -> ReportData:
    data = ReportData()
    for record in records:
        if is_upstream(record):
            data.summary.add(record)  # delivered or not: counted, but no intervention of its own
        if not is_upload(record):
            continue
        data.summary.add(record)
        data.per_day_service[(str(record.get("ts", ""))[:10], record.get("service") or "-")] += 1
        data.users[record.get("user") or "(no user)"] += 1
        data.metadata.update(record.get("metadata_removed") or ())
        if record.get("event") == "blocked":
            data.block_reasons[record.get("reason") or "(no reason)"] += 1
        if record.get("event") == "sanitised":
            data.text_masked.update(record.get("text") or {})
    return data


def render(data: ReportData, verdict: Verdict, title: str = "Veil audit report", generated: str | None = None) -> str:
    total = data.total
    cards = "".join(
        f'<div class="card"><b>{value:,}</b><span>{label}</span></div>'
        for label, value in (
            ("uploads seen", total.uploads), *((event, getattr(total, event)) for event in EVENTS),
            ("requests delivered", total.delivered), ("let through, not delivered", total.not_delivered),
            ("faces masked", total.faces_masked), ("text areas masked", sum(data.text_masked.values())),
            ("GPS removed", total.gps_removed),
        )
    )  # fmt: skip
    sections = [
        _section("Interventions per day, by service", _stacked_days(data.per_day_service)),
        _section("Top users", _bars(data.users.most_common(TOP))),
        _section("Kinds of metadata removed", _bars(data.metadata.most_common())),
        _section("Kinds of text and codes masked", _bars(data.text_masked.most_common())),
        _section("Blocked uploads, by reason", _bars(data.block_reasons.most_common(TOP), label_width=420)),
        # After the charts, which a first screenful should show.
        _section("By user", _table("user", data.summary.by["user"])),
        _section("By service", _table("service", data.summary.by["service"])),
    ]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{_CSS}</style></head>
<body><h1>{escape(title)}</h1>
{_coverage(data.summary, generated or now_rfc3339())}
{_banner(verdict)}
<div class="cards">{cards}</div>
{''.join(sections)}
<p class="foot">Files: {escape(', '.join(str(p) for p in verdict.files))}</p>
</body></html>
"""


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 12px}h2{font-size:16px;margin:24px 0 8px}
.banner{padding:10px 14px;border-radius:6px;font-weight:600;margin-bottom:16px}
.banner.ok{background:#e3f4e1;border:1px solid #59a14f}.banner.broken{background:#fde2e2;border:1px solid #e15759}
.banner small{display:block;font-weight:400}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:20px}.card span{color:#555}
svg.chart text{font:12px system-ui,sans-serif;fill:#333}.empty{color:#777}.foot{color:#777;font-size:12px;margin-top:24px}
.meta{color:#555;margin:0 0 12px}code{font:12px ui-monospace,monospace;word-break:break-all}
table.counts{border-collapse:collapse}table.counts th,table.counts td{border-bottom:1px solid #eee;padding:3px 10px;text-align:left}
table.counts td.n{text-align:right;font-variant-numeric:tabular-nums}
.legend span{display:inline-block;margin-right:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
"""


def _coverage(summary: Summary, generated: str) -> str:
    covered = f"{summary.first_ts} to {summary.last_ts}" if summary.first_ts else "no uploads"
    return f'<p class="meta" id="coverage">Records from <b>{escape(covered)}</b> (UTC) · generated {escape(generated)}</p>'


def _banner(verdict: Verdict) -> str:
    if verdict.intact:
        notes = "".join(f"<small>{escape(note)}</small>" for note in verdict.notes)
        head = f"✔ Hash chain intact: {verdict.records:,} records in {len(verdict.files)} file(s).{notes}"
        return f'<div class="banner ok" id="verification">{head}{_last_hashes(verdict)}{_how_to_verify(verdict)}</div>'
    problem = f"<small>{escape(verdict.problem or '')}</small>"
    return f'<div class="banner broken" id="verification">✘ Hash chain BROKEN — the log was changed after it was written.{problem}{_how_to_verify(verdict)}</div>'


def _last_hashes(verdict: Verdict) -> str:
    """The hash a reader can compare with a copy kept elsewhere: equal, and nothing before it changed."""
    chains = verdict.chains or [verdict]
    return "".join(
        f'<small>last hash{" of " + escape(c.files[-1].name) if verdict.chains else ""}: <code class="hash">{escape(c.last_hash or "(empty)")}</code></small>'
        for c in chains
    )


def _how_to_verify(verdict: Verdict) -> str:
    command = shlex.join(["veil", "audit", "verify", *(str(path) for path in verdict.files)])
    return f"<small>Check it yourself (the report is only a copy): <code>{escape(command)}</code></small>"


def _table(dimension: str, rows: dict[str, Tally]) -> str:
    if not rows:
        return '<p class="empty">none</p>'
    head = "".join(f"<th>{escape(column.replace('_', ' '))}</th>" for column in (dimension, *TABLE_COLUMNS))
    body = "".join(
        f"<tr><td>{escape(key)}</td>" + "".join(f'<td class="n">{getattr(rows[key], c):,}</td>' for c in TABLE_COLUMNS) + "</tr>"
        for key in sorted(rows)
    )
    return f'<table class="counts" id="by-{escape(dimension)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _section(title: str, body: str) -> str:
    return f"<h2>{escape(title)}</h2>\n{body}\n"


def _bars(rows: list[tuple[str, int]], label_width: int = 180, width: int = 720) -> str:
    """Horizontal bars, one per (label, count)."""
    if not rows:
        return '<p class="empty">none</p>'
    row_height, peak = 22, max(count for _, count in rows) or 1
    span = width - label_width - 60
    parts = []
    for index, (label, count) in enumerate(rows):
        y = index * row_height
        length = max(2, round(span * count / peak))
        shown = label if len(label) <= label_width // 7 else label[: label_width // 7 - 1] + "…"
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end"><title>{escape(label)}</title>{escape(shown)}</text>'
            f'<rect class="bar" x="{label_width}" y="{y + 3}" width="{length}" height="{row_height - 6}" fill="{PALETTE[0]}"/>'
            f'<text x="{label_width + length + 6}" y="{y + 15}">{count:,}</text>'
        )
    height = row_height * len(rows)
    return f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">{"".join(parts)}</svg>'


def _stacked_days(per_day_service: Counter, width: int = 720, height: int = 240) -> str:
    """Vertical bars per day, stacked by service, with a legend."""
    if not per_day_service:
        return '<p class="empty">none</p>'
    days = sorted({day for day, _ in per_day_service})
    services = sorted({service for _, service in per_day_service})
    colour = {service: PALETTE[i % len(PALETTE)] for i, service in enumerate(services)}
    totals = {day: sum(per_day_service[(day, s)] for s in services) for day in days}
    peak, left, bottom = max(totals.values()) or 1, 40, 30
    slot = (width - left) / len(days)
    bar_width = max(2.0, min(40.0, slot * 0.7))
    plot = height - bottom - 10
    parts = [
        f'<text x="{left - 6}" y="14" text-anchor="end">{peak:,}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="#999"/>',
    ]
    label_every = max(1, len(days) // 12)
    for index, day in enumerate(days):
        x, y = left + index * slot + (slot - bar_width) / 2, height - bottom
        for service in services:
            count = per_day_service[(day, service)]
            if not count:
                continue
            size = plot * count / peak
            y -= size
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_width:.1f}" height="{size:.1f}" fill="{colour[service]}">'
                f"<title>{escape(day)} {escape(service)}: {count:,}</title></rect>"
            )
        if index % label_every == 0:
            parts.append(f'<text x="{x + bar_width / 2:.1f}" y="{height - 10}" text-anchor="middle">{escape(day[5:])}</text>')
    legend = "".join(f'<span><i style="background:{colour[s]}"></i>{escape(s)}</span>' for s in services)
    svg = f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">{"".join(parts)}</svg>'
    return f'{svg}<div class="legend">{legend}</div>'
