"""Several frames through one FramePipeline at once, results in frame order.

On a CPU, one frame's three small models keep two cores only partly busy: each session's work is split over the
cores in short pieces with a sync after each. Two frames in process at once, each on one core, keep both cores
busy. ``FrameStream`` runs up to ``in_flight`` frames of one FramePipeline side by side on a thread pool. The
steps whose state runs across frames (the face tracker, the per-track smoothing) take turns in frame order
inside ``FramePipeline.process``, so the results are the same as one frame at a time.

    with FrameStream(pipeline, in_flight=2) as stream:
        for frame in source:
            for done in stream.submit(frame.image, frame.index, frame.time_s, tag=frame):
                use(done.tag, done.result)      # oldest first; done.error is set when that frame failed
        for done in stream.drain():
            use(done.tag, done.result)
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ofer_live.pipeline.frame_pipeline import FramePipeline
from ofer_live.types import FrameResult


@dataclass(frozen=True)
class Finished:
    """One processed frame: ``result`` or, when processing failed, ``error``; ``tag`` as given to ``submit``."""

    tag: Any
    result: FrameResult | None
    error: Exception | None = None


class FrameStream:
    """Runs ``pipeline.process`` on up to ``in_flight`` frames at once; hands back results in submission order.

    in_flight=1 processes each frame in ``submit`` on the calling thread, exactly like ``pipeline.process``.
    One thread submits; ``close`` (or leaving the ``with`` block) finishes the frames still in process.
    """

    def __init__(self, pipeline: FramePipeline, in_flight: int = 2) -> None:
        if in_flight < 1:
            raise ValueError(f"in_flight must be 1 or more, got {in_flight}")
        self.pipeline = pipeline
        self.in_flight = int(in_flight)
        self._pool = (
            ThreadPoolExecutor(max_workers=self.in_flight, thread_name_prefix="frame") if self.in_flight > 1 else None
        )
        self._pending: deque[tuple[Any, Future[FrameResult]]] = deque()

    @property
    def pending(self) -> int:
        """Frames submitted whose results have not been handed back yet."""
        return len(self._pending)

    def submit(
        self, frame_bgr: np.ndarray, frame_index: int = 0, time_s: float = 0.0, tag: Any = None
    ) -> list[Finished]:
        """frame_bgr: (H, W, 3) uint8 BGR. Starts it, waits while ``in_flight`` frames are unfinished, and returns
        every frame that has finished by then, oldest first (possibly none)."""
        if self._pool is None:
            return [self._run_inline(frame_bgr, frame_index, time_s, tag)]
        ticket = self.pipeline.take_ticket()
        future = self._pool.submit(self.pipeline.process, frame_bgr, frame_index, time_s, ticket=ticket)
        self._pending.append((tag, future))
        done = []
        while self._pending and (len(self._pending) >= self.in_flight or self._pending[0][1].done()):
            done.append(self._pop())
        return done

    def poll(self) -> list[Finished]:
        """The frames finished so far, oldest first, without waiting."""
        done = []
        while self._pending and self._pending[0][1].done():
            done.append(self._pop())
        return done

    def drain(self) -> list[Finished]:
        """Wait for every frame in process -> all of them, oldest first."""
        return [self._pop() for _ in range(len(self._pending))]

    def close(self) -> list[Finished]:
        """Finish the frames in process and stop the threads -> those frames (idempotent)."""
        done = self.drain()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        return done

    def __enter__(self) -> FrameStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pop(self) -> Finished:
        tag, future = self._pending.popleft()
        try:
            return Finished(tag, future.result())
        except Exception as exc:  # noqa: BLE001 - handed to the caller with its frame
            return Finished(tag, None, exc)

    def _run_inline(self, frame_bgr: np.ndarray, frame_index: int, time_s: float, tag: Any) -> Finished:
        try:
            return Finished(tag, self.pipeline.process(frame_bgr, frame_index, time_s))
        except Exception as exc:  # noqa: BLE001 - handed to the caller with its frame
            return Finished(tag, None, exc)
