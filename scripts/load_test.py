"""Veil load test: many photo uploads from concurrent clients through a real mitmdump.

Run it through scripts/load_test (which sets up .venv first). Markdown goes to stdout,
progress to stderr; the exit status is 1 when any check fails (the report says which).

The core is tests/e2e/load.py, shared with tests/e2e/test_load.py (the same checks at CI
size). One mitmdump with Veil and the default policy, started as the end-to-end tests start
it, followed by the rerouting test addon that sends what Veil lets through to a local
recording upstream. N distinct photos with faces, GPS and owner EXIF and a per-upload marker
go through it from C client threads (one keep-alive HTTPS client each, trusting the proxy's
CA), as OpenAI chat completions, Anthropic messages, OpenAI /v1/files multipart uploads and
ChatGPT-web blob PUTs in turn. One attempt per upload: a 503 or an error is counted, never
retried. While they run, the RSS of mitmdump and all its descendants (Veil's worker
processes) is sampled from /proc every 100 ms.

After the load, the checks: every upload answered 2xx by the upstream; the upstream received
each upload exactly once, with its image; every arrival clean (verifier, EXIF, marker, owner;
the length where the size was declared first) with its faces masked (the face detector runs
again on every arrival, after the load, in a process pool); exactly N audit records, all
"sanitised", one per upload with the hashes of what was sent and what arrived, and an intact
hash chain.

The baseline: the same uploads from the same clients through a plain mitmdump (only the
rerouting addon), measured in the same run; throughput and latency are given as ratios
against it (--no-baseline skips it).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

from bench.common import ROOT, at_least_one, cpu_model, git_revision, run_and_clean_up

sys.path.insert(0, str(ROOT / "tests"))


def log(message: str) -> None:
    print(f"load: {message}", file=sys.stderr, flush=True)


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds:.2f}" if seconds < 10 else f"{seconds:.1f}"


def fmt_mb(size: float | None) -> str:
    return "–" if size is None else f"{size / 1e6:,.0f} MB"


def ratio(a: float | None, b: float | None) -> str:
    return "–" if a is None or not b else f"{a / b:.2f}×"


class CpuClock:
    """CPU used by this process (the clients and the upstream) and by the whole machine."""

    def __init__(self):
        from e2e.load import machine_busy_ticks

        self._busy = machine_busy_ticks
        self.wall0, self.own0, self.busy0 = time.monotonic(), self._own(), machine_busy_ticks()

    @staticmethod
    def _own() -> float:
        times = os.times()
        return times.user + times.system

    def stop(self) -> tuple[float, float, float]:
        """(wall s, cores used by this process, cores used by the machine)."""
        from e2e.load import TICK

        wall = time.monotonic() - self.wall0
        return wall, (self._own() - self.own0) / wall, (self._busy() - self.busy0) / TICK / wall


class Measured:
    """One proxy's run: the clients' answers, its process tree's memory and CPU."""

    def __init__(self, name, proxy, run, sampler, cpu, survivors, idle_wait):
        self.name, self.proxy, self.run, self.sampler = name, proxy, run, sampler
        self.wall_cpu, self.own_cores, self.machine_cores = cpu
        self.survivors, self.idle_wait = survivors, idle_wait

    @property
    def tree_cores(self) -> float:
        return self.sampler.cpu_seconds() / self.wall_cpu


def measure(name: str, proxy, uploads, clients: int, upstream) -> tuple[Measured, list]:
    from e2e import load

    log(f"{name}: waiting for the proxy to settle (Veil: its workers loading the face model)")
    idle_wait = load.wait_until_idle(proxy)
    upstream.clear()
    log(f"{name}: {len(uploads)} uploads from {clients} clients")
    cpu = CpuClock()
    with load.TreeSampler(proxy.process.pid) as sampler:
        run = load.run_clients(proxy, uploads, clients)
    cpu_used = cpu.stop()
    received = list(upstream.received)
    upstream.clear()
    failed = sum(1 for answer in run.answers if not answer.ok)
    log(f"{name}: done in {run.wall:.1f} s ({failed} not 2xx); stopping the proxy")
    survivors = load.stop_proxy(proxy)
    if survivors:
        log(f"{name}: {len(survivors)} of its processes were still running 5 s after mitmdump exited; killed: {survivors}")
    return Measured(name, proxy, run, sampler, cpu_used, survivors, idle_wait), received


def run(args, tmp: Path, proxies: list) -> tuple[list[str], bool]:
    import mitmproxy.version
    import onnxruntime

    from e2e import load
    from e2e.conftest import DEFAULT_POLICY, start_mitmdump
    from e2e.upstream import RecordingUpstream

    load_at_start = os.getloadavg()
    httpx = load.http_client_module()
    log(f"building {args.uploads} uploads (distinct photos, EXIF, markers; bodies built before the clock starts)")
    uploads = load.build_uploads(args.uploads)

    with RecordingUpstream() as upstream:
        extra = ["--set", f"veil_workers={args.workers}"] if args.workers else []
        (tmp / "veil").mkdir()
        veil_proxy = start_mitmdump(tmp / "veil", upstream.port, DEFAULT_POLICY, *extra)
        proxies.append(veil_proxy)
        veil, veil_received = measure("Veil", veil_proxy, uploads, args.clients, upstream)
        plain = plain_received = None
        if not args.no_baseline:
            plain_proxy = load.start_plain_mitmdump(tmp / "plain", upstream.port)
            proxies.append(plain_proxy)
            plain, plain_received = measure("plain mitmdump", plain_proxy, uploads, args.clients, upstream)
    load_end = os.getloadavg()

    faces_on = None if args.face_sample is None else args.face_sample
    log(f"checking {len(veil_received)} arrivals ({'all' if faces_on is None else faces_on} re-detected for faces, "
        f"{args.check_processes} processes) and the audit log")  # fmt: skip
    started = time.monotonic()
    checks = load.check_veil_run(veil.run, uploads, veil_received, veil_proxy.audit_log, faces_on, args.check_processes)
    check_seconds = time.monotonic() - started
    plain_checks = load.check_plain_run(plain.run, uploads, plain_received) if plain else []
    ok = not load.failures(checks) and not load.failures(plain_checks)

    # ---- the report
    veil_fig = load.Figures.of(veil.run)
    plain_fig = load.Figures.of(plain.run) if plain else None
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    audit = veil_proxy.audit_records()
    sizes = [len(u.photo) for u in uploads]
    by_kind = collections.Counter(u.kind for u in uploads)
    out = [f"### Veil load test: {args.uploads:,} photo uploads from {args.clients} concurrent clients", ""]
    out += [
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; Veil at `{git_revision()}`",
        f"- Machine: {cpu_model()}, nproc {affinity}, {platform.system()} {platform.release()} ({platform.machine()}); "
        "the load generator (clients and upstream) runs on the same machine",
        f"- Python {platform.python_version()}, mitmproxy {mitmproxy.version.VERSION}, onnxruntime {onnxruntime.__version__}, "
        f"clients {httpx.__name__} {httpx.__version__} (one keep-alive HTTP/1.1 client per thread, no retries)",
        "- Load average (1, 5, 15 min) at start → end: "
        + ", ".join(f"{a:.2f} → {b:.2f}" for a, b in zip(load_at_start, load_end)),
        f"- Veil: veil_workers = {args.workers or f'default (cpu_count = {os.cpu_count()})'}, default policy "
        "(`config/policy.yaml`); other Veil options at their defaults",
        "- Veil mitmdump: `" + shlex.join(veil_proxy.process.args) + "`",
        *(["- Baseline mitmdump: `" + shlex.join(plain.proxy.process.args) + "`"] if plain else []),
        "- Upstream: tests/e2e/upstream.py's RecordingUpstream (threads, TCP_NODELAY) in this process, with the "
        "client threads.",
        f"- Uploads: {', '.join(f'{count} {kind}' for kind, count in by_kind.items())} "
        "(OpenAI chat completions with a data URL, Anthropic messages with base64, OpenAI /v1/files multipart, "
        "ChatGPT-web blob PUT with the length kept); "
        f"{len({u.variant for u in uploads})} photo layouts (astronaut, Grace Hopper, both side by side; 640–1280 px, "
        f"plain and mirrored), each upload with its own pixel stamp, EXIF marker, GPS and owner; "
        f"JPEG {min(sizes) / 1e3:.0f}–{max(sizes) / 1e3:.0f} kB, mean {statistics.mean(sizes) / 1e3:.0f} kB.",
        "",
        "| Proxy | uploads | clients | 2xx | not 2xx | wall s | uploads/s | uploads/min | p50 s | p90 s | p99 s | max s |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]

    def row(label: str, measured: Measured, fig) -> str:
        cells = [label, f"{fig.uploads:,}", str(measured.run.clients), f"{fig.ok:,}", str(fig.uploads - fig.ok),
                 f"{fig.wall:.1f}", f"{fig.per_second:.2f}", f"{fig.per_second * 60:,.0f}"]  # fmt: skip
        cells += [fmt_s(fig.p(q)) for q in (50, 90, 99)] + [fmt_s(max(fig.latencies) if fig.latencies else None)]
        return "| " + " | ".join(cells) + " |"

    out.append(row("**Veil**", veil, veil_fig))
    if plain:
        out.append(row("plain mitmdump (baseline)", plain, plain_fig))
        out.append(
            f"| Veil ÷ plain | | | | | {ratio(veil_fig.wall, plain_fig.wall)} | {ratio(veil_fig.per_second, plain_fig.per_second)} | "
            f"{ratio(veil_fig.per_second, plain_fig.per_second)} | "
            + " | ".join(ratio(veil_fig.p(q), plain_fig.p(q)) for q in (50, 90, 99))
            + f" | {ratio(max(veil_fig.latencies, default=None), max(plain_fig.latencies, default=None))} |"
        )
        out += ["", f"Against the baseline measured in this run: Veil's throughput is {ratio(veil_fig.per_second, plain_fig.per_second)} "
                f"the plain mitmdump's, its p50 latency {ratio(veil_fig.p(50), plain_fig.p(50))} and its p99 "
                f"{ratio(veil_fig.p(99), plain_fig.p(99))}."]  # fmt: skip
    out.append("")

    out += ["| Veil, per kind of upload | uploads | mean body kB | p50 s | p99 s |", "|---|--:|--:|--:|--:|"]
    for kind in load.KINDS:
        mine = [u for u in uploads if u.kind == kind]
        times = [veil.run.answers[u.index].seconds for u in mine if veil.run.answers[u.index].ok]
        out.append(f"| {kind} | {len(mine)} | {statistics.mean(len(u.body) for u in mine) / 1e3:.0f} | "
                   f"{fmt_s(load.percentile(times, 50))} | {fmt_s(load.percentile(times, 99))} |")  # fmt: skip
    out.append("")

    peak = veil.sampler.peak
    hwm = veil.sampler.hwm
    root = veil_proxy.process.pid
    worker_hwm = max((size for pid, size in hwm.items() if pid != root), default=None)
    span = veil.run.ended - veil.run.started

    def around(fraction: float, of=lambda sample: sample.total) -> str:
        """Mean RSS over the samples within 2.5% of the run either side of that point."""
        at = veil.run.started + fraction * span
        values = [of(s) for s in veil.sampler.samples if abs(s.at - at) <= 0.025 * span]
        return fmt_mb(statistics.mean(values) if values else None)

    timeline = (0.1, 0.25, 0.5, 0.75, 0.95)
    clean_ms = [r["duration_ms"] for r in audit if r.get("event") == "sanitised" and r.get("duration_ms")]
    out += [
        "| Veil | value |",
        "|---|--:|",
        f"| peak memory, mitmdump + its worker processes (RSS summed, sampled every 100 ms) | {fmt_mb(peak.total if peak else None)} "
        f"({peak.processes if peak else '–'} processes) |",
        f"| … of which mitmdump itself at that moment | {fmt_mb(peak.root if peak else None)} |",
        f"| mitmdump's own peak RSS (VmHWM) | {fmt_mb(hwm.get(root))} |",
        f"| largest worker's peak RSS (VmHWM) | {fmt_mb(worker_hwm)} |",
        "| RSS summed over the tree at " + " / ".join(f"{f:.0%}" for f in timeline) + " of the run | "
        + " / ".join(around(f) for f in timeline) + " |",
        "| … mitmdump alone at the same points | " + " / ".join(around(f, lambda s: s.root) for f in timeline) + " |",
        f"| proxy errors (not 2xx: 5xx, 503 from Veil, connection errors, timeouts) | {veil_fig.uploads - veil_fig.ok} |",
        f"| audit records | {len(audit):,} ({', '.join(f'{k}: {v}' for k, v in collections.Counter(r.get('event') for r in audit).items()) or 'none'}) |",
        "| cleaning time per image in a worker (audit `duration_ms`), median / p99 | "
        + (f"{statistics.median(clean_ms) / 1000:.2f} / {load.percentile(clean_ms, 99) / 1000:.2f} s |" if clean_ms else "– |"),
        f"| faces masked per image (audit), median | {statistics.median(r.get('faces') or 0 for r in audit):g} |" if audit else "| faces masked | – |",
        f"| wait for the workers to load before the clock started | {veil.idle_wait:.1f} s |",
        f"| its processes still running 5 s after mitmdump exited on SIGTERM (then killed by this script) | {len(veil.survivors)} |",
        "",
    ]

    out += ["| Check | result | detail |", "|---|---|---|"]
    for label, check in [(c.name, c) for c in checks] + [(f"baseline: {c.name}", c) for c in plain_checks]:
        out.append(f"| {label} | {'✅ pass' if check.ok else '❌ **FAIL**'} | {check.detail} |")
    out += ["", f"Checks after the load took {check_seconds:.0f} s ({args.check_processes} processes).", ""]

    for measured in (veil, plain):
        if measured is None:
            continue
        others = max(0.0, measured.machine_cores - measured.tree_cores - measured.own_cores)
        out.append(
            f"CPU during the {measured.name} run ({measured.wall_cpu:.1f} s), in cores of {affinity}: "
            f"{measured.name} (mitmdump and its child processes) {measured.tree_cores:.2f}, clients + upstream (this process) "
            f"{measured.own_cores:.2f}; whole machine {measured.machine_cores:.2f}, of which processes outside this "
            f"test ≈ {others:.2f}" + (" — **other work on the machine competed with this run**" if others > 0.25 else "") + "."
        )
        out.append("")
    return out, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=at_least_one, default=1000, help="photo uploads in all (default 1000)")
    parser.add_argument("--clients", type=at_least_one, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the plain-mitmdump baseline")
    parser.add_argument("--workers", type=at_least_one, help="passed to the Veil mitmdump as --set veil_workers=N")
    parser.add_argument("--face-sample", type=at_least_one, help="re-detect faces on this many arrivals (default: all)")
    parser.add_argument("--check-processes", type=at_least_one, default=max(1, os.cpu_count() or 1),
                        help="processes for the checks after the load (default: one per CPU)")  # fmt: skip
    args = parser.parse_args()

    proxies: list = []

    def stop_proxies():
        from e2e.load import stop_proxy

        for proxy in proxies:
            if proxy.process.poll() is None:
                stop_proxy(proxy)

    return run_and_clean_up("load", lambda scratch: run(args, scratch, proxies), stop_proxies)


if __name__ == "__main__":
    sys.exit(main())
