"""Streaming reads of a big audit log: summary and verify of N records (default 1,000,000).

The log is generated with the writer's own chain (veil.audit.chain.seal), in a temp
dir, with realistic records (several services, users, days, events). Each measured step
runs in a fresh interpreter that reports its own wall time and peak RSS
(resource.getrusage), so one step's memory does not hide another's.
"""

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "addons"))

from veil import audit  # noqa: E402
from veil.audit import chain  # noqa: E402

SERVICES = ("openai-api", "anthropic-api", "gemini-api", "chatgpt-web", "claude-web", "copilot")
USERS = [f"user{n:03d}" for n in range(200)] + [None]
KINDS = ("gps", "exif", "camera", "owner", "serial-number", "makernote", "thumbnail", "xmp", "iptc")

STEP = """
import json, resource, sys, time
sys.path.insert(0, {addons!r})
from pathlib import Path
start = time.perf_counter()
{body}
print(json.dumps({{"seconds": time.perf_counter() - start, "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""
STEPS = {
    "interpreter + imports (baseline)": "from veil.audit import records, summary, verify, files",
    "summary (all tables)": "from veil.audit import records, summary\n"
    "summary.summarise(records.read_records([Path({log!r})]))",
    "verify (hash chain)": "from veil.audit import verify\n"
    "v = verify.verify([Path({log!r})]); assert v.intact, v.problem",
}


def generate(path: Path, count: int) -> None:
    rng = random.Random(1)
    prev, started = chain.GENESIS, time.perf_counter()
    with open(path, "wb", buffering=1 << 20) as out:
        for seq in range(1, count + 1):
            line, prev = chain.seal(_record(rng, seq, count), seq=seq, prev_hash=prev, file_start=seq == 1)
            out.write(line)
            if seq % 200_000 == 0:
                print(f"  generated {seq:,} records ({time.perf_counter() - started:.0f} s)", file=sys.stderr)


def _record(rng: random.Random, seq: int, count: int) -> dict:
    service = rng.choice(SERVICES)
    facts = audit.RequestFacts(f"10.0.{rng.randint(0, 3)}.{rng.randint(1, 254)}", rng.choice(USERS), service, "uploads",
                               "POST", f"https://{service}.example/v1/files")  # fmt: skip
    day = 1 + seq * 28 // (count + 1)
    ts = f"2026-11-{day:02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00.000Z"
    if rng.random() < 0.05:
        record = audit.image_record("blocked", facts, envelope="multipart", location="file", reason="unsupported image format: heic",
                                    image_facts={"bytes": rng.randint(10_000, 5_000_000), "sha256": f"{rng.getrandbits(256):064x}"})  # fmt: skip
    else:
        report = {"format": "jpeg", "metadata_removed": rng.sample(KINDS, rng.randint(1, 5)), "faces": [{}] * rng.randint(0, 3),
                  "face_mode": "mask", "reencoded": True, "bytes_before": rng.randint(10_000, 5_000_000), "bytes_after": 40_000,
                  "sha256_before": f"{rng.getrandbits(256):064x}", "sha256_after": f"{rng.getrandbits(256):064x}"}  # fmt: skip
        record = audit.image_record("sanitised", facts, envelope="multipart", location="file", report=report, duration_ms=rng.uniform(20, 900))
    return dict(record, ts=ts)


def measure(log: Path, body: str) -> dict:
    script = STEP.format(addons=str(Path(__file__).resolve().parents[2] / "addons"), body=body.format(log=str(log)))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="veil-bench-audit-") as folder:
        log = Path(folder) / "audit.jsonl"
        print(f"generating {args.records:,} chained records in {log}", file=sys.stderr)
        generate(log, args.records)
        size_mb = log.stat().st_size / 1e6
        rows = []
        for name, body in STEPS.items():
            print(f"  measuring {name}", file=sys.stderr)
            result = measure(log, body)
            rate = args.records / result["seconds"] if "baseline" not in name else None
            rows.append((name, result["seconds"], rate, result["peak_rss_kib"] / 1024))
    print(f"### Audit log: streaming reads of {args.records:,} records ({size_mb:,.0f} MB), "
          f"{datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} CPUs, Python {platform.python_version()}\n")  # fmt: skip
    print("| step | wall time | records/s | peak RSS |")
    print("|---|---:|---:|---:|")
    for name, seconds, rate, rss in rows:
        print(f"| {name} | {seconds:.2f} s | {f'{rate:,.0f}' if rate else '—'} | {rss:,.0f} MiB |")


if __name__ == "__main__":
    main()
