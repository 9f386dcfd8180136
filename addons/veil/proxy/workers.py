"""The processes that clean images, apart from the proxy's event loop.

Processes rather than threads: cleaning holds Python's GIL for part of its time, and a
proxy whose event loop waits for the GIL stalls every other user's request behind one
photo (measured: a 1 KB chat request waited ~1 s behind 12 MP uploads with threads). A
process also contains what a native decoder crash would otherwise take down: the proxy.
"""

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
import weakref
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ..clean.core import sanitise
from ..clean.errors import SanitiseError
from ..clean.options import SanitiseOptions
from ..clean.report import Result

log = logging.getLogger("veil")

# Workers run at the lowest priority: cleaning is batch work, and whenever the proxy's event
# loop has a request to move it should get a core at once. Niceness only matters under
# contention, so an otherwise idle machine cleans just as fast.
WORKER_NICENESS = 19


def start_pool(workers: int, load_text: bool = False) -> ProcessPoolExecutor:
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    # Never plain fork: the proxy is multi-threaded, and a forked child can inherit held locks.
    context = multiprocessing.get_context(method)
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_prepare_worker, initargs=(os.getpid(), load_text)
    )


def _prepare_worker(proxy_pid: int, load_text: bool = False) -> None:
    # Ctrl-C and SIGTERM are the proxy's to handle: sent to the whole process group (a
    # terminal, docker stop, systemd), they would kill images being cleaned while the
    # proxy drains. The proxy shuts the workers down itself when it exits.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(proxy_pid,), name="veil-orphan-check", daemon=True).start()
    os.nice(WORKER_NICENESS)
    # One inference thread per worker: the pool already runs one worker per core.
    os.environ.setdefault("VEIL_ORT_THREADS", "1")
    try:
        from ..clean.faces import default_detector

        default_detector()  # load the model now, not on the first photo
    except RuntimeError:
        pass  # reported per image, where the policy's on_error decides
    if load_text:  # only when the policy masks text: otherwise the OCR stack is never imported
        _load_text_reader()


def _load_text_reader() -> None:
    try:
        from ..clean.text import default_reader

        default_reader()
    except RuntimeError:
        pass  # reported per image, where the policy's on_error decides


def _exit_with(proxy_pid: int) -> None:
    """A worker's parent is the forkserver, not the proxy: when the proxy is killed outright
    (kill -9, the OOM killer) nothing tells the workers, which would live on holding a face
    model each. They look once a second and leave with it."""
    while True:
        time.sleep(1.0)
        try:
            os.kill(proxy_pid, 0)
        except (ProcessLookupError, PermissionError):  # gone (or its pid reused by another user)
            os._exit(1)


def warm_up() -> int:
    """A no-op job: submitting one per worker starts the processes before traffic arrives."""
    return os.getpid()


def clean(image: bytes, options: SanitiseOptions) -> tuple[Result | None, SanitiseError | None, float]:
    """Runs in a worker. Returns (result, error, milliseconds); never raises a SanitiseError."""
    started = time.perf_counter()
    try:
        result, error = _without_input_copy(sanitise(image, options)), None
    except SanitiseError as failure:
        result, error = None, failure
    return result, error, (time.perf_counter() - started) * 1000


def _without_input_copy(result: Result) -> Result:
    """The proxy already holds the original image: hash it here and send back only the hash,
    not a second copy of the photo through the pipe."""
    report = result.report
    _ = report.sha256_before, report.sha256_after  # cached on the report, and pickled with it
    object.__setattr__(report, "input_bytes", b"")
    return result


class WorkerTimeout(Exception):
    """The image took longer than its time limit; the worker cleaning it was killed."""


class WorkerCrashed(Exception):
    """The worker cleaning the image died (a native crash in a decoder, the OOM killer…)."""


class WorkerPool:
    """A process pool whose overrunning or crashed workers are replaced.

    A worker stuck in native code cannot be interrupted, only killed, and a
    ProcessPoolExecutor cannot kill one of its workers alone: the whole pool is replaced.
    Images the other workers were cleaning at that moment were innocent, so they are
    cleaned again once on the fresh pool instead of failing."""

    def __init__(self, size: int, load_text: bool = False):
        self.size = size
        self.load_text = load_text  # each worker loads the OCR model at start (the policy masks text)
        self._executor = start_pool(size, load_text)
        self._retired: weakref.WeakSet[ProcessPoolExecutor] = weakref.WeakSet()  # replaced on purpose

    def warm_up(self) -> None:
        """Start every worker (imports, model load) before the first photo arrives."""
        for _ in range(self.size):
            self._executor.submit(warm_up)

    async def clean(self, image: bytes, options: SanitiseOptions, timeout: float):
        """(result, error, ms) as `clean` returns; raises WorkerTimeout or WorkerCrashed."""
        for attempt in (1, 2):
            executor = self._executor
            job = executor.submit(clean, image, options)
            try:
                return await asyncio.wait_for(asyncio.wrap_future(job), timeout)
            except TimeoutError:
                self._replace(executor, f"a worker exceeded the {timeout:g} s limit for one image")
                raise WorkerTimeout from None
            except BrokenProcessPool:
                if executor in self._retired and attempt == 1:
                    continue  # a bystander of a deliberate replacement: try once more
                self._replace(executor, "a cleaning worker died")
                raise WorkerCrashed from None
        raise WorkerCrashed

    def _replace(self, executor: ProcessPoolExecutor, why: str) -> None:
        if executor is not self._executor:
            return  # another image's failure already replaced it
        log.error(f"Veil: {why}; replacing the worker pool")
        self._retired.add(executor)
        self._executor = start_pool(self.size, self.load_text)
        self.warm_up()
        _kill(executor)

    def shutdown(self, wait: bool) -> None:
        """The workers finish the images they hold, then exit."""
        self._executor.shutdown(wait=wait)

    def kill(self) -> None:
        """For an exit that must not wait: an image stuck in native code would hold it."""
        _kill(self._executor)


def _kill(executor: ProcessPoolExecutor) -> None:
    # ProcessPoolExecutor has no public way to kill its workers; `_processes` is stable
    # across CPython 3.8–3.14. Killing them breaks the executor, which fails its
    # remaining futures with BrokenProcessPool.
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        process.kill()
    executor.shutdown(wait=False, cancel_futures=True)
