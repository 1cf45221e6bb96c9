"""LatestSlot: newest wins, drops counted, close wakes waiters."""

from __future__ import annotations

import threading
import time

from ofer_live.pipeline import LatestSlot


def test_newest_wins_and_drops_are_counted():
    slot: LatestSlot[int] = LatestSlot()
    slot.put(1)
    slot.put(2)
    slot.put(3)
    assert slot.dropped == 2
    assert slot.get(timeout=0) == 3
    assert slot.get(timeout=0.01) is None
    slot.put(4)
    assert slot.get() == 4
    assert slot.dropped == 2 and slot.put_count == 4


def test_get_times_out():
    slot: LatestSlot[int] = LatestSlot()
    start = time.monotonic()
    assert slot.get(timeout=0.05) is None
    assert time.monotonic() - start >= 0.04


def test_get_waits_for_put_from_another_thread():
    slot: LatestSlot[str] = LatestSlot()
    timer = threading.Timer(0.02, slot.put, args=("frame",))
    timer.start()
    assert slot.get(timeout=5) == "frame"
    timer.join()


def test_close_wakes_all_waiters_and_refuses_items():
    slot: LatestSlot[int] = LatestSlot()
    results = []
    threads = [threading.Thread(target=lambda: results.append(slot.get())) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.02)
    slot.close()
    for t in threads:
        t.join(timeout=2)
        assert not t.is_alive()
    assert results == [None, None, None]
    slot.put(5)
    assert slot.get(timeout=0) is None and slot.closed


def test_close_discards_pending_item():
    slot: LatestSlot[int] = LatestSlot()
    slot.put(1)
    slot.close()
    assert slot.get(timeout=0) is None


def test_producer_consumer_never_loses_the_newest():
    slot: LatestSlot[int] = LatestSlot()
    seen = []

    def consume():
        while (item := slot.get(timeout=2)) is not None:
            seen.append(item)
            if item == 999:
                return

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(1000):
        slot.put(i)
    consumer.join(timeout=5)
    assert seen[-1] == 999
    assert seen == sorted(seen)
    assert len(seen) + slot.dropped == 1000
