"""A one-item mailbox where the newest item wins (capture -> inference hand-off)."""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds at most one item. ``put`` replaces an item nobody took (counted in ``dropped``);
    ``get`` waits for an item, a timeout, or ``close()``, which wakes every waiter. Thread-safe."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._has_item = False
        self._closed = False
        self._dropped = 0
        self._put = 0

    def put(self, item: T) -> None:
        """Store ``item``, replacing (and counting as dropped) any item not yet taken. Ignored once closed."""
        with self._cond:
            if self._closed:
                return
            if self._has_item:
                self._dropped += 1
            self._item, self._has_item = item, True
            self._put += 1
            self._cond.notify()

    def get(self, timeout: float | None = None) -> T | None:
        """The newest item, removing it; None on timeout or once closed (a pending item is discarded)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._has_item and not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            if self._closed or not self._has_item:
                return None
            item, self._item, self._has_item = self._item, None, False
            return item

    def close(self) -> None:
        """Refuse new items, discard a pending one and wake all waiters (their ``get`` returns None)."""
        with self._cond:
            self._closed = True
            self._item, self._has_item = None, False
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def dropped(self) -> int:
        """Items replaced before anyone took them."""
        return self._dropped

    @property
    def put_count(self) -> int:
        return self._put

    def __len__(self) -> int:
        return int(self._has_item)
