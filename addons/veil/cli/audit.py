"""`veil audit verify | summary | show | report | export`: thin adapters over veil.auditlog.

Exit codes: 0 done (verify: the chain is intact), 1 the chain is broken, 2 bad
arguments or unreadable files, with one readable line on stderr.
"""

import json
import sys
from pathlib import Path

from ..audit import ecs, files, html_report, records, summary, verify

EXIT_BROKEN, EXIT_USAGE = 1, 2


def register(commands) -> None:
    audit = commands.add_parser("audit", help="verify, summarise, show, report or export the audit log")
    sub = audit.add_subparsers(title="audit commands")

    check = sub.add_parser("verify", help="check the hash chain; exit 1 naming the first changed line")
    _files_argument(check)
    check.set_defaults(handler=_verify)

    tables = sub.add_parser("summary", help="uploads seen, sanitised, blocked… by service, user, event and day")
    _files_argument(tables)
    _time_arguments(tables)
    tables.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    tables.set_defaults(handler=_summary)

    show = sub.add_parser("show", help="list records (a table, or --json lines)")
    _files_argument(show)
    _time_arguments(show)
    show.add_argument("--user", help="only this user ('-' for records without one)")
    show.add_argument("--service", help="only this service (the policy's name, e.g. openai-api)")
    show.add_argument("--event", choices=(*records.IMAGE_EVENTS, "upstream"), help="only this event (upstream: the outcome of what was let through)")
    show.add_argument("--limit", type=int, default=0, help="only the last N matching records")
    show.add_argument("--json", action="store_true", help="the records as JSON lines, unchanged")
    show.set_defaults(handler=_show)

    report = sub.add_parser("report", help="one self-contained HTML report with charts")
    report.add_argument("--html", required=True, metavar="OUT", help="the HTML file to write")
    _files_argument(report)
    _time_arguments(report)
    report.set_defaults(handler=_report)

    export = sub.add_parser("export", help="records as JSON lines for a SIEM")
    export.add_argument("--format", choices=["ecs"], default="ecs", help="ecs: Elastic Common Schema")
    _files_argument(export)
    _time_arguments(export)
    export.set_defaults(handler=_export)


def _files_argument(parser):
    parser.add_argument("files", nargs="+", metavar="FILE", help="log files in rotation order (oldest first), or a directory")


def _time_arguments(parser):
    parser.add_argument("--since", help="from this time: 2026-11-26, 2026-11-26T08:00Z, or 7d / 24h ago")
    parser.add_argument("--until", help="before this time (exclusive), same forms")


def _paths(args) -> list[Path]:
    paths = files.chain_files(args.files)
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise _UsageError(f"no such log file: {', '.join(missing)}")
    if not paths:
        raise _UsageError(f"no audit log (*.jsonl) in {', '.join(args.files)}")
    return paths


def _filter(args) -> records.Filter:
    try:
        since = records.parse_time(args.since) if args.since else None
        until = records.parse_time(args.until) if args.until else None
    except ValueError as error:
        raise _UsageError(str(error)) from None
    return records.Filter(
        since=since, until=until,
        user=getattr(args, "user", None), service=getattr(args, "service", None), event=getattr(args, "event", None),
    )  # fmt: skip


class _UsageError(Exception):
    pass


def _adapter(command):
    """Turns a usage error into one line on stderr and exit 2."""

    def run(args) -> int:
        try:
            return command(args)
        except _UsageError as error:
            print(f"veil audit: {error}", file=sys.stderr)
            return EXIT_USAGE

    return run


@_adapter
def _verify(args) -> int:
    verdict = verify.verify_chains(files.by_log(_paths(args)))
    for note in verdict.notes:
        print(f"note: {note}")
    for chain in verdict.chains or [verdict]:
        which = f"{files.log_name(chain.files[-1])}: " if verdict.chains else ""
        if chain.intact:
            print(f"OK: {which}{chain.records:,} records in {len(chain.files)} file(s), chain intact; last hash {chain.last_hash}")
        else:
            print(f"BROKEN: {which}{chain.problem}")
    return 0 if verdict.intact else EXIT_BROKEN


@_adapter
def _summary(args) -> int:
    skipped: list = []
    result = summary.summarise(records.select(records.read_records(_paths(args), skipped), _filter(args)))
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0
    print(f"Records from {result.first_ts or '-'} to {result.last_ts or '-'}")
    for dimension in summary.DIMENSIONS:
        print()
        print(_table(dimension, result.by[dimension], result.total))
    if skipped:
        print(f"\n{len(skipped)} line(s) could not be read; `veil audit verify` explains them", file=sys.stderr)
    return 0


_SUMMARY_COLUMNS = ("uploads", "sanitised", "monitored", "blocked", "passed", "faces_masked", "gps_removed", "bytes")


def _table(dimension: str, rows: dict, total: summary.Tally) -> str:
    lines = [[dimension, *(c.replace("_", " ") for c in _SUMMARY_COLUMNS)]]
    for key in sorted(rows):
        lines.append([key, *(f"{getattr(rows[key], c):,}" for c in _SUMMARY_COLUMNS)])
    lines.append(["total", *(f"{getattr(total, c):,}" for c in _SUMMARY_COLUMNS)])
    return _format_table(lines, right_aligned_from=1)


def _format_table(rows: list[list[str]], right_aligned_from: int) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [cell.rjust(w) if i >= right_aligned_from else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        out.append("  ".join(cells).rstrip())
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


@_adapter
def _show(args) -> int:
    chosen = records.select(records.read_records(_paths(args)), _filter(args))
    if args.limit > 0:
        from collections import deque

        chosen = deque(chosen, maxlen=args.limit)  # the last N, in bounded memory
    if args.json:
        for record in chosen:
            print(json.dumps(record, ensure_ascii=False))
        return 0
    # The reason comes after the URL, never instead of it: a blocked row must still say where
    # the upload was going.
    rows = [["time (UTC)", "event", "service", "user", "client", "format", "faces", "removed", "url", "reason"]]
    for record in chosen:
        rows.append([
            (record.get("ts") or "")[:19].replace("T", " "), str(record.get("event")), str(record.get("service")),
            record.get("user") or "-", str(record.get("client") or "-"), record.get("format") or "-",
            str(record.get("faces") or 0), ",".join(record.get("metadata_removed") or ()) or "-",
            record.get("url") or "-", record.get("reason") or "",
        ])  # fmt: skip
    if len(rows) == 1:
        print("no matching records")
        return 0
    print(_format_table(rows, right_aligned_from=99))
    return 0


@_adapter
def _report(args) -> int:
    paths = _paths(args)
    verdict = verify.verify_chains(files.by_log(paths))  # a second streaming pass: the banner covers the whole files
    data = html_report.gather(records.select(records.read_records(paths), _filter(args)))
    page = html_report.render(data, verdict)
    try:
        Path(args.html).write_text(page, encoding="utf-8")
    except OSError as error:
        raise _UsageError(f"cannot write {args.html}: {error.strerror}") from None
    state = "intact" if verdict.intact else f"BROKEN ({verdict.problem})"
    print(f"wrote {args.html}: {data.total.uploads:,} uploads; chain {state}")
    return 0


@_adapter
def _export(args) -> int:
    out = sys.stdout
    for record in records.select(records.read_records(_paths(args)), _filter(args)):
        out.write(json.dumps(ecs.to_ecs(record), ensure_ascii=False, separators=(",", ":")) + "\n")
    return 0
