"""Terracotta-style rendering: band 1 of a raster read as Terracotta reads it,
stretched and coloured as Terracotta's images are (no HTTP here).

What Terracotta 0.10 does, and so what this module does:

- A dataset is band 1 of one raster file.  A tile is read through a warped VRT in
  Web Mercator (bilinear reprojection, 2 pixels of padding), at the raster's native
  resolution, and resampled to the output size by averaging (nearest when
  over-zoomed, and for categorical data read with ``preserve_values``).  Invalid
  pixels are the warper's alpha (outside the footprint, source nodata) plus
  pixels equal to the nodata value.  Reads go through rio-tiler (the caller's
  per-thread :class:`~leafmap_tiles.render.engine.RenderEngine` readers).
- A tile whose data covers less than 1 % of it, or that is outside the dataset's
  bounds, is a fully transparent image (:class:`OutsideData`).
- Stretch: values are mapped linearly from ``[lo, hi]`` to ``1..255`` (clipped,
  rounded to nearest); ``0`` is nodata.  A single-band image is a paletted PNG:
  palette entry 0 is transparent, entries 1..255 are the colormap's 255 colours
  (or grey levels 1..255 without a colormap).  An explicit colour map labels the
  listed values ``1..n`` (exact colours, no blending; other values transparent).
  An RGB image is transparent where all three channels are 0, i.e. where every band
  is nodata; where any band has data, the others keep their values (Terracotta
  zeroes a channel that is nodata there, see :func:`rgb_channels`).
- Colormaps are matplotlib's, sampled at 255 points and truncated to uint8 as
  Terracotta samples them; names are lower case (``rdylgn``, ``viridis_r``).

Deviations from Terracotta (see docs/terracotta.md): percentile ``pN`` is the N-th
percentile (Terracotta returns the (N+1)-th), ``p0``/``p100`` are the minimum and
maximum, and ``/compute`` expressions are evaluated in float64 (Terracotta uses the
file's dtype, so ``v1 - v2`` wraps around on unsigned integers).
"""

from __future__ import annotations

import math
import threading
import warnings
from functools import lru_cache

import numpy as np

from leafmap_tiles.errors import StyleError, TileOutsideBoundsError
from leafmap_tiles.gdal_errors import is_outside
from leafmap_tiles.render import encode

WEB_MERCATOR_LAT = 85.0511287798066
COVER_RATIO_MIN = 0.01
PADDING = 2


#: The requested tile has no (or almost no) data: answer a transparent image.
OutsideData = TileOutsideBoundsError


# --------------------------------------------------------------------------- tiles


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Web Mercator (EPSG:3857) bounds ``(xmin, ymin, xmax, ymax)`` of XYZ tile ``z/x/y``."""
    half = 20037508.342789244
    size = 2 * half / 2**z
    return (-half + x * size, half - (y + 1) * size, -half + (x + 1) * size, half - y * size)


def _tile_index(lon: float, lat: float, z: int) -> tuple[int, int]:
    lat = max(-WEB_MERCATOR_LAT, min(WEB_MERCATOR_LAT, lat))
    n = 2**z
    fx = (lon + 180.0) / 360.0
    s = math.sin(math.radians(lat))
    fy = 0.5 - 0.25 * math.log((1.0 + s) / (1.0 - s)) / math.pi
    x = min(n - 1, max(0, int(math.floor(fx * n))))
    y = min(n - 1, max(0, int(math.floor(fy * n))))
    return x, y


def tile_exists(wgs_bounds, z: int, x: int, y: int) -> bool:
    """Whether XYZ tile ``z/x/y`` intersects ``(west, south, east, north)`` degrees
    (bounds that cross the antimeridian, west > east, are handled)."""
    if z > 60:
        return False
    west, south, east, north = (float(v) for v in wgs_bounds)
    x0, y0 = _tile_index(west, north, z)
    x1, y1 = _tile_index(east, south, z)
    if not (y0 <= y <= y1):
        return False
    if west <= east:
        return x0 <= x <= x1
    return x >= x0 or x <= x1


_MERC_BOUNDS: dict[str, tuple[float, float, float, float]] = {}
_MERC_LOCK = threading.Lock()
_MERC_MAX = 4096


def _mercator_bounds(path: str, src) -> tuple[float, float, float, float]:
    cached = _MERC_BOUNDS.get(path)
    if cached is None:
        from rasterio.warp import transform_bounds

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            b = transform_bounds(src.crs, "EPSG:3857", *src.bounds)
        half = 20037508.342789244
        cached = (max(b[0], -half), max(b[1], -half), min(b[2], half), min(b[3], half))
        with _MERC_LOCK:
            if len(_MERC_BOUNDS) >= _MERC_MAX:  # bounded: drop the oldest entry
                _MERC_BOUNDS.pop(next(iter(_MERC_BOUNDS)))
            _MERC_BOUNDS[path] = cached
    return cached


def _has_alpha_band(src) -> bool:
    from rasterio.enums import ColorInterp, MaskFlags

    return any(MaskFlags.alpha in flags for flags in src.mask_flag_enums) or ColorInterp.alpha in src.colorinterp


def read_band1(
    engine,
    path: str,
    bounds: tuple[float, float, float, float] | None,
    shape: tuple[int, int] = (256, 256),
    *,
    preserve_values: bool = False,
    resampling: str = "average",
    reprojection: str = "bilinear",
) -> np.ma.MaskedArray:
    """Band 1 of ``path`` over Web Mercator ``bounds`` (None: the whole raster) as a
    ``shape`` (rows, cols) masked array in the file's dtype, read with ``resampling``
    (from the raster or its overview to the tile's resolution) and ``reprojection``
    (the warp to Web Mercator), as Terracotta's ``RESAMPLING_METHOD`` and
    ``REPROJECTION_METHOD`` (defaults ``average``, ``bilinear``); both ``nearest`` with
    ``preserve_values`` (categories).

    Raises :class:`OutsideData` when the raster covers less than 1 % of ``bounds``.
    """
    import time

    from rio_tiler.constants import WEB_MERCATOR_CRS

    rdr = engine.reader(path)  # raises the specific error when it cannot be opened
    t0 = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # every GDAL call on the dataset, so a truncated file is always classified
            src = rdr.dataset
            merc = _mercator_bounds(path, src)
            if bounds is None:
                bounds = merc
            area = (bounds[2] - bounds[0]) * (bounds[3] - bounds[1])
            data_area = max(0.0, min(bounds[2], merc[2]) - max(bounds[0], merc[0])) * max(
                0.0, min(bounds[3], merc[3]) - max(bounds[1], merc[1])
            )
            full_area = (merc[2] - merc[0]) * (merc[3] - merc[1])
            if area <= 0 or full_area / area < COVER_RATIO_MIN or data_area <= 0:
                raise OutsideData("dataset covers less than 1% of the tile")
            has_alpha = _has_alpha_band(src)
            alpha_index = src.count if has_alpha else src.count + 1
            nodata = src.nodata
            if preserve_values:
                method, reproject = "nearest", "nearest"
            else:  # None: average, the far path's reduction over every pixel
                method, reproject = (None if resampling == "average" else resampling), reprojection
            far = _far_read(engine, path, src, bounds, shape, method, has_alpha)
            # nearest everywhere and a nodata value: the warped VRT keeps the file's nodata
            # (same pixels: each one is a source pixel, nodata or not), so that GDAL reads
            # the overview of the tile's resolution; the VRT with an added alpha band and
            # no nodata that the other methods need (Terracotta's rule: nodata pixels are
            # values to them) makes GDAL read full resolution: 266 vs 14 ms per z9-z10 tile
            # of the 10980 px s2 file of benchmarks/tiles.py
            keep_nodata = (method == "nearest" and reproject == "nearest" and not has_alpha
                           and nodata is not None and not math.isnan(nodata))
            if far is None:  # near the native zoom: rio-tiler's read
                img = rdr.part(
                    bounds,
                    # rio-tiler's own CRS object, not "EPSG:3857": each comparison and
                    # call with a string parses it again (and a memoised default
                    # transform, see reader.memoize_default_transforms, needs one object)
                    dst_crs=WEB_MERCATOR_CRS,
                    bounds_crs=WEB_MERCATOR_CRS,
                    height=int(shape[0]),
                    width=int(shape[1]),
                    indexes=(1,) if keep_nodata else (1, alpha_index),
                    resampling_method=method or "average",
                    reproject_method=reproject,
                    padding=PADDING,
                    vrt_options={} if keep_nodata else {"add_alpha": not has_alpha, "nodata": None},
                )
        except OutsideData:
            raise
        except Exception as exc:
            if is_outside(exc, domain=False):  # rio-tiler's TileOutsideBounds/PointOutsideBounds
                raise OutsideData(str(exc)) from None
            raise engine.read_failure(path, exc, t0) from None
    engine.read_succeeded(path)
    if far is not None:
        return far
    raw = np.asarray(img.array.data)
    if keep_nodata:  # outside the raster the warp wrote nodata too
        return np.ma.masked_array(raw[0], mask=raw[0] == nodata)
    data, alpha = raw[0], raw[1]
    mask = alpha == 0
    if nodata is not None and not math.isnan(nodata):
        mask |= data == nodata
    return np.ma.masked_array(data, mask=mask)


def _far_read(engine, path, src, bounds, shape, method, has_alpha) -> np.ma.MaskedArray | None:
    """Band 1 over ``bounds`` by :mod:`~leafmap_tiles.render.decimated` where the
    caller's rio-tiler read would be slow (far below the raster's native zoom, see
    :func:`~leafmap_tiles.render.decimated.use_decimated`; with ``average``, from 2
    raster pixels per tile pixel on); None nearer, where that read is kept."""
    from rasterio.vrt import WarpedVRT

    from leafmap_tiles.render import decimated

    if isinstance(src, WarpedVRT) or bounds is None:
        return None
    # GDAL failures are classified by the caller (read_band1)
    from leafmap_tiles.render.engine import file_signature

    key = (path, file_signature(path))
    dec = decimated.decimation(src, bounds, int(shape[1]), engine.resolution(key, src) or None)
    nodata = src.nodata
    alpha_index = src.count if (has_alpha and nodata is None) else None
    if method is None:
        # average: GDAL reduces every pixel of the warped VRT (and of a paletted band
        # colour by colour), slow as soon as the tile is coarser than the raster
        far = dec >= decimated.MIN_DECIMATION_AGGREGATE
    else:
        z = max(0, round(math.log2(2 * 20037508.342789244 / (bounds[2] - bounds[0]))))
        far = decimated.use_decimated(engine.rio_tiler_cost(key, src, bounds, z, int(shape[1]), src.overviews(1),
                                                             nodata is not None), method, dec)
    if not far:
        engine.build_ahead(path, src, [1], nodata, alpha_index, method or "average")
        return None
    arr = decimated.read_tile(
        src, bounds, int(shape[1]), int(shape[0]), [1], nodata=nodata, alpha_index=alpha_index,
        resampling=method or "average", reproject=method or "bilinear", dec=dec,
        levels=engine.levels, level_key=key,
    )
    if arr is None or np.ma.getmaskarray(arr).all():
        raise OutsideData("dataset does not cover the tile")
    engine.far_reads += 1
    return np.ma.masked_array(arr.data[0], mask=np.ma.getmaskarray(arr)[0])


# --------------------------------------------------------------------------- stretch


def stretch_scale(value, default: float, value_range, percentiles) -> float:
    """One end of a stretch range: a number as it is, ``None`` gives ``default``,
    ``"pN"`` the N-th percentile of the metadata (``p0`` the minimum and ``p100``
    the maximum of ``value_range``)."""
    if value is None:
        return float(default)
    if isinstance(value, str):
        n = int(value[1:])
        if not 0 <= n <= 100:
            raise StyleError(f"Invalid percentile, out of range: {value} (use p0 to p100)")
        if n == 0:
            return float(value_range[0])
        if n == 100:
            return float(value_range[1])
        return float(percentiles[n - 1])
    return float(value)


def stretch_range(pair, metadata) -> tuple[float, float]:
    """``(lo, hi)`` from a ``[min, max]`` override (items number, None or "pN") and
    a dataset's metadata (``range``, ``percentiles``)."""
    rng = metadata["range"]
    lo, hi = pair if pair is not None else (None, None)
    pct = metadata.get("percentiles") or []
    return (stretch_scale(lo, rng[0], rng, pct), stretch_scale(hi, rng[1], rng, pct))


def to_index(data, lo: float, hi: float) -> np.ndarray:
    """Stretch ``data`` from ``[lo, hi]`` to ``1..255`` (clipped, rounded); masked,
    NaN and infinite values give 0.  ``lo == hi`` maps values at ``lo`` to 1.

    8- and 16-bit integer data go through a table of every value of their dtype
    (:func:`_index_table`, the same arithmetic on each value, computed once per
    stretch), float data through the arithmetic itself."""
    values = np.ma.getdata(data)
    if isinstance(values, np.ndarray) and values.dtype in _TABLE_DTYPES and values.size > _TABLE_MIN_PIXELS:
        out = _index_table(values.dtype.str, float(lo), float(hi))[_table_offset(values)]
        out[np.ma.getmaskarray(data)] = 0
        return out
    return _to_index(data, lo, hi)


_TABLE_DTYPES = (np.dtype("uint8"), np.dtype("int8"), np.dtype("uint16"), np.dtype("int16"))
_TABLE_MIN_PIXELS = 4096  # below, building a 65,536-entry table costs more than it saves


def _table_offset(values: np.ndarray) -> np.ndarray:
    """Indexes into :func:`_index_table` of ``values`` (signed dtypes are shifted by
    their minimum, so that the table starts at the dtype's smallest value)."""
    if values.dtype.kind == "i":
        return values.astype(np.int64) - int(np.iinfo(values.dtype).min)
    return values


@lru_cache(maxsize=64)
def _index_table(dtype: str, lo: float, hi: float) -> np.ndarray:
    """:func:`to_index` of every value of the integer ``dtype``, smallest first
    (read-only; 64 KiB for 16-bit dtypes)."""
    info = np.iinfo(np.dtype(dtype))
    table = _to_index(np.arange(info.min, info.max + 1, dtype=np.dtype(dtype)), lo, hi)
    table.setflags(write=False)
    return table


def _to_index(data, lo: float, hi: float) -> np.ndarray:
    arr = np.ma.getdata(data).astype("float64", copy=True)
    mask = np.ma.getmaskarray(data) | ~np.isfinite(arr)
    arr -= lo
    norm = hi - lo
    if abs(norm) > 1e-8:
        arr *= 1.0 / norm
    np.clip(arr, 0.0, 1.0, out=arr)
    arr *= 254.0
    arr += 1.0
    np.rint(arr, out=arr)
    arr[mask] = 0
    return arr.astype(np.uint8)


def label(data, labels) -> np.ndarray:
    """``data`` values equal to ``labels[i]`` become ``i + 1``; everything else
    (other values, masked pixels) 0."""
    values = np.ma.getdata(data)
    mask = np.ma.getmaskarray(data)
    out = np.zeros(values.shape, dtype=np.uint8)
    for i, lab in enumerate(labels, start=1):
        out[values == lab] = i
    out[mask] = 0
    return out


# --------------------------------------------------------------------------- colormaps


@lru_cache(maxsize=1)
def _cmap_names() -> dict[str, str]:
    import matplotlib

    names: dict[str, str] = {}
    for name in sorted(matplotlib.colormaps):
        names.setdefault(name.lower(), name)
    return names


def available_colormaps() -> list[str]:
    """Colormap names accepted by ``colormap=`` (matplotlib's, lower case)."""
    return sorted(_cmap_names())


@lru_cache(maxsize=512)
def colormap_values(name: str) -> np.ndarray:
    """(255, 4) uint8 RGBA of a colormap, sampled as Terracotta samples it."""
    import matplotlib

    real = _cmap_names().get(name.lower())
    if real is None:
        raise StyleError(f"Encountered invalid color map {name} (see /colormap for names, e.g. 'viridis', 'rdylgn')")
    values = (matplotlib.colormaps[real](np.linspace(0.0, 1.0, 255)) * 255).astype(np.uint8)
    values.setflags(write=False)
    return values


def _palette(colours: np.ndarray) -> np.ndarray:
    """(256, 4) palette: entry 0 transparent, entries 1.. the given RGBA rows."""
    lut = np.zeros((256, 4), dtype=np.uint8)
    lut[1 : 1 + len(colours)] = colours
    return lut


GREY = np.column_stack([np.arange(1, 256), np.arange(1, 256), np.arange(1, 256), np.full(255, 255)]).astype(np.uint8)


def palette_for(colormap: str | None) -> np.ndarray:
    return _palette(GREY if colormap is None else colormap_values(colormap))


def colorbar(stretch_range, colormap: str | None = None, num_values: int = 255) -> list[dict]:
    """``[{"value": v, "rgba": [r, g, b, a]}]`` for ``num_values`` values spread over
    ``stretch_range``, as drawn in single-band tiles with that stretch."""
    lo, hi = float(stretch_range[0]), float(stretch_range[1])
    values = np.linspace(lo, hi, num_values)
    colours = GREY if colormap is None else colormap_values(colormap)
    idx = to_index(values, lo, hi).astype(np.int64) - 1
    rows = colours[idx]
    return [{"value": float(v), "rgba": [float(c) for c in rgba]} for v, rgba in zip(values.tolist(), rows.tolist())]


# --------------------------------------------------------------------------- images


def singleband_png(index: np.ndarray, colormap: str | None = None) -> bytes:
    """Paletted PNG of 1..255 ``index`` values (0 transparent)."""
    return encode.png_palette(index, palette_for(colormap))  # entry 0 is transparent


def explicit_png(data, colours: list) -> bytes:
    """Paletted PNG of ``data`` through an explicit ``[(value, (r, g, b, a)), ...]``
    map: exact colours, values not listed (and nodata) transparent."""
    labels = [v for v, _ in colours]
    rgba = np.array([c for _, c in colours], dtype=np.uint8).reshape(-1, 4)
    index = label(data, labels)
    return encode.png_lut(index, index != 0, _palette(rgba))


def rgb_channels(bands: list, ranges: list, shape: tuple[int, int], fills: list | None = None) -> list[np.ndarray]:
    """The three 0..255 channels of an RGB image from three masked bands (None: the
    band's dataset does not cover the image), their ``(lo, hi)`` stretch ranges and
    their datasets' nodata values ``fills`` (None: no nodata).

    A pixel is nodata only where every band is (GDAL's per-dataset mask rule, as
    rio-tiler and the session tiles draw it): where any band has data, each band
    keeps its own stretched value, a band masked there its nodata value (the warped
    read does not keep the value under its mask; Terracotta 0.10 zeroes such a
    channel; see docs/terracotta.md)."""
    valid = np.zeros(shape, dtype=bool)
    for d in bands:
        if d is not None:
            valid |= ~np.ma.getmaskarray(d)
    out = []
    for d, (lo, hi), fill in zip(bands, ranges, fills or [None] * len(bands)):
        if d is None:
            out.append(np.zeros(shape, dtype=np.uint8))
            continue
        values = np.ma.getdata(d)
        if fill is not None and not math.isnan(fill):
            values = np.where(np.ma.getmaskarray(d), np.asarray(fill, dtype=values.dtype), values)
        out.append(to_index(np.ma.masked_array(values, mask=~valid), lo, hi))
    return out


def rgb_png(channels: list[np.ndarray]) -> bytes:
    """RGBA PNG of three 0..255 channels; transparent where all three are 0."""
    rgb = np.dstack(channels).astype(np.uint8)
    alpha = np.where(rgb.any(axis=2), 255, 0).astype(np.uint8)
    return encode.png_rgba(np.dstack([rgb, alpha]))


def empty_png(shape: tuple[int, int]) -> bytes:
    """Fully transparent PNG of ``shape`` (rows, cols)."""
    if shape[0] == shape[1]:
        return encode.empty_png(shape[0])
    return encode.png_rgba(np.zeros((shape[0], shape[1], 4), dtype=np.uint8))
