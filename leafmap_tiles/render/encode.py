"""Image encoding for tiles.

PNG is written directly with zlib (level 1 by default: tiles are served on loopback or
through the Jupyter proxy, where encode time costs more than bytes).  Single-band
colormapped tiles are written as paletted PNG (colour type 3, 1 byte per pixel with a
PLTE/tRNS table) when a palette index is free for the transparent pixels; everything
else as RGBA (colour type 6) or grey+alpha (colour type 4).  The PNG layout follows
the W3C PNG specification (https://www.w3.org/TR/png/).  JPEG and WebP go through
rio-tiler's GDAL-based ``render``.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ZLEVEL = 1


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(pixels: np.ndarray, colour_type: int, extra_chunks: bytes = b"", up_filter: bool = True) -> bytes:
    """``pixels`` is (H, W) or (H, W, C) uint8 in PNG channel order."""
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1)
    if up_filter and h > 1:
        filtered = np.empty_like(rows)
        filtered[0] = rows[0]
        np.subtract(rows[1:], rows[:-1], out=filtered[1:])  # uint8 wraps modulo 256 as PNG requires
        ftype = np.full((h, 1), 2, dtype=np.uint8)
        ftype[0] = 0
    else:
        filtered = rows
        ftype = np.zeros((h, 1), dtype=np.uint8)
    raw = np.hstack([ftype, filtered]).tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", ihdr)
        + extra_chunks
        + _chunk(b"IDAT", zlib.compress(raw, ZLEVEL))
        + _chunk(b"IEND", b"")
    )


def png_rgba(rgba: np.ndarray) -> bytes:
    """Encode (H, W, 4) uint8 RGBA."""
    return _png(np.ascontiguousarray(rgba, dtype=np.uint8), 6)


def png_grey_alpha(grey: np.ndarray, alpha: np.ndarray) -> bytes:
    """Encode a (H, W) uint8 grey image with a (H, W) uint8 alpha."""
    return _png(np.dstack([grey, alpha]).astype(np.uint8, copy=False), 4)


def png_lut(index: np.ndarray, valid: np.ndarray, lut: np.ndarray) -> bytes:
    """Encode (H, W) uint8 ``index`` through a (256, 4) RGBA ``lut``; pixels where
    ``valid`` is False are transparent.  Paletted when a palette slot is free."""
    counts = np.bincount(index[valid], minlength=256) if valid.any() else np.zeros(256, dtype=np.int64)
    if valid.all():
        free = None
    else:
        unused = np.flatnonzero(counts == 0)
        free = int(unused[0]) if unused.size else -1
    if free == -1:  # every palette entry used and some pixels transparent
        rgba = lut[index]
        rgba[~valid] = 0
        return png_rgba(rgba)
    palette = np.array(lut, dtype=np.uint8, copy=True)
    idx = index
    if free is not None:
        palette[free] = (0, 0, 0, 0)
        idx = np.where(valid, index, np.uint8(free)).astype(np.uint8)
    chunks = _chunk(b"PLTE", palette[:, :3].tobytes())
    if (palette[:, 3] != 255).any():
        chunks += _chunk(b"tRNS", palette[:, 3].tobytes())
    return _png(np.ascontiguousarray(idx), 3, chunks, up_filter=False)


def png_palette(index: np.ndarray, palette: np.ndarray) -> bytes:
    """Encode (H, W) uint8 ``index`` as a paletted PNG with the (256, 4) RGBA
    ``palette`` as it is (entries with alpha < 255 go into ``tRNS``).  The same bytes as
    :func:`png_lut` with ``valid = index != 0`` when ``palette[0]`` is transparent
    (Terracotta-style tiles, where 0 is nodata), without its search for a free entry."""
    palette = np.ascontiguousarray(palette, dtype=np.uint8)
    chunks = _chunk(b"PLTE", palette[:, :3].tobytes())
    if (palette[:, 3] != 255).any():
        chunks += _chunk(b"tRNS", palette[:, 3].tobytes())
    return _png(np.ascontiguousarray(index, dtype=np.uint8), 3, chunks, up_filter=False)


_EMPTY: dict[int, bytes] = {}


def empty_png(size: int) -> bytes:
    """A fully transparent ``size`` x ``size`` PNG (tile outside the data)."""
    if size not in _EMPTY:
        _EMPTY[size] = png_rgba(np.zeros((size, size, 4), dtype=np.uint8))
    return _EMPTY[size]


def encode_gdal(bands: np.ndarray, alpha: np.ndarray | None, fmt: str) -> bytes:
    """JPEG/WebP through rio-tiler (GDAL). ``bands`` is (C, H, W) uint8."""
    from rio_tiler.utils import render

    if fmt == "JPEG":
        return render(bands, img_format="JPEG")
    return render(bands, alpha, img_format=fmt)


MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
