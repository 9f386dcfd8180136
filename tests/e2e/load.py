"""Many photo uploads from concurrent clients through a real mitmdump: the load test's core,
shared by tests/e2e/test_load.py (CI size) and scripts/load_test.py (1,000 uploads, with a
report and a plain-mitmdump baseline).

- `build_uploads(n)`: n distinct photos with real faces (scikit-image's astronaut, matplotlib's
  Grace Hopper, alone and side by side, 640–1280 px, plain and mirrored), each with GPS,
  camera and owner EXIF, a per-upload marker string in its EXIF description and JPEG comment,
  and a per-upload stamp in its pixels; sent in turn as an OpenAI chat completion (data URL
  in JSON), an Anthropic message (base64 in JSON), an OpenAI /v1/files multipart upload and
  a ChatGPT-web blob PUT (raw, length kept). Request bodies are built before the clock
  starts, so a client only sends bytes.
- `run_clients(proxy, uploads, clients)`: that many threads, one keep-alive HTTPS client
  each (trusting the proxy's CA), take the next upload until none is left; every answer is
  timed. No retries: a refusal or an error is counted, never hidden.
- `check_veil_run(...)`: the invariants: every upload answered 2xx by the upstream, the
  upstream received each upload exactly once, every image that arrived is clean (verifier,
  EXIF, marker, length where kept; faces on all or on a sample), and the audit log holds
  exactly one "sanitised" record per upload, matching what was sent and what arrived, with
  an intact hash chain.
- `TreeSampler`: RSS and CPU of a process and all its descendants (mitmdump and Veil's
  worker processes) from /proc, every 100 ms.

Each upload carries an `X-Load-Upload: <index>` header so that its arrival can be matched to
it; Veil changes only image bytes, so the header passes untouched.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import io
import json
import os
import ssl
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from e2e import conftest
from e2e.conftest import Proxy

LOAD_HEADER = "X-Load-Upload"
MARKER_PREFIX = "veil-load-marker-"
OWNER = "Jane Q. Uploader"  # EXIF Artist and Copyright: must not arrive
KINDS = ("openai-chat", "anthropic-messages", "openai-files", "chatgpt-put")
CHATGPT_BLOB_HOST = "sdmntprwestus.oaiusercontent.com"
REQUEST_TIMEOUT = 120.0  # seconds; a slower answer counts as an error


# --------------------------------------------------------------------------- photos


@cache
def _variants() -> tuple[tuple[str, object, int], ...]:
    """(name, PIL image, faces in it): 6 layouts x plain/mirrored, long sides 640-1280 px."""
    from PIL import Image, ImageOps

    from sample_faces import astronaut, grace_hopper

    def fit(image, long_side):
        scale = long_side / max(image.size)
        return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)

    def pair():
        canvas = Image.new("RGB", (600 + 40 + 512, 600), (196, 188, 176))
        canvas.paste(astronaut().resize((600, 600), Image.Resampling.LANCZOS), (0, 0))
        canvas.paste(grace_hopper(), (640, 0))
        return canvas

    layouts = [
        ("astronaut-640", fit(astronaut(), 640), 1),
        # Not 960: there the masked astronaut's suit collar, beside the mask, scores 0.26 as a
        # face for the checking detector (a false box; the face itself is masked).
        ("astronaut-1024", fit(astronaut(), 1024), 1),
        ("hopper-800", fit(grace_hopper(), 800), 1),
        ("hopper-1280", fit(grace_hopper(), 1280), 1),
        ("pair-1024", fit(pair(), 1024), 2),
        ("pair-1280", fit(pair(), 1280), 2),
    ]
    mirrored = [(f"{name}-mirrored", ImageOps.mirror(image), faces) for name, image, faces in layouts]
    return tuple(layouts + mirrored)


def _exif(marker: str, index: int) -> bytes:
    import piexif

    return piexif.dump({
        "0th": {
            piexif.ImageIFD.Make: b"Google", piexif.ImageIFD.Model: b"Pixel 8",
            piexif.ImageIFD.ImageDescription: marker.encode(),
            piexif.ImageIFD.Artist: OWNER.encode(), piexif.ImageIFD.Copyright: OWNER.encode(),
            piexif.ImageIFD.DateTime: b"2026:11:26 09:00:00",
        },
        "Exif": {
            piexif.ExifIFD.BodySerialNumber: f"SN{index:08d}".encode(),
            piexif.ExifIFD.DateTimeOriginal: b"2026:11:26 09:00:00",
        },
        "GPS": {
            piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSLatitude: ((48, 1), (51, 1), (2400 + index % 100, 100)),
            piexif.GPSIFD.GPSLongitudeRef: b"E", piexif.GPSIFD.GPSLongitude: ((2, 1), (21, 1), (700, 100)),
        },
    })  # fmt: skip


def _stamp(image, index: int) -> None:
    """16 bits of the index as 4x4 black/white 6 px cells near the bottom-right corner, so no
    two uploads share their pixels (away from every face)."""
    cell, x0, y0 = 6, image.width - 4 * 6 - 8, image.height - 4 * 6 - 8
    for bit in range(16):
        colour = (250, 250, 250) if (index >> bit) & 1 else (5, 5, 5)
        x, y = x0 + (bit % 4) * cell, y0 + (bit // 4) * cell
        image.paste(colour, (x, y, x + cell, y + cell))


def photo(index: int, token: str) -> tuple[bytes, str, int, str]:
    """(JPEG bytes, marker, faces, variant name) of upload `index`."""
    name, base, faces = _variants()[(index // len(KINDS)) % len(_variants())]
    image = base.copy()
    _stamp(image, index)
    marker = f"{MARKER_PREFIX}{token}-{index:06d}"
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=88, exif=_exif(marker, index), comment=marker.encode())
    return buffer.getvalue(), marker, faces, name


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Upload:
    index: int
    kind: str
    variant: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    photo: bytes  # the image as sent
    marker: str
    faces: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.photo).hexdigest()


def _data_url(image: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(image).decode()


def _request(kind: str, index: int, image: bytes) -> tuple[str, str, dict[str, str], bytes]:
    if kind == "openai-chat":
        body = {"model": "gpt-4o-mini", "max_tokens": 300, "messages": [{"role": "user", "content": [
            {"type": "text", "text": f"What is in this photo? ({index})"},
            {"type": "image_url", "image_url": {"url": _data_url(image), "detail": "high"}}]}]}  # fmt: skip
        headers = {"Authorization": "Bearer sk-veil-load-not-a-key", "Content-Type": "application/json"}
        return "POST", "https://api.openai.com/v1/chat/completions", headers, json.dumps(body).encode()
    if kind == "anthropic-messages":
        body = {"model": "claude-sonnet-4-5", "max_tokens": 300, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg",
                                         "data": base64.b64encode(image).decode()}},
            {"type": "text", "text": f"Who is this? ({index})"}]}]}  # fmt: skip
        headers = {"x-api-key": "sk-ant-veil-load", "anthropic-version": "2023-06-01", "Content-Type": "application/json"}
        return "POST", "https://api.anthropic.com/v1/messages", headers, json.dumps(body).encode()
    if kind == "openai-files":
        boundary = f"veil-load-boundary-{index:06d}"
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nvision\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="IMG_{index:04d}.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode() + image + f"\r\n--{boundary}--\r\n".encode()
        headers = {"Authorization": "Bearer sk-veil-load-not-a-key", "Content-Type": f"multipart/form-data; boundary={boundary}"}
        return "POST", "https://api.openai.com/v1/files", headers, body
    if kind == "chatgpt-put":  # ChatGPT in a browser: the blob PUT after declaring the size
        url = f"https://{CHATGPT_BLOB_HOST}/files/file-load{index:06d}/raw?se=2026&sp=w&sr=b&sig=SECRET"
        headers = {"Content-Type": "image/jpeg", "x-ms-blob-type": "BlockBlob", "x-ms-version": "2020-04-08",
                   "Origin": "https://chatgpt.com"}  # fmt: skip
        return "PUT", url, headers, image
    raise ValueError(kind)


def build_uploads(count: int, token: str | None = None) -> list[Upload]:
    """`count` uploads, the four kinds in turn, each with its own photo and marker."""
    token = token or os.urandom(4).hex()
    uploads = []
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        image, marker, faces, variant = photo(index, token)
        method, url, headers, body = _request(kind, index, image)
        headers = {**headers, LOAD_HEADER: str(index)}
        uploads.append(Upload(index, kind, variant, method, url, headers, body, image, marker, faces))
    return uploads


# --------------------------------------------------------------------------- clients


@dataclass
class Answer:
    index: int
    start: float  # time.monotonic()
    end: float
    status: int | None = None
    x_veil: str | None = None  # set when Veil itself answered
    retry_after: str | None = None
    message: str | None = None  # the answer's text (errors only; never image bytes) or the exception

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and self.x_veil is None


@dataclass
class LoadRun:
    clients: int
    answers: list[Answer]
    started: float
    ended: float

    @property
    def wall(self) -> float:
        return self.ended - self.started


def http_client_module():
    """httpx as the openai SDK installs it (httpx2 in this venv, httpx elsewhere)."""
    try:
        import httpx2 as httpx
    except ImportError:
        import httpx
    return httpx


def run_clients(proxy: Proxy, uploads: list[Upload], clients: int, timeout: float = REQUEST_TIMEOUT) -> LoadRun:
    """`clients` threads, each with its own keep-alive HTTPS client (HTTP/1.1) through the
    proxy, take the next upload until all are sent. One attempt per upload."""
    httpx = http_client_module()
    context = ssl.create_default_context(cafile=str(proxy.ca_file))
    answers: list[Answer | None] = [None] * len(uploads)
    next_index = iter(range(len(uploads)))
    lock = threading.Lock()
    go = threading.Barrier(clients + 1)

    def client() -> None:
        with httpx.Client(proxy=proxy.url, verify=context, timeout=timeout, trust_env=False) as session:
            go.wait()
            while True:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    return
                upload = uploads[index]
                start = time.monotonic()
                try:
                    response = session.request(upload.method, upload.url, content=upload.body, headers=upload.headers)
                except Exception as failure:  # noqa: BLE001 - counted, reported, no retry
                    answers[index] = Answer(index, start, time.monotonic(), message=f"{type(failure).__name__}: {failure}"[:300])
                    continue
                answer = Answer(index, start, time.monotonic(), response.status_code,
                                response.headers.get("x-veil"), response.headers.get("retry-after"))  # fmt: skip
                if not answer.ok:
                    answer.message = response.text[:300]
                answers[index] = answer

    threads = [threading.Thread(target=client, name=f"load-client-{n}", daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    go.wait()
    started = time.monotonic()
    for thread in threads:
        thread.join()
    ended = time.monotonic()
    missing = [i for i, answer in enumerate(answers) if answer is None]
    for index in missing:  # a client thread died: say so rather than lose the upload
        answers[index] = Answer(index, started, ended, message="never sent (a client thread stopped)")
    return LoadRun(clients, answers, started, ended)


# --------------------------------------------------------------------------- proxies


def start_plain_mitmdump(tmp: Path, upstream_port: int) -> Proxy:
    """The baseline: conftest.start_mitmdump's command without Veil (only the rerouting addon)."""
    return conftest.start_plain_mitmdump(tmp, upstream_port)


# --------------------------------------------------------------------------- /proc


TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, CPU ticks used) of a process, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[1]), int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (Veil's forkserver and worker processes)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat:
                children[stat[0]].append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _start_time(pid: int) -> int | None:
    """When the process started (clock ticks after boot), None when it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return None if fields[0] in "ZX" else int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def stop_proxy(proxy: Proxy, grace: float = 5.0) -> list[int]:
    """conftest.stop, then give the rest of the proxy's process tree (Veil's workers) `grace`
    seconds to exit by themselves; SIGKILL (by pid, checking it is still the same process)
    whatever is left, so no worker outlives a test holding memory. Returns those pids."""
    import signal

    from e2e.conftest import stop

    tree = [(pid, _start_time(pid)) for pid in process_tree(proxy.process.pid)[1:]]
    stop(proxy)
    deadline = time.monotonic() + grace
    while True:
        left = [pid for pid, started in tree if started is not None and _start_time(pid) == started]
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def _rss(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return None


def _hwm(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return None


def machine_busy_ticks() -> int:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values[:8]) - values[3] - values[4]  # all but idle and iowait


def tree_ticks(root: int) -> int:
    return sum((_stat(pid) or (0, 0))[1] for pid in process_tree(root))


def wait_until_idle(proxy: Proxy, quiet: float = 1.0, timeout: float = 60.0) -> float:
    """Wait until the proxy and its worker processes have used almost no CPU for `quiet`
    seconds (Veil's workers have loaded the face model); returns the seconds waited."""
    started = time.monotonic()
    time.sleep(0.5)
    last, quiet_since = tree_ticks(proxy.process.pid), time.monotonic()
    while time.monotonic() - started < timeout:
        time.sleep(0.25)
        ticks = tree_ticks(proxy.process.pid)
        if ticks - last > 0.03 * TICK:
            quiet_since = time.monotonic()
        last = ticks
        if time.monotonic() - quiet_since >= quiet:
            break
    return time.monotonic() - started


@dataclass
class MemorySample:
    at: float  # time.monotonic()
    total: int  # RSS of the whole tree, bytes
    root: int  # RSS of the mitmdump process itself
    processes: int


class TreeSampler:
    """Samples the RSS of a process tree every `interval` s in a thread (the tree itself is
    re-read every `rescan` s, so a restarted worker is picked up); also counts its CPU."""

    def __init__(self, root: int, interval: float = 0.1, rescan: float = 1.0):
        self.root, self.interval, self.rescan = root, interval, rescan
        self.samples: list[MemorySample] = []
        self.hwm: dict[int, int] = {}  # pid -> VmHWM seen last
        self.first_ticks: dict[int, int] = {}
        self.last_ticks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)
        self._pids: list[int] = []
        self._first_scan = True

    def __enter__(self):
        self._scan()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._scan()

    def _scan(self) -> None:
        self._pids = process_tree(self.root)
        for pid in self._pids:
            stat = _stat(pid)
            if stat:
                # A process already running at the first scan counts from there; one started
                # later (a restarted worker) counts whole.
                self.first_ticks.setdefault(pid, stat[1] if self._first_scan else 0)
                self.last_ticks[pid] = stat[1]
            hwm = _hwm(pid)
            if hwm:
                self.hwm[pid] = hwm
        self._first_scan = False

    def _run(self) -> None:
        scanned = time.monotonic()
        while not self._stop.wait(self.interval):
            if time.monotonic() - scanned >= self.rescan:
                self._scan()
                scanned = time.monotonic()
            sizes = {pid: _rss(pid) for pid in self._pids}
            live = {pid: size for pid, size in sizes.items() if size}
            self.samples.append(MemorySample(time.monotonic(), sum(live.values()), live.get(self.root, 0), len(live)))

    @property
    def peak(self) -> MemorySample | None:
        return max(self.samples, key=lambda sample: sample.total, default=None)

    def cpu_seconds(self) -> float:
        return sum(self.last_ticks[pid] - self.first_ticks.get(pid, 0) for pid in self.last_ticks) / TICK


# --------------------------------------------------------------------------- checks


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Arrival:
    upload: Upload
    image: bytes | None  # None: no image found where the upload had put it
    problem: str | None = None


def received_uploads(received) -> tuple[dict[int, list], list]:
    """The upstream's requests grouped by upload index; and those without the load header."""
    by_index: dict[int, list] = collections.defaultdict(list)
    strangers = []
    for request in received:
        value = request.headers.get(LOAD_HEADER.lower())
        if value is not None and value.isdigit():
            by_index[int(value)].append(request)
        else:
            strangers.append(request)
    return by_index, strangers


def image_in(upload: Upload, request) -> bytes:
    """The image in an arrived request, from where its kind of upload carries it."""
    if upload.kind == "openai-chat":
        url = json.loads(request.body)["messages"][0]["content"][1]["image_url"]["url"]
        prefix, _, data = url.partition(",")
        if prefix != "data:image/jpeg;base64":
            raise ValueError(f"the data URL now starts {prefix[:40]!r}")
        return base64.b64decode(data, validate=True)
    if upload.kind == "anthropic-messages":
        source = json.loads(request.body)["messages"][0]["content"][0]["source"]
        return base64.b64decode(source["data"], validate=True)
    if upload.kind == "openai-files":
        from e2e.declared_sizes import multipart_field

        image = multipart_field(request.body, request.headers["content-type"], "file")
        if image is None:
            raise ValueError("no file field in the multipart body")
        return image
    return request.body


@dataclass
class ImageVerdict:
    metadata: list[str]  # problems with metadata, markers or the verifier (none: clean)
    faces: list[str] | None  # None: faces not checked on this one


def image_problems(image: bytes, marker: str, faces: bool) -> ImageVerdict:
    """Everything wrong with one arrived image. Runs in a pool worker too."""
    from e2e.photos import face_problems, metadata_problems

    problems = [f"{needle.decode()!r} is still in the bytes"
                for needle in (marker.encode(), MARKER_PREFIX.encode(), OWNER.encode(), b"Pixel 8") if needle in image]  # fmt: skip
    try:
        problems += metadata_problems(image)
        return ImageVerdict(problems, face_problems(image) if faces else None)
    except Exception as failure:  # noqa: BLE001 - an unreadable arrival is a finding, not a crash
        return ImageVerdict(problems + [f"cannot be read: {type(failure).__name__}: {failure}"[:200]], None)


def _prepare_checker() -> None:
    os.environ.setdefault("VEIL_ORT_THREADS", "1")  # one inference thread per checking process


def _check_one(job: tuple[int, bytes, str, bool]) -> tuple[int, ImageVerdict]:
    index, image, marker, faces = job
    return index, image_problems(image, marker, faces)


def face_sample(uploads: list[Upload], size: int | None) -> set[int]:
    """Indices whose arrivals get the face check: all (size None) or `size` spread evenly,
    which covers every kind and layout when size >= 12."""
    if size is None or size >= len(uploads):
        return {u.index for u in uploads}
    step = len(uploads) / size
    return {uploads[int(n * step)].index for n in range(size)}


def check_images(arrivals: dict[int, Arrival], faces_for: set[int], workers: int = 0) -> dict[int, ImageVerdict]:
    """Problems per upload index; in `workers` processes (0: here, for a few images)."""
    jobs = [(i, a.image, a.upload.marker, i in faces_for) for i, a in sorted(arrivals.items()) if a.image is not None]
    if workers <= 0:
        return dict(_check_one(job) for job in jobs)
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # never fork: this process runs threads
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_prepare_checker) as pool:
        return dict(pool.map(_check_one, jobs, chunksize=8))


def _counts(values) -> str:
    return ", ".join(f"{key}: {count}" for key, count in collections.Counter(values).most_common()) or "none"


def check_answers(run: LoadRun, uploads: list[Upload]) -> Check:
    bad = [a for a in run.answers if not a.ok]
    statuses = _counts(str(a.status) if a.status else "no answer" for a in run.answers)
    detail = f"{len(uploads) - len(bad)} of {len(uploads)} answered 2xx by the upstream (HTTP {statuses})"
    if bad:
        veil = [a for a in bad if a.x_veil]
        detail += f"; {len(veil)} answered by Veil itself (X-Veil: {_counts(a.x_veil for a in veil)})" if veil else ""
        retry = [a.retry_after for a in bad if a.retry_after]
        detail += f"; Retry-After: {_counts(retry)}" if retry else ""
        detail += "; messages: " + _counts(f"{a.status or 'error'} {(a.message or '').strip()[:160]}" for a in bad)
    return Check("every upload answered 2xx, no proxy errors", not bad, detail)


def collect_arrivals(uploads: list[Upload], received) -> tuple[Check, dict[int, Arrival]]:
    """Exactly one request per upload reached the upstream, each carrying an image."""
    by_index, strangers = received_uploads(received)
    arrivals, problems = {}, []
    for upload in uploads:
        requests = by_index.get(upload.index, [])
        if len(requests) != 1:
            problems.append(f"upload {upload.index} arrived {len(requests)} times")
            continue
        try:
            arrivals[upload.index] = Arrival(upload, image_in(upload, requests[0]))
        except (ValueError, KeyError, IndexError, TypeError) as failure:
            arrivals[upload.index] = Arrival(upload, None, f"no image found: {failure}")
            problems.append(f"upload {upload.index} ({upload.kind}) arrived without its image: {failure}")
    unknown = [i for i in by_index if not 0 <= i < len(uploads)]
    carrying = sum(1 for a in arrivals.values() if a.image is not None)
    ok = not problems and not strangers and not unknown and carrying == len(uploads)
    detail = f"{carrying} image-carrying requests for {len(uploads)} uploads"
    if strangers or unknown:
        detail += f"; {len(strangers) + len(unknown)} other requests"
    if problems:
        detail += f"; {len(problems)} problems, e.g. " + "; ".join(problems[:3])
    return Check("the upstream received each upload exactly once, with its image", ok, detail), arrivals


def check_clean(arrivals: dict[int, Arrival], results: dict[int, ImageVerdict], faces_for: set[int]) -> list[Check]:
    dirty = {i: v.metadata for i, v in results.items() if v.metadata}
    checked = {i: v.faces for i, v in results.items() if v.faces is not None}
    unmasked = {i: problems for i, problems in checked.items() if problems}

    def examples(found: dict[int, list[str]]) -> str:
        return "; ".join(f"upload {i} ({arrivals[i].upload.kind}, {arrivals[i].upload.variant}): {', '.join(p)}"
                         for i, p in list(found.items())[:3])  # fmt: skip

    expected_faces = faces_for & set(results)
    kept = [a for a in arrivals.values() if a.upload.kind == "chatgpt-put" and a.image is not None]
    wrong_length = [a for a in kept if len(a.image) != len(a.upload.photo)]
    return [
        Check("every arrival clean: no EXIF beyond orientation, verifier findings empty, no marker or owner",
              not dirty and len(results) == len(arrivals) > 0,
              f"{len(results) - len(dirty)} of {len(arrivals)} clean" + (f"; {examples(dirty)}" if dirty else "")),
        Check(f"faces masked ({len(checked)} arrivals re-detected)", not unmasked and len(checked) == len(expected_faces),
              f"no face found in {len(checked) - len(unmasked)} of {len(checked)}" + (f"; {examples(unmasked)}" if unmasked else "")),
        Check("length kept for the ChatGPT blob PUTs (the size was declared first)", not wrong_length,
              f"{len(kept) - len(wrong_length)} of {len(kept)} as long as the original"),
    ]  # fmt: skip


def check_audit(audit_log: Path, uploads: list[Upload], arrivals: dict[int, Arrival]) -> list[Check]:
    from veil.audit import files, verify

    every = [json.loads(line) for line in audit_log.read_text().splitlines() if line] if audit_log.exists() else []
    records = [r for r in every if r.get("event") != "upstream"]
    outcomes = [r for r in every if r.get("event") == "upstream"]
    n = len(uploads)
    events = _counts(r.get("event") for r in records)
    checks = [Check(f"exactly {n} audit records, all \"sanitised\"",
                    len(records) == n and all(r.get("event") == "sanitised" for r in records),
                    f"{len(records)} records ({events})")]  # fmt: skip
    delivered = {r.get("request_id") for r in outcomes if r.get("delivered")}
    checks.append(Check(f"each of the {n} uploads followed to its outcome: delivered",
                        len(outcomes) == n and delivered == {r.get("request_id") for r in records},
                        f"{len(outcomes)} outcome records, {len(delivered)} delivered"))  # fmt: skip
    paths = files.chain_files([audit_log]) if audit_log.exists() else []
    verdict = verify.verify(paths) if paths else None
    intact = bool(verdict and verdict.intact and verdict.records == len(every))
    checks.append(Check("the audit hash chain verifies", intact,
                        f"{verdict.records} records, " + ("chain intact" if verdict.intact else verdict.problem)
                        if verdict else "no audit log"))  # fmt: skip
    by_before = collections.defaultdict(list)
    for record in records:
        by_before[record.get("sha256_before")].append(record)
    mismatched = []
    for upload in uploads:
        found = by_before.get(upload.sha256, [])
        arrival = arrivals.get(upload.index)
        if len(found) != 1:
            mismatched.append(f"upload {upload.index}: {len(found)} records with its hash")
        elif arrival and arrival.image is not None and found[0].get("sha256_after") != hashlib.sha256(arrival.image).hexdigest():
            mismatched.append(f"upload {upload.index}: sha256_after is not the hash of what arrived")
        elif (found[0].get("faces") or 0) < upload.faces:
            mismatched.append(f"upload {upload.index} ({upload.variant}): {found[0].get('faces')} faces masked, {upload.faces} in it")
    checks.append(Check("one record per upload: its hash before, the arrival's hash after, every face counted",
                        not mismatched, f"{n - len(mismatched)} of {n} match" + (f"; e.g. {'; '.join(mismatched[:3])}" if mismatched else "")))  # fmt: skip
    return checks


def check_veil_run(run: LoadRun, uploads: list[Upload], received, audit_log: Path,
                   faces_on: int | None = None, workers: int = 0) -> list[Check]:  # fmt: skip
    """Every invariant of a run through Veil. faces_on: how many arrivals get the (slow)
    face re-detection, None for all; workers: processes for the image checks."""
    answered = check_answers(run, uploads)
    arrived, arrivals = collect_arrivals(uploads, received)
    faces_for = face_sample(uploads, faces_on)
    results = check_images(arrivals, faces_for, workers)
    return [answered, arrived, *check_clean(arrivals, results, faces_for), *check_audit(audit_log, uploads, arrivals)]


def check_plain_run(run: LoadRun, uploads: list[Upload], received) -> list[Check]:
    """The baseline: everything answered, everything arrived, bytes untouched."""
    answered = check_answers(run, uploads)
    arrived, arrivals = collect_arrivals(uploads, received)
    changed = [i for i, a in arrivals.items() if a.image != a.upload.photo]
    return [answered, arrived, Check("the plain proxy delivered every image unchanged", not changed,
                                     f"{len(arrivals) - len(changed)} of {len(uploads)} unchanged")]  # fmt: skip


def failures(checks: list[Check]) -> list[str]:
    return [f"{c.name}: {c.detail}" for c in checks if not c.ok]


# --------------------------------------------------------------------------- figures


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    import numpy as np

    return float(np.percentile(values, q))


@dataclass
class Figures:
    uploads: int
    ok: int
    wall: float
    latencies: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, run: LoadRun) -> Figures:
        good = [a.seconds for a in run.answers if a.ok]
        return cls(len(run.answers), len(good), run.wall, good)

    @property
    def per_second(self) -> float:
        return self.ok / self.wall if self.wall else 0.0

    def p(self, q: float) -> float | None:
        return percentile(self.latencies, q)
