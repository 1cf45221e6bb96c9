"""read_image on the awkward cases: RGBA, 16-bit, gray, 1x1, 10000x10000, unreadable files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from ofer_live.errors import InputError
from ofer_live.io.images import (
    ALPHA_BACKGROUND_BGR,
    MAX_SIDE,
    iter_image_paths,
    load_image,
    read_image,
    to_bgr_uint8,
)


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _write_big_gray_png(path: Path, side: int) -> None:
    """A side x side 8-bit gray PNG (top half white), built directly: much faster than cv2.imwrite."""
    comp = zlib.compressobj(1)
    white, black = b"\0" + b"\xff" * side, b"\0" + b"\0" * side
    parts = [comp.compress(white if y < side // 2 else black) for y in range(side)]
    idat = b"".join(parts) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
    )


def test_rgba_png_is_composited_on_neutral_gray(tmp_path):
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[:, :10] = (255, 0, 0, 255)  # opaque blue (BGRA)
    rgba[:, 10:20] = (255, 0, 0, 0)  # fully transparent
    rgba[:, 20:] = (255, 255, 255, 128)  # half-transparent white
    path = tmp_path / "rgba.png"
    cv2.imwrite(str(path), rgba)
    img = read_image(path)
    assert img.shape == (20, 30, 3) and img.dtype == np.uint8
    assert img[0, 0].tolist() == [255, 0, 0]
    assert img[0, 15].tolist() == list(ALPHA_BACKGROUND_BGR)
    assert abs(int(img[0, 25, 0]) - (255 * 128 + 128 * 127) // 255) <= 1


def test_16_bit_png_is_scaled_to_8_bit(tmp_path):
    img16 = np.zeros((4, 4, 3), np.uint16)
    img16[0, 0] = (65535, 32768, 0)
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), img16)
    img = read_image(path)
    assert img.dtype == np.uint8
    assert img[0, 0].tolist() == [255, 128, 0]


def test_gray_png_becomes_bgr(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8)
    path = tmp_path / "gray.png"
    cv2.imwrite(str(path), gray)
    img = read_image(path)
    assert img.shape == (8, 8, 3)
    assert np.array_equal(img[..., 0], gray) and np.array_equal(img[..., 2], gray)


def test_one_pixel_image_is_fine(tmp_path):
    path = tmp_path / "dot.png"
    cv2.imwrite(str(path), np.full((1, 1, 3), 9, np.uint8))
    loaded = load_image(path)
    assert loaded.image.shape == (1, 1, 3) and loaded.scale == 1.0 and loaded.original_size == (1, 1)


def test_10000_square_image_is_shrunk_with_known_scale(tmp_path):
    path = tmp_path / "huge.png"
    _write_big_gray_png(path, 10000)
    loaded = load_image(path)
    assert loaded.image.shape == (MAX_SIDE, MAX_SIDE, 3)
    assert loaded.original_size == (10000, 10000)
    assert loaded.scale == pytest.approx(MAX_SIDE / 10000)
    # Content maps back: the white/black edge at y = 5000 in the original is at 5000 * scale.
    edge = int(np.argmax(loaded.image[:, 0, 0] < 128))
    assert abs(edge / loaded.scale - 5000) < 3


def test_to_bgr_uint8_other_types():
    assert to_bgr_uint8(np.ones((2, 2), np.float32)).max() == 255
    assert to_bgr_uint8(np.zeros((2, 2, 2), np.uint8)).shape == (2, 2, 3)  # gray + alpha
    assert to_bgr_uint8(np.full((2, 2), 2**31 - 1, np.int32)).max() == 255


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: None, "image not found"),
        (lambda p: p.write_bytes(b""), "image file is empty"),
        (lambda p: p.write_text("this is not an image"), "not a readable image"),
        (lambda p: p.mkdir(), "is a folder"),
    ],
    ids=["missing", "empty", "text", "folder"],
)
def test_unreadable_images_raise_one_line_input_errors(tmp_path, make, message):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(InputError, match=message) as err:
        read_image(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_truncated_png(tmp_path, astronaut_bgr):
    path = tmp_path / "cut.png"
    ok, buf = cv2.imencode(".png", astronaut_bgr)
    path.write_bytes(buf.tobytes()[:200])
    with pytest.raises(InputError, match="not a readable image"):
        read_image(path)


def test_iter_image_paths(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for rel in ["b.png", "a/z.JPG", "a/deep/c.webp", "notes.txt", ".hidden/x.png", "a/.y.png"]:
        (tmp_path / rel).write_bytes(b"x")
    listed = iter_image_paths([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in listed] == ["a/deep/c.webp", "a/z.JPG", "b.png"]
    explicit = iter_image_paths([tmp_path / "notes.txt", tmp_path / "missing.png", tmp_path / "b.png", tmp_path])
    names = [p.name for p in explicit]
    assert names[:3] == ["notes.txt", "missing.png", "b.png"]  # explicit files kept as given
    assert names.count("b.png") == 1  # duplicates removed
    assert iter_image_paths([]) == []
