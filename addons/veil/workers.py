"""The processes that clean images, apart from the proxy's event loop.

Processes rather than threads: cleaning holds Python's GIL for part of its time, and a
proxy whose event loop waits for the GIL stalls every other user's request behind one
photo (measured: a 1 KB chat request waited ~1 s behind 12 MP uploads with threads). A
process also contains what a native decoder crash would otherwise take down: the proxy.
"""

import multiprocessing
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor

from .core import sanitise
from .errors import SanitiseError
from .options import SanitiseOptions
from .report import Result

# Workers run at the lowest priority: cleaning is batch work, and whenever the proxy's event
# loop has a request to move it should get a core at once. Niceness only matters under
# contention, so an otherwise idle machine cleans just as fast.
WORKER_NICENESS = 19


def start_pool(workers: int) -> ProcessPoolExecutor:
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    # Never plain fork: the proxy is multi-threaded, and a forked child can inherit held locks.
    context = multiprocessing.get_context(method)
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_prepare_worker)


def _prepare_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the proxy's to handle
    os.nice(WORKER_NICENESS)
    # One inference thread per worker: the pool already runs one worker per core.
    os.environ.setdefault("VEIL_ORT_THREADS", "1")
    try:
        from .faces import default_detector

        default_detector()  # load the model now, not on the first photo
    except RuntimeError:
        pass  # reported per image, where the policy's on_error decides


def warm_up() -> int:
    """A no-op job: submitting one per worker starts the processes before traffic arrives."""
    return os.getpid()


def clean(image: bytes, options: SanitiseOptions) -> tuple[Result | None, SanitiseError | None, float]:
    """Runs in a worker. Returns (result, error, milliseconds); never raises a SanitiseError."""
    started = time.perf_counter()
    try:
        result, error = sanitise(image, options), None
    except SanitiseError as failure:
        result, error = None, failure
    return result, error, (time.perf_counter() - started) * 1000
