"""The tiny stderr progress bar used by `video` and `images`."""

from __future__ import annotations

import io

from ofer_live.commands._progress import Progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_redraws_in_place():
    stream = _Tty()
    with Progress(4, "frames", stream=stream, min_interval_s=0.0, width=8) as bar:
        for _ in range(4):
            bar.update()
    text = stream.getvalue()
    assert text.count("\r") >= 4 and text.endswith("\n")
    assert "[########] 100%  4/4 frames" in text


def test_pipe_gets_one_final_line():
    stream = io.StringIO()
    with Progress(10, "images", stream=stream) as bar:
        for _ in range(3):
            bar.update()
    assert stream.getvalue().count("\n") == 1 and "\r" not in stream.getvalue()
    assert "3/10 images" in stream.getvalue()


def test_unknown_total_and_disabled():
    stream = _Tty()
    with Progress(None, stream=stream, min_interval_s=0.0) as bar:
        bar.update(5)
    assert "5 frames" in stream.getvalue() and "[" not in stream.getvalue()
    quiet = _Tty()
    with Progress(3, stream=quiet, enabled=False) as bar:
        bar.update()
    assert quiet.getvalue() == ""
