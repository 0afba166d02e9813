"""Read image files into ``[H, W, C]`` floats in [0, 1], with no dependency beyond numpy.

Pillow reads every format when it is installed, and is then used.  Without
it, the formats a folder of small labelled images is usually kept in are read
here: PNG (8 or 16 bits per channel, grey, grey+alpha, RGB, RGBA or palette,
not interlaced; zlib from the standard library) and binary PGM/PPM.  Other
formats (JPEG, BMP, an interlaced PNG) say that they need Pillow.  The PNG
reader undoes the row filters in Python, which suits images of a few hundred
pixels a side, not photographs: install Pillow for those.
"""

from __future__ import annotations

import importlib.util
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from benchharness.api import BenchError

if TYPE_CHECKING:
    import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Channels per PNG colour type: grey, RGB, palette, grey+alpha, RGBA.
PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
#: Suffixes read without Pillow.
BUILT_IN_SUFFIXES = (".png", ".pgm", ".ppm")
PILLOW_HINT = "pip install pillow"


def have_pillow() -> bool:
    """Whether Pillow is installed (checked without importing it)."""
    return importlib.util.find_spec("PIL") is not None


def image_suffixes() -> frozenset[str]:
    """File suffixes an image folder takes: the built-in ones, and every one Pillow reads when it is installed.

    Anything else in a class folder (``notes.txt``, ``labels.csv``) is not an image and is left alone.
    """
    if not have_pillow():
        return frozenset(BUILT_IN_SUFFIXES)
    from PIL import Image

    return frozenset(BUILT_IN_SUFFIXES) | {s.lower() for s, fmt in Image.registered_extensions().items()
                                           if fmt in Image.OPEN}  # fmt: skip


def read_image(path: Path) -> np.ndarray:
    """The image at ``path`` as float32 ``[H, W, C]`` in [0, 1], C being 1 (grey) or 3 (colour); alpha is dropped.

    Raises :class:`BenchError` naming the file when it cannot be read.
    """
    import numpy as np

    if have_pillow():
        pixels, peak = _read_with_pillow(path)
    else:
        suffix = path.suffix.lower()
        if suffix not in BUILT_IN_SUFFIXES:
            raise BenchError(f"{path}: reading {suffix or 'this'} files needs Pillow ({PILLOW_HINT})")
        data = _read_bytes(path)
        pixels, peak = _decode_png(path, data) if suffix == ".png" else _decode_netpbm(path, data)
    if pixels.shape[2] in (2, 4):  # grey+alpha, RGBA: the alpha channel does not feed a model
        pixels = pixels[:, :, : pixels.shape[2] - 1]
    return (pixels.astype(np.float32) / np.float32(peak)).clip(0.0, 1.0)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BenchError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _read_with_pillow(path: Path) -> tuple[np.ndarray, float]:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            mode = image.mode
            if mode in ("I;16", "I;16B", "I"):
                return np.asarray(image, dtype=np.float64)[:, :, None], 65535.0
            converted = image.convert("L" if mode in ("1", "L", "LA", "P") and _grey_palette(image) else "RGB")
            pixels = np.asarray(converted)
    except (OSError, UnidentifiedImageError) as exc:
        raise BenchError(f"{path}: not an image Pillow can read: {exc}") from None
    return (pixels[:, :, None] if pixels.ndim == 2 else pixels), 255.0


def _grey_palette(image: object) -> bool:
    """Whether a palette image's colours are all grey (so it reads as one channel)."""
    if getattr(image, "mode", "") != "P":
        return True
    palette = image.getpalette() or []  # type: ignore[attr-defined]
    return all(palette[i] == palette[i + 1] == palette[i + 2] for i in range(0, len(palette) - 2, 3))


def _decode_png(path: Path, data: bytes) -> tuple[np.ndarray, float]:
    """Pixels ``[H, W, C]`` (integers) and their peak value, from a PNG file's bytes."""
    import numpy as np

    if not data.startswith(PNG_SIGNATURE):
        raise BenchError(f"{path}: not a PNG file")
    pos, header, palette, idat = len(PNG_SIGNATURE), None, None, []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"PLTE":
            palette = np.frombuffer(chunk, dtype=np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
    if header is None or not idat:
        raise BenchError(f"{path}: a PNG file without its header or image data")
    width, height, depth, colour, _, _, interlace = header
    if colour not in PNG_CHANNELS or depth not in (8, 16) or interlace:
        what = f"{depth}-bit" if depth not in (8, 16) else "interlaced" if interlace else f"colour type {colour}"
        raise BenchError(f"{path}: {what} PNG images need Pillow ({PILLOW_HINT})")
    channels = PNG_CHANNELS[colour]
    pixel_bytes = channels * depth // 8
    stride = width * pixel_bytes
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as exc:
        raise BenchError(f"{path}: corrupt PNG image data: {exc}") from None
    if len(raw) != height * (stride + 1):
        raise BenchError(f"{path}: PNG image data of {len(raw)} bytes, expected {height * (stride + 1)}")
    rows = _unfilter(path, raw, height, stride, pixel_bytes)
    dtype = np.dtype(">u2") if depth == 16 else np.dtype(np.uint8)
    pixels = np.frombuffer(rows, dtype=dtype).reshape(height, width, channels)
    if colour == 3:
        if palette is None:
            raise BenchError(f"{path}: a palette PNG image without its palette")
        index = pixels[:, :, 0]
        if index.max() >= len(palette):
            raise BenchError(f"{path}: a palette index beyond its {len(palette)} colours")
        colours = palette[index]
        grey = bool((palette[:, 0] == palette[:, 1]).all() and (palette[:, 1] == palette[:, 2]).all())
        pixels = colours[:, :, :1] if grey else colours
    return pixels, float(2**depth - 1)


def _unfilter(path: Path, raw: bytes, height: int, stride: int, bpp: int) -> bytes:
    """Undo PNG's per-row filters (none, sub, up, average, Paeth)."""
    out = bytearray(height * stride)
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        row = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
        elif kind == 2:
            for i in range(stride):
                row[i] = (row[i] + previous[i]) & 0xFF
        elif kind == 3:
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = row[i - bpp] if i >= bpp else 0
                b = previous[i]
                c = previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        elif kind != 0:
            raise BenchError(f"{path}: unknown PNG row filter {kind}")
        out[y * stride : (y + 1) * stride] = row
        previous = row
    return bytes(out)


def _decode_netpbm(path: Path, data: bytes) -> tuple[np.ndarray, float]:
    """Pixels and peak of a binary PGM (``P5``) or PPM (``P6``) file."""
    import numpy as np

    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4:
        while pos < len(data) and data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            while pos < len(data) and data[pos : pos + 1] not in (b"\n", b"\r"):
                pos += 1
            continue
        start = pos
        while pos < len(data) and not data[pos : pos + 1].isspace():
            pos += 1
        if start == pos:
            raise BenchError(f"{path}: a truncated PGM/PPM header")
        fields.append(data[start:pos])
    magic = fields[0]
    if magic not in (b"P5", b"P6") or not all(f.isdigit() for f in fields[1:]):
        raise BenchError(f"{path}: not a binary PGM (P5) or PPM (P6) file")
    width, height, peak = (int(f) for f in fields[1:])
    if not 0 < peak < 65536:
        raise BenchError(f"{path}: PGM/PPM maximum value {peak} is not 1 to 65535")
    channels = 1 if magic == b"P5" else 3
    dtype = np.dtype(np.uint8) if peak < 256 else np.dtype(">u2")
    body = data[pos + 1 :]
    count = width * height * channels
    if len(body) < count * dtype.itemsize:
        raise BenchError(f"{path}: PGM/PPM pixel data is shorter than {width}x{height}")
    pixels = np.frombuffer(body, dtype=dtype, count=count).reshape(height, width, channels)
    return pixels, float(peak)


__all__ = ["BUILT_IN_SUFFIXES", "have_pillow", "read_image"]
