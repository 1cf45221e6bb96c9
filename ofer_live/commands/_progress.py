"""A tiny stderr progress bar for the commands (tqdm is not a base dependency)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``[#####.....]  50%  15/30 frames  12.3 fps`` redrawn in place on a terminal.

    On a non-terminal stream (a pipe, a log file) it stays silent until ``close()``, which writes one final
    line, so logs do not fill with carriage returns. ``total=None`` shows a count without a bar.
    """

    def __init__(
        self,
        total: int | None,
        unit: str = "frames",
        stream: TextIO | None = None,
        enabled: bool = True,
        min_interval_s: float = 0.1,
        width: int = 30,
    ) -> None:
        self.total = total if total and total > 0 else None
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.interactive = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval_s = min_interval_s
        self.width = width
        self.count = 0
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._closed = False

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = self.count / elapsed
        if self.total:
            frac = min(self.count / self.total, 1.0)
            filled = int(round(frac * self.width))
            bar = "#" * filled + "." * (self.width - filled)
            return f"[{bar}] {frac * 100:3.0f}%  {self.count}/{self.total} {self.unit}  {rate:.1f} {self.unit}/s"
        return f"{self.count} {self.unit}  {rate:.1f} {self.unit}/s"

    def update(self, n: int = 1) -> None:
        self.count += n
        if not self.interactive:
            return
        now = time.monotonic()
        if now - self._last_draw >= self.min_interval_s or (self.total and self.count >= self.total):
            self._last_draw = now
            self.stream.write("\r" + self.line())
            self.stream.flush()

    def close(self) -> None:
        if self._closed or not self.enabled:
            return
        self._closed = True
        self.stream.write(("\r" if self.interactive else "") + self.line() + "\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
