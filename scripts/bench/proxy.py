"""Veil proxy benchmark: the latency Veil adds to small API requests, idle and under load.

Run it through scripts/bench/proxy (which sets up .venv first). Markdown goes to stdout,
progress to stderr. Every number in one output comes from the same run on the same
machine; ratios are against the baseline measured in that run, never against old numbers.

Two real mitmdump processes run side by side, started the way the end-to-end tests start
them (tests/e2e/conftest.py): the baseline with only the test rerouting addon, and Veil
(`-s addons/veil_addon.py`) followed by the same rerouting addon. Clients use the real
URL (https://api.openai.com/...) through the proxy and trust the proxy's CA; the
rerouting addon sends what gets through to a local recording upstream. Nothing leaves
127.0.0.1.

1. Idle: one keep-alive HTTPS client per proxy sends the same ~1 KB chat-completions
   JSON (no image), N sequential requests each after a warm-up, alternating between the
   two proxies so that background noise hits both alike. p50/p90/p99 and Veil/plain.
2. Under load: four uploader threads (a separate process) keep posting a 12 MP JPEG
   with faces (multipart, /v1/files) through Veil for the whole window, while the same
   alternating small requests are measured. p99(load)/p99(idle), the plain proxy under
   the same machine load as a reference, the uploads' own latency, and the CPU each
   process used during the window.

The upstream and the uploaders run in their own processes so that their Python threads
do not compete for the measuring client's GIL; only the CPU is shared, as on a real machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import signal
import ssl
import statistics
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

sys.path.insert(0, str(ROOT / "tests"))

CHAT_URL = "https://api.openai.com/v1/chat/completions"
FILES_URL = "https://api.openai.com/v1/files"
AUTH = {"Authorization": "Bearer sk-veil-bench-not-a-key"}

# Targets printed next to the results.
P50_OVERHEAD_MAX = 1.1  # Veil's idle p50 within 1.1x the plain mitmdump's
P99_UNDER_LOAD_MAX = 1.5  # Veil's p99 while masking 4 photos within 1.5x its idle p99

UPLOADERS = 4
PHOTO_SIZE = (4000, 3000)  # 12 MP
TILE = 1000  # 4 x 3 tiles, one face each
PHOTO_QUALITY = 90
SETTLE_SECONDS = 2.0  # after the uploaders start, before the load window opens
REQUEST_TIMEOUT = 120.0


@dataclass(frozen=True)
class Plan:
    requests: int  # idle, per proxy
    warmup: int  # per proxy
    window: float  # seconds of load


FULL = Plan(requests=1000, warmup=20, window=60.0)
QUICK = Plan(requests=100, warmup=10, window=15.0)


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def http_client_module():
    """httpx as the openai SDK installs it (httpx2 in this venv, httpx elsewhere)."""
    try:
        import httpx2 as httpx
    except ImportError:
        import httpx
    return httpx


def chat_body() -> bytes:
    """A typical ~1 KB chat-completions request without images."""
    question = (
        "I am preparing a short talk for our team about how we review pull requests. "
        "Could you suggest a structure with an opening, three main points and a closing, "
        "and for each main point one concrete example from a typical web service codebase? "
        "Please keep every bullet under twenty words, avoid jargon, and add one sentence on "
        "how to keep reviews kind while still catching real problems such as missing tests, "
        "unclear names, error handling that swallows failures, and changes that are too big "
        "to review in one sitting. We use GitHub, Python and TypeScript."
    )
    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a concise assistant that writes plain, friendly English."},
            {"role": "user", "content": "Hi! Quick one about code reviews."},
            {"role": "assistant", "content": "Sure, what would you like to know?"},
            {"role": "user", "content": question},
        ],
        "temperature": 0.3,
        "max_tokens": 400,
        "user": "bench-user-0001",
    }
    return json.dumps(body).encode()


# --------------------------------------------------------------------------- processes


class Children:
    """Every process this run started, stopped by process group at exit (also on Ctrl-C)."""

    def __init__(self):
        self.proxies = []  # e2e Proxy objects, stopped with the e2e helper
        self.others: list[subprocess.Popen] = []

    def spawn(self, argv: list[str], **kwargs) -> subprocess.Popen:
        process = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self.others.append(process)
        return process

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        from e2e.conftest import stop

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a second Ctrl-C must not cut this short
            signal.signal(signum, signal.SIG_IGN)
        for process in reversed(self.others):
            self.kill(process)
        for proxy in reversed(self.proxies):
            try:
                stop(proxy)
            except ProcessLookupError:
                pass


def start_upstream(children: Children) -> int:
    """The e2e recording upstream, in its own process; returns its port."""
    process = children.spawn(
        [sys.executable, __file__, "--_upstream"], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    line = process.stdout.readline().strip()
    if not line.isdigit():
        raise RuntimeError(f"the upstream did not start (said {line!r})")
    return int(line)


def serve_upstream() -> None:
    """Child process: RecordingUpstream, emptied twice a second (uploads are MBs each).

    With TCP_NODELAY on its sockets: BaseHTTPRequestHandler writes the headers and the
    body separately, and with Nagle's algorithm the body then waits for the delayed ACK of
    the headers (~40 ms on Linux), a stall a real service does not add and that would
    hide whatever the proxies themselves cost."""
    from e2e.upstream import RecordingUpstream

    parent = os.getppid()
    upstream = RecordingUpstream()
    upstream.server.RequestHandlerClass.disable_nagle_algorithm = True
    with upstream:
        print(upstream.port, flush=True)
        while os.getppid() == parent:
            time.sleep(0.5)
            upstream.clear()


def start_plain_proxy(children: Children, tmp: Path, upstream_port: int):
    """mitmdump with only the rerouting addon: start_mitmdump's command minus Veil."""
    from e2e.conftest import start_plain_mitmdump

    proxy = start_plain_mitmdump(tmp, upstream_port)
    children.proxies.append(proxy)
    return proxy


def start_veil_proxy(children: Children, tmp: Path, upstream_port: int, workers: int | None, ort_threads: int | None):
    """mitmdump with Veil and the rerouting addon, exactly as the e2e tests start it."""
    from e2e.conftest import DEFAULT_POLICY, start_mitmdump

    tmp.mkdir(parents=True, exist_ok=True)
    extra = ["--set", f"veil_workers={workers}"] if workers is not None else []
    saved = os.environ.get("VEIL_ORT_THREADS")
    if ort_threads is not None:
        os.environ["VEIL_ORT_THREADS"] = str(ort_threads)  # start_mitmdump's Popen inherits it
    try:
        proxy = start_mitmdump(tmp, upstream_port, DEFAULT_POLICY, *extra)
    finally:
        if ort_threads is not None:
            if saved is None:
                del os.environ["VEIL_ORT_THREADS"]
            else:
                os.environ["VEIL_ORT_THREADS"] = saved
    children.proxies.append(proxy)
    return proxy


# --------------------------------------------------------------------------- the photo


def build_photo(path: Path) -> None:
    """A 12 MP 'phone photo' with 12 faces: 4x3 tiles of scikit-image's astronaut (plain and
    mirrored) upscaled 512 -> 1000 px, with Gaussian sensor-like noise (sigma 4) so that it
    compresses like a phone JPEG; saved at quality 90."""
    import numpy as np
    import skimage.data
    from PIL import Image, ImageOps

    astronaut = Image.fromarray(skimage.data.astronaut()).convert("RGB").resize((TILE, TILE), Image.Resampling.LANCZOS)
    tiles = [astronaut, ImageOps.mirror(astronaut)]
    canvas = Image.new("RGB", PHOTO_SIZE)
    for row in range(PHOTO_SIZE[1] // TILE):
        for column in range(PHOTO_SIZE[0] // TILE):
            canvas.paste(tiles[(row + column) % 2], (column * TILE, row * TILE))
    pixels = np.asarray(canvas, dtype=np.float32)
    pixels += np.random.default_rng(20240601).standard_normal(pixels.shape, dtype=np.float32) * 4.0
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=PHOTO_QUALITY)


def upload_once(client, photo: bytes):
    return client.post(
        FILES_URL, headers=AUTH, data={"purpose": "vision"}, files={"file": ("photo.jpg", photo, "image/jpeg")}
    )


def run_uploaders(config: str) -> None:
    """Child process: `threads` uploaders posting the photo back to back until killed; one
    JSON line per finished upload on stdout (monotonic clock, comparable across processes)."""
    settings = json.loads(config)
    httpx = http_client_module()
    context = ssl.create_default_context(cafile=settings["ca"])
    photo = Path(settings["photo"]).read_bytes()
    lock = threading.Lock()

    def uploader(index: int) -> None:
        with httpx.Client(proxy=settings["proxy"], verify=context, timeout=REQUEST_TIMEOUT, trust_env=False) as client:
            while True:
                started = time.monotonic()
                try:
                    status, error = upload_once(client, photo).status_code, None
                except Exception as failure:  # noqa: BLE001 - reported, then the next upload
                    status, error = None, f"{type(failure).__name__}: {failure}"[:200]
                line = json.dumps({"thread": index, "start": started, "end": time.monotonic(), "status": status, "error": error})
                with lock:
                    print(line, flush=True)

    threads = [threading.Thread(target=uploader, args=(i,), daemon=True) for i in range(settings["threads"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@dataclass
class Upload:
    start: float
    end: float
    status: int | None
    error: str | None


@dataclass
class Uploaders:
    process: subprocess.Popen
    started: float
    done: list[Upload] = field(default_factory=list)

    def follow(self) -> None:
        for line in self.process.stdout:
            record = json.loads(line)
            self.done.append(Upload(record["start"], record["end"], record["status"], record["error"]))


def start_uploaders(children: Children, proxy, photo: Path) -> Uploaders:
    config = json.dumps({"proxy": proxy.url, "ca": str(proxy.ca_file), "photo": str(photo), "threads": UPLOADERS})
    process = children.spawn(
        [sys.executable, __file__, "--_uploaders", config], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    uploaders = Uploaders(process, time.monotonic())
    threading.Thread(target=uploaders.follow, daemon=True).start()
    return uploaders


# --------------------------------------------------------------------------- measuring


@dataclass
class Series:
    name: str
    ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def pct(self, q: float) -> float | None:
        import numpy as np

        return float(np.percentile(self.ms, q)) if self.ms else None


def new_client(proxy):
    httpx = http_client_module()
    return httpx.Client(proxy=proxy.url, verify=proxy.ssl_context(), timeout=REQUEST_TIMEOUT, trust_env=False)


def send_small(client, body: bytes, series: Series | None) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    started = time.perf_counter()
    try:
        response = client.post(CHAT_URL, content=body, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        ok = response.status_code == 200 and b"chat.completion" in response.content
        problem = None if ok else f"HTTP {response.status_code}: {response.text[:120]}"
    except Exception as failure:  # noqa: BLE001 - counted and shown
        elapsed, problem = None, f"{type(failure).__name__}: {failure}"[:160]
    if series is None:
        if problem:
            raise RuntimeError(f"warm-up request failed: {problem}")
        return
    if problem:
        series.failures.append(problem)
    else:
        series.ms.append(elapsed)


def alternate(clients: dict, body: bytes, *, count: int | None = None, until: float | None = None,
              warmup: int = 0) -> dict[str, Series]:
    """Sequential small requests, one proxy then the other (the first one alternates), so
    that whatever else the machine does lands on both series alike."""
    names = list(clients)
    for _ in range(warmup):
        for name in names:
            send_small(clients[name], body, None)
    series = {name: Series(name) for name in names}
    rounds = 0
    while (count is None or rounds < count) and (until is None or time.monotonic() < until):
        for name in names if rounds % 2 == 0 else reversed(names):
            send_small(clients[name], body, series[name])
        rounds += 1
    return series


class CpuMeter:
    """CPU seconds used by given processes and by the whole machine between start and stop."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self.before = self._sample()

    def _sample(self) -> tuple[float, dict[str, float], float]:
        per_process = {}
        for name, pid in self.pids.items():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                per_process[name] = (int(fields[11]) + int(fields[12])) / self.TICK
            except (OSError, IndexError, ValueError):
                per_process[name] = float("nan")
        try:
            values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
            busy = (sum(values[:8]) - values[3] - values[4]) / self.TICK
        except (OSError, ValueError):
            busy = float("nan")
        return time.monotonic(), per_process, busy

    def stop(self) -> tuple[float, dict[str, float], float]:
        """(wall seconds, cores used per process, cores used by the whole machine)."""
        t0, p0, b0 = self.before
        t1, p1, b1 = self._sample()
        wall = t1 - t0
        return wall, {name: (p1[name] - p0[name]) / wall for name in self.pids}, (b1 - b0) / wall


def peak_rss(pid: int) -> float | None:
    """Peak resident memory of a process in MB (Linux VmHWM), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def audit_uploads(proxy, since: int) -> list[dict]:
    return [r for r in proxy.audit_records()[since:] if r.get("url", "").endswith("/v1/files")]


# --------------------------------------------------------------------------- output


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "–"
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def fmt_ratio(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio:.2f}×"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else "✅ met" if ok else "❌ **missed**"


def cpu_line(phase: str, wall: float, cores: dict[str, float], machine: float, affinity: int) -> str:
    ours = sum(value for value in cores.values() if value == value)
    others = max(0.0, machine - ours)
    return (
        f"CPU during {phase} ({wall:.1f} s), in cores of {affinity}: "
        + ", ".join(f"{name} {value:.2f}" for name, value in cores.items())
        + f"; whole machine {machine:.2f}, of which processes outside this benchmark ≈ {others:.2f}"
        + (" — **other work on the machine competed with this run**" if others > 0.25 else "")
        + "."
    )


def series_row(label: str, series: Series, baseline: Series | None, note: str = "") -> str:
    cells = [label, str(len(series.ms)) + (f" ({len(series.failures)} failed)" if series.failures else "")]
    cells += [fmt_ms(series.pct(q)) for q in (50, 90, 99)] + [fmt_ms(max(series.ms) if series.ms else None)]
    cells += [fmt_ratio(ratio(series.pct(q), baseline.pct(q) if baseline else None)) for q in (50, 90, 99)]
    return "| " + " | ".join(cells + [note]) + " |"


SERIES_HEADER = [
    "| Proxy | requests | p50 ms | p90 ms | p99 ms | max ms | p50 ratio | p90 ratio | p99 ratio | ratio against |",
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
]


# --------------------------------------------------------------------------- the run


def run(args, children: Children, tmp: Path) -> list[str]:
    import mitmproxy.version
    import onnxruntime

    plan = QUICK if args.quick else FULL
    requests = args.requests or plan.requests
    window = args.window or plan.window
    load_at_start = os.getloadavg()
    httpx = http_client_module()

    log("building the 12 MP photo")
    photo = tmp / "photo-12mp.jpg"
    build_photo(photo)
    photo_bytes = photo.read_bytes()

    log("starting the upstream and both mitmdumps")
    upstream_port = start_upstream(children)
    plain = start_plain_proxy(children, tmp / "plain", upstream_port)
    veil = start_veil_proxy(children, tmp / "veil", upstream_port, args.workers, args.ort_threads)
    body = chat_body()

    clients = {"plain": new_client(plain), "veil": new_client(veil)}
    try:
        log("one warm-up upload through Veil (loads the face model)")
        started = time.perf_counter()
        with new_client(veil) as client:
            response = upload_once(client, photo_bytes)
        cold_upload = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(
                f"the warm-up upload got HTTP {response.status_code}: {response.text[:500]}\n"
                f"Veil's mitmdump said:\n{veil.output()[-2000:]}"
            )
        warm_records = len(veil.audit_records())

        log(f"idle: {plan.warmup} warm-up + {requests} small requests per proxy, alternating")
        idle_meter = CpuMeter({"Veil mitmdump": veil.process.pid, "plain mitmdump": plain.process.pid,
                               "upstream": children.others[0].pid, "this measuring client": os.getpid()})
        idle = alternate(clients, body, count=requests, warmup=plan.warmup)
        idle_cpu = idle_meter.stop()

        log(f"load: {UPLOADERS} uploaders through Veil; measuring for {window:g} s after {SETTLE_SECONDS:g} s")
        uploaders = start_uploaders(children, veil, photo)
        time.sleep(SETTLE_SECONDS)
        pids = {"Veil mitmdump": veil.process.pid, "plain mitmdump": plain.process.pid,
                "uploaders (client)": uploaders.process.pid, "upstream": children.others[0].pid,
                "this measuring client": os.getpid()}  # fmt: skip
        meter = CpuMeter(pids)
        window_start = time.monotonic()
        loaded = alternate(clients, body, until=window_start + window)
        window_end = time.monotonic()
        wall, cores, machine_cores = meter.stop()
        children.kill(uploaders.process)
        peak_rss_mb = peak_rss(veil.process.pid)
        if veil.process.poll() is not None:
            raise RuntimeError(f"the Veil mitmdump exited during the load window:\n{veil.output()[-2000:]}")
        time.sleep(0.2)
        uploads = [u for u in uploaders.done if window_start <= u.end <= window_end]
        in_window = [u for u in uploads if u.start >= window_start]
        cleaned = audit_uploads(veil, warm_records)
    finally:
        for client in clients.values():
            client.close()

    # ---- tables
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load_end = os.getloadavg()
    workers_text = f"{args.workers}" if args.workers is not None else f"default (cpu_count = {os.cpu_count()})"
    inherited = os.environ.get("VEIL_ORT_THREADS")
    ort_value = str(args.ort_threads) if args.ort_threads is not None else inherited
    ort_text = (
        str(args.ort_threads) if args.ort_threads is not None
        else f"{inherited} (inherited)" if inherited else "unset → 2 (detector default)"
    )
    out = [f"### Veil proxy latency benchmark{' (--quick: smoke check, not numbers to publish)' if args.quick else ''}", ""]
    out += [
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; Veil at `{git_revision()}`",
        f"- Machine: {cpu_model()}, nproc {affinity}, {platform.system()} {platform.release()} ({platform.machine()})",
        f"- Python {platform.python_version()}, mitmproxy {mitmproxy.version.VERSION}, onnxruntime {onnxruntime.__version__}, "
        f"client {httpx.__name__} {httpx.__version__} (keep-alive, HTTP/1.1, one connection per proxy)",
        "- Load average (1, 5, 15 min) at start → end: "
        + ", ".join(f"{a:.2f} → {b:.2f}" for a, b in zip(load_at_start, load_end))
        + " (lags by a minute; the CPU lines at the end say whether other work competed during this run)",
        f"- Veil: veil_workers = {workers_text}; VEIL_ORT_THREADS = {ort_text}",
        "- Baseline mitmdump: `" + shlex.join(plain.process.args) + "`",
        "- Veil mitmdump: `" + (f"VEIL_ORT_THREADS={ort_value} " if ort_value else "") + shlex.join(veil.process.args) + "`",
        "- Upstream: tests/e2e/upstream.py's RecordingUpstream in its own process, with TCP_NODELAY "
        "(without it every response waits ~40 ms for a delayed ACK); uploaders in another process.",
        f"- Small request: POST {CHAT_URL}, {len(body)} B JSON, no image; sequential, alternating between the two proxies.",
        f"- Photo: {PHOTO_SIZE[0]}×{PHOTO_SIZE[1]} JPEG q{PHOTO_QUALITY}, {len(photo_bytes) / 1e6:.1f} MB, "
        f"{(PHOTO_SIZE[0] // TILE) * (PHOTO_SIZE[1] // TILE)} astronaut faces + noise; multipart POST {FILES_URL}.",
        "",
        f"#### 1. Small JSON requests, idle ({plan.warmup} warm-up + {requests} per proxy)",
        "",
        *SERIES_HEADER,
        series_row("plain mitmdump (baseline)", idle["plain"], idle["plain"], "plain, idle"),
        series_row("**Veil**", idle["veil"], idle["plain"], "plain, idle"),
        "",
    ]
    p50_ratio = ratio(idle["veil"].pct(50), idle["plain"].pct(50))
    out.append(
        f"Target: Veil p50 ≤ {P50_OVERHEAD_MAX:g}× plain → {fmt_ratio(p50_ratio)} "
        f"(+{fmt_ms((idle['veil'].pct(50) or 0) - (idle['plain'].pct(50) or 0))} ms) "
        f"{verdict(None if p50_ratio is None else p50_ratio <= P50_OVERHEAD_MAX)}"
    )
    out += [
        "",
        f"#### 2. Small JSON requests while {UPLOADERS} × 12 MP uploads are masked by Veil ({window:g} s window)",
        "",
        *SERIES_HEADER,
        series_row("**Veil, under load**", loaded["veil"], idle["veil"], "Veil, idle"),
        series_row("plain mitmdump, same machine load", loaded["plain"], idle["plain"], "plain, idle"),
        series_row("Veil, under load vs plain under load", loaded["veil"], loaded["plain"], "plain, under load"),
        "",
    ]
    p99_ratio = ratio(loaded["veil"].pct(99), idle["veil"].pct(99))
    out.append(
        f"Target: Veil p99 under load ≤ {P99_UNDER_LOAD_MAX:g}× Veil idle p99 → {fmt_ratio(p99_ratio)} "
        f"({fmt_ms(loaded['veil'].pct(99))} ms vs {fmt_ms(idle['veil'].pct(99))} ms) "
        f"{verdict(None if p99_ratio is None else p99_ratio <= P99_UNDER_LOAD_MAX)}; "
        f"p50 under load {fmt_ms(loaded['veil'].pct(50))} ms ({fmt_ratio(ratio(loaded['veil'].pct(50), idle['veil'].pct(50)))} idle)."
    )
    if len(loaded["veil"].ms) < 100:
        out.append(
            f"Only {len(loaded['veil'].ms)} Veil requests fitted in the window, so its p99 is about its maximum. The plain "
            "requests alternate with Veil's, so they were spaced by Veil's stalls: the plain row under load is then "
            "not a clean reference."
        )
    for series in (*idle.values(), *loaded.values()):
        if series.failures:
            out.append(f"Failed {series.name} requests: {len(series.failures)}, e.g. {series.failures[0]}")
    out.append("")

    durations = [u.end - u.start for u in uploads if u.status == 200]
    statuses: dict[str, int] = {}
    for upload in uploads:
        key = str(upload.status) if upload.status else "error"
        statuses[key] = statuses.get(key, 0) + 1
    events: dict[str, int] = {}
    for record in cleaned:
        events[record["event"]] = events.get(record["event"], 0) + 1
    clean_ms = [r["duration_ms"] for r in cleaned if r["event"] == "sanitised" and r.get("duration_ms")]
    faces = [r["faces"] for r in cleaned if r["event"] == "sanitised"]
    out += [
        "| Uploads (12 MP, through Veil) | value |",
        "|---|--:|",
        f"| finished inside the window (HTTP status: count) | {len(uploads)} ({', '.join(f'{k}: {v}' for k, v in sorted(statuses.items())) or 'none'}) |",
        f"| median s per upload, HTTP 200, whole request | {statistics.median(durations):.2f} |" if durations else "| median s per upload | – |",
        f"| min / max s per upload | {min(durations):.2f} / {max(durations):.2f} |" if durations else "| min / max s per upload | – |",
        f"| uploads started and finished inside the window | {len(in_window)} |",
        f"| throughput, photos / minute | {60 * sum(1 for u in uploads if u.status == 200) / window:.1f} |",
        "| Veil's cleaning time per photo (audit `duration_ms`, median; runs in the pool) | "
        + (f"{statistics.median(clean_ms) / 1000:.2f} s |" if clean_ms else "– |"),
        f"| audit events for those uploads (window and tail) | {', '.join(f'{k}: {v}' for k, v in sorted(events.items())) or 'none'} |",
        f"| faces masked per photo (median) | {statistics.median(faces):g} |" if faces else "| faces masked per photo | – |",
        f"| Veil mitmdump peak memory (VmHWM, whole run) | {peak_rss_mb:.0f} MB |" if peak_rss_mb else "| Veil mitmdump peak memory | – |",
        f"| first upload (model load + session compile + clean, idle) | {cold_upload:.2f} s |",
        "",
        cpu_line("the idle measurement", *idle_cpu, affinity),
        "",
        cpu_line("the load window", wall, cores, machine_cores, affinity),
        "",
    ]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, shorter load window (smoke check)")
    parser.add_argument("--workers", type=at_least_one, help="passed to the Veil mitmdump as --set veil_workers=N")
    parser.add_argument("--ort-threads", type=at_least_one, help="VEIL_ORT_THREADS=N for the Veil mitmdump")
    parser.add_argument("--requests", type=at_least_one, help="idle small requests per proxy (default 1000, --quick 100)")
    parser.add_argument("--window", type=float, help="seconds of load (default 60, --quick 15)")
    parser.add_argument("--_upstream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--_uploaders", metavar="JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._upstream:
        serve_upstream()
        return 0
    if args._uploaders:
        run_uploaders(args._uploaders)
        return 0

    children = Children()
    return run_and_clean_up("bench", lambda scratch: (run(args, children, scratch), True), children.stop_all)


if __name__ == "__main__":
    sys.exit(main())
