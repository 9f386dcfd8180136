"""Admission: how many images are taken on, and what a refused upload is told."""

import asyncio

import pytest

from veil.proxy.admission import Admission, Overloaded


def test_images_beyond_the_workers_and_the_queue_are_refused_with_a_retry_time():
    admission = Admission(workers=2, max_queued=3)
    admission.admit(4)
    admission.admit(1)  # exactly full: 2 cleaning + 3 waiting
    with pytest.raises(Overloaded) as refused:
        admission.admit(1)
    assert refused.value.retry_after >= 1 and "retry in" in refused.value.reason
    admission.release(1)
    admission.admit(1)  # room again once an image is done


def test_one_upload_larger_than_the_whole_queue_is_taken_on_when_nothing_else_waits():
    admission = Admission(workers=1, max_queued=2)
    admission.admit(10)
    with pytest.raises(Overloaded):
        admission.admit(1)


def test_retry_after_follows_the_measured_pace_of_cleaning():
    admission = Admission(workers=2, max_queued=0)
    admission.admit(2)
    for _ in range(50):
        admission.observe(4.0)
    slow = admission.retry_after()
    for _ in range(50):
        admission.observe(0.1)
    assert slow >= 6 and admission.retry_after() == 1


def test_no_more_images_are_cleaned_at_once_than_there_are_workers():
    admission = Admission(workers=2, max_queued=10)
    seen = []

    async def clean_one():
        async with admission.worker():
            seen.append(admission.cleaning)
            await asyncio.sleep(0.01)

    async def main():
        admission.admit(6)
        await asyncio.gather(*(clean_one() for _ in range(6)))

    asyncio.run(main())
    assert max(seen) == 2 and admission.cleaning == 0
