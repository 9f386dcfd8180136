"""`veil audit summary | show | export | report`: pure readers and their CLI adapters."""

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from veil import audit
from veil.audit import ecs, html_report, records, summary
from veil.audit.verify import verify
from veil.cli.main import main


def facts(user="alice", service="openai-api", url="https://api.openai.com/v1/files"):
    return audit.RequestFacts("10.0.0.7", user, service, "api", "POST", url)


def sanitised(user="alice", service="openai-api", faces=1, removed=("gps", "exif"), ts="2026-11-25T10:00:00.000Z"):
    report = {"format": "jpeg", "metadata_removed": list(removed), "faces": [{}] * faces, "bytes_before": 1000,
              "bytes_after": 900, "sha256_before": "a" * 64, "sha256_after": "b" * 64}  # fmt: skip
    record = audit.image_record("sanitised", facts(user, service), envelope="multipart", location="file", report=report, duration_ms=120.0)
    return dict(record, ts=ts)


def blocked(user="bob", service="claude-web", reason="the policy blocks uploads to claude-web", ts="2026-11-26T09:00:00.000Z"):
    record = audit.image_record("blocked", facts(user, service, "https://claude.ai/api/x/upload"), envelope=None, location=None,
                                reason=reason, image_facts={"bytes": 500, "sha256": "c" * 64})  # fmt: skip
    return dict(record, ts=ts)


@pytest.fixture
def log(tmp_path) -> Path:
    writer = audit.AuditLog(tmp_path / "audit.jsonl")
    for record in [sanitised(), sanitised(faces=2, ts="2026-11-26T08:00:00.000Z"), sanitised(user=None, removed=("exif",),
                   service="gemini-api", ts="2026-11-26T08:30:00.000Z"), blocked()]:  # fmt: skip
        writer.write(record)
    writer.close()
    return tmp_path / "audit.jsonl"


def test_summary_counts_by_service_user_event_and_day(log):
    result = summary.summarise(records.read_records([log]))
    assert result.total.as_dict() == {"uploads": 4, "sanitised": 3, "monitored": 0, "blocked": 1, "passed": 0,
                                      "faces_masked": 4, "gps_removed": 2, "bytes": 3500,
                                      "delivered": 0, "not_delivered": 0}  # fmt: skip
    assert result.by["service"]["openai-api"].faces_masked == 3
    assert result.by["user"]["-"].uploads == 1 and result.by["user"]["bob"].blocked == 1
    assert result.by["day"]["2026-11-25"].uploads == 1 and result.by["day"]["2026-11-26"].uploads == 3
    assert set(result.by["event"]) == {"sanitised", "blocked"}


def test_the_outcome_of_what_was_let_through_is_counted_apart(tmp_path, capsys):
    """A cleaned upload that never reached the service is not 'delivered' (issue 19)."""
    writer = audit.AuditLog(tmp_path / "audit.jsonl")
    for status, error in ((200, None), (None, "connection reset by the service"), (413, None)):
        writer.write(sanitised())
        writer.write(audit.upstream_record(facts(), status=status, error=error))
    writer.close()
    result = summary.summarise(records.read_records([tmp_path / "audit.jsonl"]))
    assert (result.total.sanitised, result.total.delivered, result.total.not_delivered) == (3, 1, 2)
    assert result.total.uploads == 3  # outcomes are not uploads of their own
    assert main(["audit", "show", "--event", "upstream", str(tmp_path / "audit.jsonl")]) == 0
    table = capsys.readouterr().out
    assert "delivered: HTTP 200" in table and "not delivered: connection reset" in table and "not delivered: HTTP 413" in table


def test_summary_since_and_until(log, capsys):
    assert main(["audit", "summary", "--since", "2026-11-26", "--until", "2026-11-26T08:45Z", "--json", str(log)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["total"]["uploads"] == 2 and set(result["day"]) == {"2026-11-26"}


def test_summary_tables(log, capsys):
    assert main(["audit", "summary", str(log)]) == 0
    out = capsys.readouterr().out
    for heading in ("service", "user", "event", "day"):
        assert f"\n{heading} " in out
    assert "gemini-api" in out and "faces masked" in out and "gps removed" in out


def test_show_filters_and_json(log, capsys):
    assert main(["audit", "show", "--user", "alice", "--service", "openai-api", "--json", str(log)]) == 0
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(shown) == 2 and all(r["user"] == "alice" for r in shown) and "hash" in shown[0]
    assert main(["audit", "show", "--event", "blocked", str(log)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("time (UTC)") and len(table) == 3 and "the policy blocks uploads" in table[2]
    assert "https://claude.ai/api/x/upload" in table[2]  # a blocked row still says where the upload went
    assert main(["audit", "show", "--user", "-", "--json", str(log)]) == 0
    assert json.loads(capsys.readouterr().out)["service"] == "gemini-api"


def test_show_rejects_a_bad_time(log, capsys):
    assert main(["audit", "show", "--since", "last tuesday", str(log)]) == 2
    assert "is not a time" in capsys.readouterr().err


def test_parse_time_forms():
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert records.parse_time("2026-11-26") == "2026-11-26T00:00:00.000Z"
    assert records.parse_time("2026-11-26T10:00:00+02:00") == "2026-11-26T08:00:00.000Z"
    assert records.parse_time("36h", now) == "2026-11-25T00:00:00.000Z"
    assert records.parse_time("7d", now) == "2026-11-19T12:00:00.000Z"


def test_ecs_mapping(log):
    record = next(records.read_records([log]))
    record["url"] = "https://api.openai.com/v1/files"
    document = ecs.to_ecs(record)
    assert document["@timestamp"] == record["ts"]
    assert document["event"]["action"] == "sanitised" and document["event"]["outcome"] == "success"
    assert document["event"]["duration"] == 120_000_000 and document["event"]["hash"] == record["hash"]
    assert document["user"]["name"] == "alice" and document["source"]["ip"] == "10.0.0.7"
    assert document["url"] == {"full": "https://api.openai.com/v1/files", "scheme": "https", "domain": "api.openai.com", "path": "/v1/files"}
    assert document["file"]["hash"]["sha256"] == "b" * 64  # what the service received
    assert document["veil"]["metadata_removed"] == ["gps", "exif"]


def test_ecs_never_carries_a_query_and_marks_blocks_as_failures():
    record = dict(blocked(), url="https://x.example:8443/up?sig=SECRET")
    document = ecs.to_ecs(record)
    assert "SECRET" not in json.dumps(document)
    assert document["url"]["port"] == 8443 and document["event"]["outcome"] == "failure"
    assert document["event"]["reason"].startswith("the policy blocks")


def test_export_cli_writes_json_lines(log, capsys):
    assert main(["audit", "export", "--format", "ecs", str(log)]) == 0
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(documents) == 4 and {d["event"]["action"] for d in documents} == {"sanitised", "blocked"}


def test_html_report_is_self_contained_with_charts_and_banner(log):
    page = html_report.render(html_report.gather(records.read_records([log])), verify([log]))
    assert page.count('<svg class="chart"') == 4 and 'class="bar"' in page
    assert "Hash chain intact: 4 records" in page
    for remote in ("http://", "https://cdn", "<script src", "<link"):
        assert remote not in page.replace("https://api.openai.com", "").replace("https://claude.ai", "")
    assert "the policy blocks uploads to claude-web" in page and "gps" in page


def test_html_report_shows_a_broken_chain(log, tmp_path, capsys):
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join([lines[0], lines[2], lines[3]]))
    out = tmp_path / "report.html"
    assert main(["audit", "report", "--html", str(out), str(log)]) == 0
    page = out.read_text()
    assert "Hash chain BROKEN" in page and "line 2: prev_hash does not match line 1" in page
    assert "chain BROKEN" in capsys.readouterr().out


def passed(user="carol", service="gemini-api", ts="2026-11-27T07:15:00.000Z"):
    record = audit.image_record("passed", facts(user, service, "https://generativelanguage.googleapis.com/upload"),
                                envelope=None, location=None, reason="the rule passes this user's uploads")  # fmt: skip
    return dict(record, ts=ts)


def test_the_report_covers_every_event_the_time_range_the_last_hash_and_how_to_verify(log, tmp_path, capsys):
    writer = audit.AuditLog(log)
    writer.write(passed())
    writer.write(dict(audit.image_record("monitored", facts("dave", "openai-api"), envelope="raw", location="body",
                                         report={"format": "png", "metadata_removed": [], "faces": [], "bytes_before": 10}),
                      ts="2026-11-27T07:30:00.000Z"))  # fmt: skip
    writer.close()
    out = tmp_path / "report.html"
    assert main(["audit", "report", "--html", str(out), str(log)]) == 0
    page = out.read_text()
    cards = dict((label, int(value.replace(",", ""))) for value, label in re.findall(r'<div class="card"><b>([\d,]+)</b><span>([^<]+)</span>', page))
    assert cards == {"uploads seen": 6, "sanitised": 3, "monitored": 1, "blocked": 1, "passed": 1,
                     "requests delivered": 0, "let through, not delivered": 0, "faces masked": 4, "text areas masked": 0,
                     "GPS removed": 2}  # fmt: skip
    assert "Records from <b>2026-11-25T10:00:00.000Z to 2026-11-27T07:30:00.000Z</b>" in page
    generated = re.search(r"generated (\S+)</p>", page).group(1)
    assert abs(datetime.now(UTC) - datetime.fromisoformat(generated)).total_seconds() < 60
    last_hash = json.loads(log.read_text().splitlines()[-1])["hash"]
    assert f'<code class="hash">{last_hash}</code>' in page
    assert f"<code>veil audit verify {log}</code>" in page
    assert table_rows(page, "by-user") == {
        "alice": ["2", "2", "0", "0", "0", "3", "2", "0", "0"], "bob": ["1", "0", "0", "1", "0", "0", "0", "0", "0"],
        "carol": ["1", "0", "0", "0", "1", "0", "0", "0", "0"], "dave": ["1", "0", "1", "0", "0", "0", "0", "0", "0"], "-": ["1", "1", "0", "0", "0", "1", "0", "0", "0"],
    }  # fmt: skip
    assert table_rows(page, "by-service")["gemini-api"] == ["2", "1", "0", "0", "1", "1", "0", "0", "0"]


def table_rows(page: str, table_id: str) -> dict[str, list[str]]:
    table = re.search(rf'<table class="counts" id="{table_id}">(.*?)</table>', page).group(1)
    rows = re.findall(r"<tr><td>([^<]*)</td>(.*?)</tr>", table)
    return {key: re.findall(r'<td class="n">([^<]*)</td>', cells) for key, cells in rows}
