"""Veil scale-out benchmark: photo uploads through one instance, and through HAProxy in front
of one and of two instances.

Run it through scripts/bench/scaleout (which sets up .venv first). Markdown goes to stdout,
progress to stderr. Every number in one output comes from the same run on the same
machine; ratios are against the first row (one instance, clients straight to it).

Three set-ups, all running at once, each measured with the same clients (8 by default, each
a keep-alive HTTPS connection, as SDKs hold them) uploading the same photo. The N uploads of
a row are done in R rounds (3 by default), the set-ups taking turns in a different order each
round, so that other work on the machine falls on every row alike:

1. one Veil instance, clients connect to it directly (the baseline);
2. the same instance behind HAProxy (deploy/haproxy/haproxy.cfg, as tests/e2e/haproxy.py
   runs it on one machine): what the extra hop costs;
3. two instances behind HAProxy, sharing one CA and one policy, each with its own audit log.

Cleaning workers: one instance gets `veil_workers` = W (default: the number of CPUs), two
instances get W/2 each (at least 1), so the machine runs the same number of cleaning
processes in every row. Two photo sizes: the e2e test photo (512×512, many uploads: the
proxy's own work dominates) and a 12 MP phone-sized photo (cleaning dominates).

Everything talks to 127.0.0.1: the service URL is rerouted to a local recording upstream
(tests/e2e/upstream.py) in its own process; the clients run in another process.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

# Run as a script, Python puts scripts/bench/ first on sys.path; the benchmarks import each
# other as the package `bench` (as scripts/load_test.py does), so scripts/ goes first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import ROOT, at_least_one, cpu_model, git_revision, run_and_clean_up  # noqa: E402
from bench.proxy import (  # noqa: E402
    Children, Upload, build_photo, fmt_ms, fmt_ratio, http_client_module, ratio, start_upstream,
)

sys.path.insert(0, str(ROOT / "tests"))

FILES_URL = "https://api.openai.com/v1/files"
REQUEST_TIMEOUT = 300.0


@dataclass(frozen=True)
class PhotoSet:
    name: str
    label: str
    uploads: int  # measured, per set-up
    quick_uploads: int


PHOTOS = [
    PhotoSet("small", "512×512 JPEG (the e2e photo: one face, GPS EXIF)", 400, 40),
    PhotoSet("12mp", "4000×3000 JPEG q90 (12 faces + noise, as scripts/bench/proxy)", 48, 8),
]


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- clients (child process)


def run_clients(config: str) -> None:
    """Child process: `clients` threads, each with one keep-alive connection, upload the photo
    until `count` uploads have started in all; one JSON line per finished upload."""
    settings = json.loads(config)
    httpx = http_client_module()
    context = ssl.create_default_context(cafile=settings["ca"])
    photo = Path(settings["photo"]).read_bytes()
    lock = threading.Lock()
    remaining = [settings["count"]]

    def client(index: int) -> None:
        with httpx.Client(proxy=settings["proxy"], verify=context, timeout=REQUEST_TIMEOUT, trust_env=False) as http:
            while True:
                with lock:
                    if remaining[0] == 0:
                        return
                    remaining[0] -= 1
                started = time.monotonic()
                try:
                    response = http.post(FILES_URL, content=photo, headers={
                        "Content-Type": "application/octet-stream", "Authorization": "Bearer sk-veil-bench-not-a-key"})  # fmt: skip
                    status, error = response.status_code, None
                except Exception as failure:  # noqa: BLE001 - reported
                    status, error = None, f"{type(failure).__name__}: {failure}"[:200]
                line = json.dumps({"client": index, "start": started, "end": time.monotonic(), "status": status, "error": error})
                with lock:
                    print(line, flush=True)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(settings["clients"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def upload_batch(front_url: str, ca: Path, photo: Path, clients: int, count: int) -> list[Upload]:
    config = json.dumps({"proxy": front_url, "ca": str(ca), "photo": str(photo), "clients": clients, "count": count})
    done = subprocess.run([sys.executable, __file__, "--_clients", config], capture_output=True, text=True,
                          cwd=ROOT, timeout=3600)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the client process failed:\n{done.stderr[-2000:]}")
    return [Upload(**{k: v for k, v in json.loads(line).items() if k != "client"}) for line in done.stdout.splitlines()]


# --------------------------------------------------------------------------- CPU, including worker processes


class TreeCpu:
    """CPU seconds of process trees (a mitmdump and its forkserver's workers) and of the machine."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, roots: dict[str, list[int]]):
        self.roots = roots
        self.before = self._sample()

    @staticmethod
    def _processes() -> dict[int, tuple[int, float]]:
        table = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TreeCpu.TICK)
            except (OSError, IndexError, ValueError):
                continue
        return table

    def _sample(self):
        table = self._processes()
        children: dict[int, list[int]] = {}
        for pid, (parent, _) in table.items():
            children.setdefault(parent, []).append(pid)
        per_tree = {}
        for name, roots in self.roots.items():
            stack, total = list(roots), 0.0
            while stack:
                pid = stack.pop()
                if pid in table:
                    total += table[pid][1]
                stack += children.get(pid, [])
            per_tree[name] = total
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        busy = (sum(values[:8]) - values[3] - values[4]) / self.TICK
        return time.monotonic(), per_tree, busy

    def stop(self) -> tuple[float, dict[str, float], float]:
        t0, p0, b0 = self.before
        t1, p1, b1 = self._sample()
        wall = t1 - t0
        return wall, {name: max(0.0, p1[name] - p0.get(name, 0.0)) / wall for name in self.roots}, (b1 - b0) / wall


# --------------------------------------------------------------------------- set-ups


@dataclass
class Result:
    """One row: the uploads of all its rounds; CPU as core-seconds, shown per second of wall."""

    setup: str
    photo: PhotoSet
    uploads: list[Upload] = field(default_factory=list)
    active: float = 0.0  # seconds from each round's first start to its last end, summed
    wall: float = 0.0
    core_seconds: dict[str, float] = field(default_factory=dict)
    machine_seconds: float = 0.0
    per_instance: list[int] = field(default_factory=list)

    def add(self, uploads: list[Upload], wall: float, cores: dict[str, float], machine: float, per_instance: list[int]):
        self.uploads += uploads
        if uploads:
            self.active += max(u.end for u in uploads) - min(u.start for u in uploads)
        self.wall += wall
        for name, value in cores.items():
            self.core_seconds[name] = self.core_seconds.get(name, 0.0) + value * wall
        self.machine_seconds += machine * wall
        self.per_instance = [a + b for a, b in zip(self.per_instance, per_instance)] if self.per_instance else per_instance

    @property
    def cores(self) -> dict[str, float]:
        return {name: value / self.wall for name, value in self.core_seconds.items()}

    @property
    def machine_cores(self) -> float:
        return self.machine_seconds / self.wall

    @property
    def ok(self) -> list[Upload]:
        return [u for u in self.uploads if u.status == 200]

    def per_minute(self) -> float:
        return 60 * len(self.ok) / self.active if self.ok else 0.0

    def per_core_minute(self) -> float | None:
        """Photos per minute for each core Veil's processes used: the throughput with the CPU
        that other work took (or left) on a shared machine divided out."""
        veil = sum(value for name, value in self.cores.items() if name.startswith("Veil"))
        return 60 * len(self.ok) / (veil * self.wall) if veil and self.ok else None

    def pct(self, q: float) -> float | None:
        import numpy as np

        return float(np.percentile([1000 * (u.end - u.start) for u in self.ok], q)) if self.ok else None


def start_instances(children: Children, tmp: Path, upstream_port: int, count: int, workers: int, confdir: Path):
    from e2e.conftest import DEFAULT_POLICY, free_port, start_mitmdump

    instances = []
    for index in range(count):
        folder = tmp / f"veil-{index + 1}"
        folder.mkdir(parents=True)
        metrics_port = free_port()
        proxy = start_mitmdump(folder, upstream_port, DEFAULT_POLICY, "--set", f"veil_metrics_port={metrics_port}",
                               "--set", f"veil_workers={workers}", confdir=confdir)  # fmt: skip
        children.proxies.append(proxy)
        instances.append((proxy, metrics_port))
    return instances


def start_front(children: Children, tmp: Path, instances) -> object:
    from e2e.conftest import free_port
    from e2e.haproxy import Backend, haproxy_binary, start_haproxy

    backends = [Backend(f"veil-{i + 1}", proxy.port, metrics) for i, (proxy, metrics) in enumerate(instances)]
    haproxy = start_haproxy(haproxy_binary(), tmp, free_port(), backends)
    children.others.append(haproxy.process)
    haproxy.wait_until_up([b.name for b in backends], timeout=60)
    return haproxy


@dataclass
class Setup:
    name: str
    front_url: str
    instances: list
    haproxy: object | None = None


def warm_up(setup: Setup, ca: Path, photo_file: Path, clients: int) -> None:
    warm = upload_batch(setup.front_url, ca, photo_file, clients, clients * 2)
    if any(u.status != 200 for u in warm):
        bad = next(u for u in warm if u.status != 200)
        raise RuntimeError(f"a warm-up upload through {setup.name} failed: HTTP {bad.status} {bad.error}")


def measure(setup: Setup, row: Result, ca: Path, photo_file: Path, clients: int, count: int, upstream_pid: int) -> None:
    front_url, instances, haproxy = setup.front_url, setup.instances, setup.haproxy
    before = [len(proxy.audit_records()) for proxy, _ in instances]
    roots = {f"Veil {i + 1} (proxy + workers)": [proxy.process.pid] for i, (proxy, _) in enumerate(instances)}
    if haproxy:
        roots["HAProxy"] = [haproxy.process.pid]
    roots["upstream"] = [upstream_pid]
    meter = TreeCpu(roots)
    # The client process is the only child of this one that ends meanwhile: its CPU is the
    # growth of RUSAGE_CHILDREN.
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    uploads = upload_batch(front_url, ca, photo_file, clients, count)
    wall, cores, machine = meter.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cores["clients"] = (after.ru_utime + after.ru_stime - reaped.ru_utime - reaped.ru_stime) / wall
    time.sleep(0.3)
    per_instance = [len(proxy.audit_records()) - b for (proxy, _), b in zip(instances, before)]
    row.add(uploads, wall, cores, machine, per_instance)


# --------------------------------------------------------------------------- the run


def run(args, children: Children, tmp: Path) -> list[str]:
    import mitmproxy.version
    import onnxruntime
    from mitmproxy.certs import CertStore

    from e2e.conftest import stop
    from e2e.haproxy import haproxy_binary
    from e2e.photos import face_photo_with_gps

    if haproxy_binary() is None:
        raise SystemExit("bench: haproxy is not installed (scripts/install-system-deps installs it)")
    cpus = os.cpu_count() or 1
    workers = args.workers or cpus
    workers_each = max(1, workers // 2)
    load_at_start = os.getloadavg()
    photos = [p for p in PHOTOS if p.name in args.photos]

    log("building the photos, the shared CA and the upstream")
    files = {}
    for photo in photos:
        files[photo.name] = tmp / f"{photo.name}.jpg"
        if photo.name == "small":
            files[photo.name].write_bytes(face_photo_with_gps())
        else:
            build_photo(files[photo.name])
    confdir = tmp / "shared-ca"
    CertStore.create_store(confdir, "mitmproxy", 2048)
    ca = confdir / "mitmproxy-ca-cert.pem"
    upstream_port = start_upstream(children)
    upstream_pid = children.others[0].pid
    count = {p.name: (args.uploads or (p.quick_uploads if args.quick else p.uploads)) for p in photos}

    log(f"starting one instance with {workers} workers, two with {workers_each} each, and two HAProxies")
    one = start_instances(children, tmp / "one", upstream_port, 1, workers, confdir)
    two = start_instances(children, tmp / "two", upstream_port, 2, workers_each, confdir)
    setups = [
        Setup("1 instance, direct", one[0][0].url, one),
        Setup("1 instance behind HAProxy", "", one, start_front(children, tmp / "one-haproxy", one)),
        Setup("2 instances behind HAProxy", "", two, start_front(children, tmp / "two-haproxy", two)),
    ]
    for setup in setups[1:]:
        setup.front_url = setup.haproxy.url
    results: list[Result] = []
    for photo in photos:
        rows = {setup.name: Result(setup.name, photo) for setup in setups}
        for setup in setups:
            log(f"{setup.name}, {photo.name}: warm-up")
            warm_up(setup, ca, files[photo.name], args.clients)
        per_round = [count[photo.name] // args.rounds + (i < count[photo.name] % args.rounds) for i in range(args.rounds)]
        for index, batch in enumerate(per_round):
            order = setups[index % len(setups):] + setups[: index % len(setups)]
            for setup in order:
                log(f"{photo.name}, round {index + 1}/{args.rounds}: {batch} uploads through {setup.name}")
                measure(setup, rows[setup.name], ca, files[photo.name], args.clients, batch, upstream_pid)
        results += rows.values()
    for setup in setups:
        if setup.haproxy:
            setup.haproxy.stop()
    for proxy, _ in one + two:
        stop(proxy)

    # ---- tables
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    load_end = os.getloadavg()
    haproxy_version = subprocess.run([haproxy_binary(), "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    out = [f"### Veil scale-out benchmark{' (--quick: smoke check, not numbers to publish)' if args.quick else ''}", ""]
    out += [
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; Veil at `{git_revision()}`",
        f"- Machine: {cpu_model()}, nproc {affinity}, {platform.system()} {platform.release()} ({platform.machine()})",
        f"- Python {platform.python_version()}, mitmproxy {mitmproxy.version.VERSION}, onnxruntime {onnxruntime.__version__}, "
        f"{haproxy_version.split(' - ')[0]}",
        "- Load average (1, 5, 15 min) at start → end: " + ", ".join(f"{a:.2f} → {b:.2f}" for a, b in zip(load_at_start, load_end)),
        f"- Clients: {args.clients} in one process, each one keep-alive HTTPS connection (as an SDK holds it), "
        f"uploading a raw photo body to POST {FILES_URL} until the count is reached; a warm-up of "
        f"{2 * args.clients} uploads first in every row.",
        f"- Cleaning workers: 1 instance × {workers} (veil_workers={workers}); 2 instances × {workers_each} "
        f"(veil_workers={workers_each}): {workers} vs {2 * workers_each} cleaning processes in all.",
        "- HAProxy: deploy/haproxy/haproxy.cfg (TCP mode, leastconn, /readyz checks) with the servers moved to "
        "127.0.0.1, as tests/e2e/haproxy.py runs it. One CA shared by every instance; one audit log each.",
        f"- Each row: its uploads in {args.rounds} rounds, the three set-ups taking turns in a rotating order "
        "(all three running throughout; the idle ones use no CPU to speak of).",
        "- Throughput: successful uploads ÷ the rounds' time from first start to last end. Latency: each whole upload request. "
        "Per Veil core: the same uploads ÷ the CPU time of Veil's processes (proxy, forkserver, workers) in those rounds: "
        "what each set-up makes of the CPU it got, whatever else ran on the machine.",
        "",
    ]
    for photo in photos:
        rows = [r for r in results if r.photo is photo]
        base = rows[0]
        out += [
            f"#### {photo.label}: {count[photo.name]} uploads per row",
            "",
            "| Set-up | uploads OK | photos / min | p50 ms | p99 ms | max ms | throughput ratio | p50 ratio | p99 ratio "
            "| Veil cores used | photos / min per Veil core | per-core ratio | uploads per instance (audit) |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
        ]
        for r in rows:
            failed = len(r.uploads) - len(r.ok)
            longest = max((1000 * (u.end - u.start) for u in r.ok), default=None)
            out.append(
                f"| {'**' + r.setup + '**' if r is base else r.setup} | {len(r.ok)}{f' ({failed} failed)' if failed else ''} | "
                f"{r.per_minute():.1f} | {fmt_ms(r.pct(50))} | {fmt_ms(r.pct(99))} | {fmt_ms(longest)} | "
                f"{fmt_ratio(ratio(r.per_minute(), base.per_minute()))} | {fmt_ratio(ratio(r.pct(50), base.pct(50)))} | "
                f"{fmt_ratio(ratio(r.pct(99), base.pct(99)))} | "
                f"{sum(v for n, v in r.cores.items() if n.startswith('Veil')):.2f} | "
                f"{'–' if r.per_core_minute() is None else f'{r.per_core_minute():.1f}'} | "
                f"{fmt_ratio(ratio(r.per_core_minute(), base.per_core_minute()))} | {' / '.join(map(str, r.per_instance))} |"
            )
        out.append("")
        for r in rows:
            ours = sum(r.cores.values())
            others = max(0.0, r.machine_cores - ours)
            out.append(
                f"CPU, {r.setup} ({r.wall:.1f} s), in cores of {affinity}: "
                + ", ".join(f"{name} {value:.2f}" for name, value in r.cores.items())
                + f"; whole machine {r.machine_cores:.2f}, outside this benchmark ≈ {others:.2f}"
                + (" — **other work competed**" if others > 0.25 else "")
                + "."
            )
            out.append("")
        for r in rows:
            errors = [u.error or f"HTTP {u.status}" for u in r.uploads if u.status != 200]
            if errors:
                out += [f"Failed uploads, {r.setup}: {len(errors)}, e.g. {errors[0]}", ""]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few uploads (a smoke check)")
    parser.add_argument("--clients", type=at_least_one, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--uploads", type=at_least_one, help="uploads per row (default: 400 small, 48 of 12 MP)")
    parser.add_argument("--workers", type=at_least_one, help="cleaning workers in all (default: the number of CPUs)")
    parser.add_argument("--rounds", type=at_least_one, default=3, help="rounds per row, set-ups taking turns (default 3)")
    parser.add_argument("--photos", nargs="+", choices=[p.name for p in PHOTOS], default=[p.name for p in PHOTOS])
    parser.add_argument("--_clients", metavar="JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._clients:
        run_clients(args._clients)
        return 0

    children = Children()
    return run_and_clean_up("bench", lambda scratch: (run(args, children, scratch), True), children.stop_all)


if __name__ == "__main__":
    sys.exit(main())
