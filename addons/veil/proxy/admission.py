"""How much image cleaning the proxy takes on at once, and what it refuses beyond that.

Images are cleaned by a fixed number of workers. Beyond them, up to `max_queued` images
wait their turn; an upload that would queue more is refused at once with 503 and a
Retry-After, rather than piling up memory and latency for everyone. Only protected
uploads with images ever pass through here: chat requests and unprotected traffic
never wait on it.
"""

import asyncio
import math
from contextlib import asynccontextmanager

# Until the first images are measured, a guess at one image's cleaning time (a phone photo
# with faces, on one core).
INITIAL_SECONDS_PER_IMAGE = 1.0
_SMOOTHING = 0.2


class Overloaded(Exception):
    """The upload would queue more images than allowed."""

    def __init__(self, waiting: int, retry_after: int):
        super().__init__(waiting, retry_after)
        self.waiting = waiting
        self.retry_after = retry_after  # seconds, for the Retry-After header

    @property
    def reason(self) -> str:
        return (
            f"Veil is cleaning as many images as it is allowed to queue ({self.waiting} waiting); "
            f"retry in {self.retry_after} s"
        )


class Admission:
    def __init__(self, workers: int, max_queued: int):
        self.workers = workers
        self.max_queued = max_queued
        self.admitted = 0  # images taken on: cleaning or waiting for a worker
        self.cleaning = 0
        self._seconds_per_image = INITIAL_SECONDS_PER_IMAGE
        self._free_workers: asyncio.Semaphore | None = None  # made on the event loop, on first use

    @property
    def waiting(self) -> int:
        return self.admitted - self.cleaning

    def admit(self, images: int) -> None:
        """Take on an upload's images, or raise Overloaded. A single upload with more images
        than the whole queue is still taken on when nothing else waits: it could never fit."""
        if images and self.admitted + images > self.workers + self.max_queued and self.admitted:
            raise Overloaded(self.waiting, self.retry_after(images))
        self.admitted += images

    def release(self, images: int) -> None:
        self.admitted -= images

    def retry_after(self, images: int = 1) -> int:
        """Seconds until the work ahead (and this upload's) would be done, at the recent pace."""
        rounds = (self.admitted + images) / max(1, self.workers)
        return max(1, math.ceil(rounds * self._seconds_per_image))

    @asynccontextmanager
    async def worker(self):
        """Hold one of the workers while an image is cleaned; time limits start here, not in
        the queue."""
        if self._free_workers is None:
            self._free_workers = asyncio.Semaphore(self.workers)
        async with self._free_workers:
            self.cleaning += 1
            try:
                yield
            finally:
                self.cleaning -= 1

    def observe(self, seconds: float) -> None:
        self._seconds_per_image += _SMOOTHING * (seconds - self._seconds_per_image)
