"""Video recording that survives a crash, a ``kill -9`` or a full disk.

Container choice (measured with this OpenCV 5.0 / FFmpeg 8 build, 640x480, reading back with
``cv2.VideoCapture``; see the README design section):

- cv2 FFmpeg .mp4 (mp4v): does not open after a kill (no moov atom); exact on close.
- cv2 FFmpeg .mkv / .avi / .ts: the last 256-512 KB are lost (42 of 60, 75 of 100, 0 of 60 frames
  read back); exact on close.
- cv2 built-in MJPEG AVI (CAP_OPENCV_MJPEG): 59 of 60 read back, but the fps is rounded to an
  integer (29.97 -> 30, 12.5 -> 12) and files stop at 4 GB.
- this module (MJPEG in OpenDML AVI): every frame whose ``write()`` returned is read back
  (8 of 8 kills at random points, 4 of them across AVIX RIFFs), fps exact even after a kill;
  exact frame count and fps on close.

So ``.avi`` recordings are written by a small AVI muxer here: each frame is JPEG-encoded with
``cv2.imencode`` and written as one ``00dc`` chunk with one unbuffered ``write()``, so once
``write()`` returns the frame is in the kernel and survives the process being killed. The header's
sizes and counts stay zero until ``close()``; readers (FFmpeg, VLC, OpenCV) then scan the ``movi``
list, which is how a killed file plays up to the cut. On close the sizes, counts, the legacy
``idx1`` index and the OpenDML indexes are written, so the frame count and the fps (an exact
rational, e.g. 30000/1001) are right. Files grow past 1 GiB as OpenDML ``AVIX`` extension RIFFs,
like FFmpeg's AVI muxer. A full disk (ENOSPC) is detected: the partial chunk is cut off, the header
is finalised as far as possible and ``OutputError`` says where the recording stopped.

``.mp4`` and ``.mkv`` go through OpenCV's FFmpeg writer (mp4v / MJPG); they are fine for
``ofer-live video`` and the demo clip but are *not* crash-safe (``crash_safe`` is False).

Threading: ``VideoRecorder.write`` encodes in the caller's thread (~2 ms at 480p, ~10 ms at
1080p). The GUI drives it from its own thread through a bounded FIFO (``gui.workers.RecorderWorker``),
which places frames on the output timeline by their time stamps and repeats the previous frame for a
dropped one, so the recording keeps the true duration.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from ofer_live.errors import OutputError
from ofer_live.io.paths import check_output_path, open_output

logger = logging.getLogger(__name__)

DEFAULT_EXTENSION = ".avi"
CRASH_SAFE_EXTENSIONS: frozenset[str] = frozenset({".avi"})
_CV2_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "MJPG"}
SUPPORTED_EXTENSIONS: frozenset[str] = CRASH_SAFE_EXTENSIONS | frozenset(_CV2_FOURCC)
DEFAULT_QUALITY = 85
AVI_RIFF_LIMIT = 1 << 30  # start a new AVIX RIFF after ~1 GiB, as FFmpeg does
_MASTER_INDEX_ENTRIES = 256  # OpenDML super-index slots: 256 RIFFs of 1 GiB
_AVIF_HASINDEX = 0x10
_AVIF_ISINTERLEAVED = 0x100
_AVIIF_KEYFRAME = 0x10


def fps_fraction(fps: float) -> Fraction:
    """fps -> exact-looking rational (29.97 -> 2997/100, 30000/1001 stays, 30 -> 30/1)."""
    frac = Fraction(fps).limit_denominator(1001)
    if frac <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    return frac


class _AviMjpegWriter:
    """Minimal crash-safe MJPEG AVI (OpenDML) muxer. Frames are given as JPEG bytes."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int], riff_limit: int = AVI_RIFF_LIMIT):
        self.path = path
        self.width, self.height = size
        self.rate = fps_fraction(fps)
        self.riff_limit = int(riff_limit)
        self._file = open_output(path, "wb", what="video", buffering=0)
        self._pos = 0
        self._frames_total = 0
        self._first_riff_frames: int | None = None
        self._riffs: list[tuple[int, int, int]] = []  # finished (ix offset, ix size, frames)
        self._index: list[tuple[int, int]] = []  # current RIFF: (chunk offset rel. to 'movi', data size)
        self._idx1: list[tuple[int, int]] = []  # first RIFF, for the legacy idx1
        self._max_chunk = 0
        self.failed: OutputError | None = None
        try:
            self._write_header()
        except OSError as exc:
            self._fail(exc, 0)

    # -- low level --------------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = self._file.write(view)
            if n is None or n <= 0:
                raise OSError(errno.EIO, "write failed")
            view = view[n:]
            self._pos += n

    def _patch(self, offset: int, data: bytes) -> None:
        self._file.seek(offset)
        self._file.write(data)
        self._file.seek(self._pos)

    def _patch_u32(self, offset: int, value: int) -> None:
        self._patch(offset, struct.pack("<I", value & 0xFFFFFFFF))

    # -- structure --------------------------------------------------------------------------------
    def _write_header(self) -> None:
        w, h = self.width, self.height
        usec = round(1e6 / float(self.rate))
        b = bytearray()
        b += b"RIFF" + b"\0\0\0\0" + b"AVI "
        self._riff_size_at = 4
        b += b"LIST" + b"\0\0\0\0" + b"hdrl"
        hdrl_at = len(b) - 8
        b += b"avih" + struct.pack("<I", 56)
        b += struct.pack("<IIII", usec, 0, 0, _AVIF_HASINDEX | _AVIF_ISINTERLEAVED)
        self._avih_frames_at = len(b)
        b += struct.pack("<IIIIII", 0, 0, 1, 1 << 20, w, h) + b"\0" * 16
        b += b"LIST" + b"\0\0\0\0" + b"strl"
        strl_at = len(b) - 8
        b += b"strh" + struct.pack("<I", 56) + b"vids" + b"MJPG"
        b += struct.pack("<IHHIII", 0, 0, 0, 0, self.rate.denominator, self.rate.numerator)
        b += struct.pack("<I", 0)  # dwStart
        self._strh_length_at = len(b)
        b += struct.pack("<IIiI", 0, 1 << 20, -1, 0)  # dwLength, dwSuggestedBufferSize, dwQuality, dwSampleSize
        b += struct.pack("<hhhh", 0, 0, w, h)
        b += b"strf" + struct.pack("<I", 40)
        b += struct.pack("<IiiHH4sIiiII", 40, w, h, 1, 24, b"MJPG", w * h * 3, 0, 0, 0, 0)
        # OpenDML super index, written as JUNK until a second RIFF exists (as FFmpeg does).
        self._indx_at = len(b)
        indx_size = 24 + 16 * _MASTER_INDEX_ENTRIES
        b += b"JUNK" + struct.pack("<I", indx_size)
        b += struct.pack("<HBBI4s", 4, 0, 0, 0, b"00dc") + b"\0" * (indx_size - 12)
        struct.pack_into("<I", b, strl_at + 4, len(b) - strl_at - 8)
        b += b"LIST" + struct.pack("<I", 4 + 8 + 248) + b"odml" + b"dmlh" + struct.pack("<I", 248)
        self._dmlh_frames_at = len(b)
        b += b"\0" * 248
        struct.pack_into("<I", b, hdrl_at + 4, len(b) - hdrl_at - 8)
        b += b"LIST" + b"\0\0\0\0" + b"movi"
        self._riff_start = 0
        self._movi_size_at = len(b) - 8
        self._movi_at = len(b) - 4  # offsets in idx1 / ix00 are relative to the 'movi' fourcc
        self._write(bytes(b))

    def _start_avix(self) -> None:
        """Finish the current RIFF (ix00, idx1 for the first) and open an AVIX RIFF."""
        self._finish_riff(last=False)
        self._riff_start = self._pos
        self._riff_size_at = self._pos + 4
        self._movi_size_at = self._pos + 12
        self._movi_at = self._pos + 16
        self._write(b"RIFF\0\0\0\0AVIXLIST\0\0\0\0movi")

    def _write_ix00(self) -> None:
        n = len(self._index)
        ix_at = self._pos
        body = struct.pack("<HBBI4sQI", 2, 0, 1, n, b"00dc", self._movi_at, 0)
        entries = b"".join(struct.pack("<II", off + 8, size) for off, size in self._index)
        chunk = b"ix00" + struct.pack("<I", len(body) + len(entries)) + body + entries
        self._write(chunk)
        self._riffs.append((ix_at, len(chunk), n))

    def _finish_riff(self, last: bool) -> None:
        multi = bool(self._riffs) or not last
        if multi:
            self._write_ix00()
        self._patch_u32(self._movi_size_at, self._pos - self._movi_size_at - 4)
        if self._first_riff_frames is None:
            self._first_riff_frames = len(self._index)
            self._idx1 = list(self._index)
            self._write_idx1()
        self._patch_u32(self._riff_size_at, self._pos - self._riff_size_at - 4)
        self._index = []
        if multi:
            self._write_master_index()

    def _write_idx1(self) -> None:
        entries = b"".join(struct.pack("<4sIII", b"00dc", _AVIIF_KEYFRAME, off, size) for off, size in self._idx1)
        self._write(b"idx1" + struct.pack("<I", len(entries)) + entries)

    def _write_master_index(self) -> None:
        entries = b"".join(struct.pack("<QII", off, size, frames) for off, size, frames in self._riffs)
        self._patch(self._indx_at, b"indx")
        self._patch(self._indx_at + 8 + 4, struct.pack("<I", len(self._riffs)))
        self._patch(self._indx_at + 8 + 24, entries)

    # -- public -----------------------------------------------------------------------------------
    @property
    def frames(self) -> int:
        return self._frames_total

    def _snapshot(self) -> tuple:
        return (
            self._riff_start,
            self._riff_size_at,
            self._movi_size_at,
            self._movi_at,
            list(self._index),
            list(self._riffs),
            self._first_riff_frames,
            list(self._idx1),
        )

    def _restore(self, state: tuple) -> None:
        (
            self._riff_start,
            self._riff_size_at,
            self._movi_size_at,
            self._movi_at,
            self._index,
            self._riffs,
            self._first_riff_frames,
            self._idx1,
        ) = state

    def write_jpeg(self, jpeg: bytes) -> None:
        """Append one JPEG frame as a '00dc' chunk (one unbuffered write). Raises OutputError."""
        if self.failed is not None:
            raise self.failed
        size = len(jpeg)
        rotate = bool(self._index) and self._pos - self._riff_start + size + 8 > self.riff_limit
        if rotate and len(self._riffs) >= _MASTER_INDEX_ENTRIES - 1:
            raise OutputError(f"video {self.path} reached the AVI size limit; recording stopped")
        good, state = self._pos, self._snapshot()
        try:
            if rotate:
                self._start_avix()
            chunk_at = self._pos
            self._write(b"00dc" + struct.pack("<I", size) + jpeg + (b"\0" if size & 1 else b""))
        except OSError as exc:
            self._restore(state)  # a failed rotation leaves the previous RIFF as the current one
            self._fail(exc, good)
        self._index.append((chunk_at - self._movi_at, size))
        self._frames_total += 1
        self._max_chunk = max(self._max_chunk, size)

    def _fail(self, exc: OSError, good_pos: int) -> None:
        """Cut a partial chunk, finalise what fits, remember and raise a one-line OutputError."""
        reason = {errno.ENOSPC: "disk full", errno.EFBIG: "file too large", errno.EDQUOT: "disk quota exceeded"}.get(
            exc.errno, exc.strerror or str(exc)
        )
        if good_pos > 0:
            try:
                self._file.truncate(good_pos)
                self._pos = good_pos
                self._file.seek(good_pos)
                if self._riffs:
                    self._write_master_index()
                else:  # back to a plain AVI: the super index is JUNK again
                    self._patch(self._indx_at, b"JUNK")
                    self._patch(self._indx_at + 8 + 4, struct.pack("<I", 0))
                self._finalise_counts()
            except OSError as exc2:
                logger.debug("could not finalise %s after a write error: %s", self.path, exc2)
        self.failed = OutputError(
            f"cannot write video {self.path}: {reason}; the recording stopped after frame "
            f"{self._frames_total} and plays up to there"
        )
        self._close_file()
        raise self.failed

    def _finalise_counts(self) -> None:
        """Patch sizes and counts in place (no new data, so it also works on a full disk)."""
        self._patch_u32(self._movi_size_at, self._pos - self._movi_size_at - 4)
        self._patch_u32(self._riff_size_at, self._pos - self._riff_size_at - 4)
        self._patch_counts()

    def _patch_counts(self) -> None:
        first = self._first_riff_frames if self._first_riff_frames is not None else self._frames_total
        self._patch_u32(self._avih_frames_at, first)  # avih: frames in the first RIFF
        self._patch_u32(self._strh_length_at, self._frames_total)  # strh: stream length
        self._patch_u32(self._dmlh_frames_at, self._frames_total)  # OpenDML: all frames
        self._patch_u32(self._avih_frames_at - 12, self._max_chunk * int(np.ceil(float(self.rate))))

    def _close_file(self) -> None:
        if not self._file.closed:
            self._file.close()

    def close(self) -> None:
        """Write the indexes and final counts, fsync and close (idempotent)."""
        if self._file.closed:
            return
        if self.failed is None:
            try:
                self._finish_riff(last=True)
                self._patch_counts()
                os.fsync(self._file.fileno())
            except OSError as exc:
                self._close_file()
                raise OutputError(f"cannot finish video {self.path}: {exc.strerror or exc}") from None
        self._close_file()


class _Cv2Writer:
    """OpenCV's FFmpeg writer for .mp4/.mkv (not crash-safe)."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]):
        # Create/truncate the file first, so permission problems give a clear message.
        open_output(path, "wb", what="video").close()
        fourcc = cv2.VideoWriter_fourcc(*_CV2_FOURCC[path.suffix.lower()])
        self._writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, fourcc, float(fps), tuple(size))
        if not self._writer.isOpened():
            raise OutputError(f"cannot write video {path}: OpenCV's FFmpeg writer could not open it")
        self.frames = 0

    def write_frame(self, frame: np.ndarray) -> None:
        """frame: (h, w, 3) BGR uint8 at the writer size."""
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        self._writer.release()


class VideoRecorder:
    """Write BGR frames to a video file at a fixed fps and size.

    path: ``.avi`` (default; crash-safe MJPEG, see the module docstring), ``.mp4``/``.mkv``
    (OpenCV FFmpeg writer, not crash-safe). size: (width, height); frames of another size are
    resized (INTER_AREA when shrinking), gray frames are converted to BGR.
    quality: JPEG quality 1..100 for ``.avi``.
    Raises OutputError up front for an unwritable path, a missing folder or an unknown extension.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float,
        size: tuple[int, int],
        *,
        quality: int = DEFAULT_QUALITY,
        riff_limit: int = AVI_RIFF_LIMIT,
    ):
        self.path = check_output_path(path, "video")
        ext = self.path.suffix.lower()
        if ext not in SUPPORTED_EXTENSIONS:
            raise OutputError(
                f"unsupported video extension '{self.path.suffix}' for {self.path} "
                f"(use {', '.join(sorted(SUPPORTED_EXTENSIONS))})"
            )
        if not fps > 0:
            raise OutputError(f"cannot record {self.path} at fps={fps}: fps must be > 0")
        w, h = int(size[0]), int(size[1])
        if w < 1 or h < 1:
            raise OutputError(f"cannot record {self.path}: frame size {w}x{h} is empty")
        self.fps = float(fps)
        self.size = (w, h)
        self.quality = int(np.clip(quality, 1, 100))
        self.crash_safe = ext in CRASH_SAFE_EXTENSIONS
        self._avi: _AviMjpegWriter | None = None
        self._cv2: _Cv2Writer | None = None
        self._last_jpeg: bytes | None = None
        self._last_frame: np.ndarray | None = None
        if self.crash_safe:
            self._avi = _AviMjpegWriter(self.path, self.fps, self.size, riff_limit=riff_limit)
        else:
            self._cv2 = _Cv2Writer(self.path, self.fps, self.size)
            logger.info("%s: written by OpenCV's FFmpeg writer, not crash-safe (use .avi for that)", self.path)
        self._closed = False

    @property
    def frames_written(self) -> int:
        return self._avi.frames if self._avi is not None else self._cv2.frames  # type: ignore[union-attr]

    @property
    def duration_s(self) -> float:
        return self.frames_written / self.fps

    def _prepare(self, frame: np.ndarray) -> np.ndarray:
        """frame: (H, W, 3) BGR, (H, W) gray or (H, W, 4) BGRA uint8 -> (h, w, 3) BGR uint8 at the recorder size."""
        if frame.dtype != np.uint8:
            raise ValueError(f"frames must be uint8, got {frame.dtype}")
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        elif frame.ndim == 3 and frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
        elif frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must be (H, W, 3) BGR, got shape {frame.shape}")
        h, w = frame.shape[:2]
        if (w, h) != self.size:
            shrink = w > self.size[0] or h > self.size[1]
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return frame

    def write(self, frame_bgr: np.ndarray) -> None:
        """frame_bgr: (H, W, 3) BGR uint8 -> appended as the next frame. Raises OutputError (e.g. disk full)."""
        if self._closed:
            raise OutputError(f"video {self.path} is already closed")
        frame = self._prepare(frame_bgr)
        if self._avi is not None:
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            if not ok:
                raise OutputError(f"cannot encode a frame for {self.path}")
            jpeg = buf.tobytes()
            self._avi.write_jpeg(jpeg)
            self._last_jpeg = jpeg
        else:
            self._cv2.write_frame(frame)  # type: ignore[union-attr]
            self._last_frame = frame

    def repeat_last(self, count: int = 1) -> None:
        """Write the previous frame ``count`` more times (keeps the duration when frames were dropped).

        For .avi the stored JPEG is reused, so a repeat costs no encoding. No-op before the first frame.
        """
        for _ in range(max(0, count)):
            if self._avi is not None and self._last_jpeg is not None:
                self._avi.write_jpeg(self._last_jpeg)
            elif self._cv2 is not None and self._last_frame is not None:
                self._cv2.write_frame(self._last_frame)

    def close(self) -> None:
        """Finish the file (indexes, counts, fsync). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._avi is not None:
            self._avi.close()
        elif self._cv2 is not None:
            self._cv2.close()
        logger.debug("closed %s: %d frames at %.3f fps", self.path, self.frames_written, self.fps)

    def __enter__(self) -> VideoRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
