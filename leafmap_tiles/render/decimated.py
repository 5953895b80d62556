"""Far-zoom reads: the part of a raster inside a tile, at the resolution the tile needs.

Why this exists: rio-tiler builds a ``WarpedVRT`` whose resolution is the raster's own
over the *whole* tile (``rio_tiler.utils.get_vrt_transform``) and lets GDAL downsample
it.  Far below the raster's native zoom that VRT is huge (NAIP, 1 m pixels, zoom 8:
about 150,000 x 150,000 pixels) and GDAL's warper processes every block of it that the
subsampled output touches; with a nodata value on a multi-band raster each block
costs a full warp (measured: 50 s for one zoom-8 tile of a 934 x 723 file; rio-tiler
issues #348 and #819).

Here instead: (1) the tile's footprint is found in the raster's CRS (a grid of points
of the tile transformed with PROJ, clipped to the raster), (2) that window is read with
``DatasetReader.read(out_shape=...)`` at twice the tile's resolution (four times for
reductions such as ``average``), so GDAL uses the raster's overviews or decimates while
decoding, and (3) the small array is warped to the tile grid with
``rasterio.warp.reproject`` (GDAL's warper; a reduction is warped with the same
reduction), nodata or a validity alpha band carried along.  Cost: one read of 2-4 x
the tile's pixels per axis, whatever the zoom.

At these zooms a tile pixel covers many raster pixels and the result depends on how
they are sampled: with ``nearest`` both rio-tiler and this module draw point samples
(at slightly different positions), with ``average`` this module is closer to the true
area average of the raster pixels than Terracotta's warped VRT (tests/terracotta_api/
test_far_zoom.py measures both against GDAL's average warp from full resolution).

Only used where rio-tiler's path is slow: where the tile's pixels are at least
:data:`MIN_DECIMATION` times coarser than those of the raster's best overview for them
(:func:`warp_factor`); elsewhere rio-tiler's own path and pixels are kept.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

MIN_DECIMATION = 4.0  # tile pixel size / best overview's pixel size from which this path is used
OVERSAMPLE = 2.0  # source pixels read per tile pixel and axis (nearest, bilinear, ...)
OVERSAMPLE_AGGREGATE = 4.0  # the same for reductions (average, mode, ...): closer to a true area average
_GRID = 21  # points per tile edge used to find the tile's footprint in the source CRS
WEB_MERCATOR_HALF = 20037508.342789244


_AGGREGATES = ("average", "mode", "min", "max", "med", "q1", "q3", "sum", "rms")


def tile_transform(bounds, width: int, height: int):
    """Affine transform of a ``height`` x ``width`` grid over EPSG:3857 ``bounds``."""
    from rasterio.transform import from_bounds

    return from_bounds(*bounds, width, height)


def source_resolution_in_3857(ds) -> float | None:
    """Size in EPSG:3857 metres of the pixel at the raster's centre (the smaller axis),
    or None if it cannot be computed."""
    from rasterio.warp import transform as warp_xy

    try:
        t = ds.transform
        cx, cy = ds.width / 2.0, ds.height / 2.0
        pts = [t * (cx, cy), t * (cx + 1, cy), t * (cx, cy + 1)]
        xs, ys = warp_xy(ds.crs, "EPSG:3857", [p[0] for p in pts], [p[1] for p in pts])
        res = min(math.hypot(xs[1] - xs[0], ys[1] - ys[0]), math.hypot(xs[2] - xs[0], ys[2] - ys[0]))
    except Exception:
        return None
    return res if math.isfinite(res) and res > 0 else None


def decimation(ds, bounds, width: int, src_res: float | None = None) -> float:
    """How many raster pixels one tile pixel spans (EPSG:3857 ``bounds``, ``width``
    tile pixels); 1.0 when unknown."""
    res = src_res if src_res is not None else source_resolution_in_3857(ds)
    if not res:
        return 1.0
    return (bounds[2] - bounds[0]) / float(width) / res


def warp_factor(dec: float, overviews) -> float:
    """How many raster pixels per tile pixel rio-tiler's warped VRT still has to warp
    after GDAL picks the raster's best overview (``overviews``: decimation factors,
    e.g. ``[2, 4, 8]``): ``dec`` divided by the largest factor not above it.  rio-tiler
    is fast below :data:`MIN_DECIMATION` (a warp of at most ~4x the tile's pixels per
    side), so this module is used only from there on."""
    usable = [f for f in (overviews or []) if f <= dec]
    return dec / (max(usable) if usable else 1.0)


def source_window(ds, bounds):
    """The window of ``ds`` (a rasterio dataset) that EPSG:3857 ``bounds`` cover, or
    None when they do not meet the raster.  Found from a grid of points of the tile
    transformed to the raster's CRS (points outside its projection's domain ignored),
    so it also holds for polar and antimeridian rasters; widened by a pixel each side."""
    from rasterio.warp import transform as warp_xy
    from rasterio.windows import Window

    xs = np.linspace(bounds[0], bounds[2], _GRID)
    ys = np.linspace(bounds[1], bounds[3], _GRID)
    gx, gy = np.meshgrid(xs, ys)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            sx, sy = warp_xy("EPSG:3857", ds.crs, gx.ravel().tolist(), gy.ravel().tolist())
        except Exception:
            return Window(0, 0, ds.width, ds.height)
    sx, sy = np.asarray(sx, dtype="float64"), np.asarray(sy, dtype="float64")
    ok = np.isfinite(sx) & np.isfinite(sy)
    if not ok.any():
        return Window(0, 0, ds.width, ds.height)
    inv = ~ds.transform
    cols, rows = inv * (sx[ok], sy[ok])
    cols, rows = np.asarray(cols), np.asarray(rows)
    # the grid's cell size in source pixels: a tile edge may fall between grid points
    step = max(np.ptp(cols) if cols.size > 1 else 0.0, np.ptp(rows) if rows.size > 1 else 0.0) / (_GRID - 1)
    pad = step + 1.0
    c0 = max(0, int(math.floor(cols.min() - pad)))
    r0 = max(0, int(math.floor(rows.min() - pad)))
    c1 = min(ds.width, int(math.ceil(cols.max() + pad)))
    r1 = min(ds.height, int(math.ceil(rows.max() + pad)))
    if c1 <= c0 or r1 <= r0:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0)


def read_tile(
    ds,
    bounds,
    width: int,
    height: int,
    indexes,
    *,
    nodata=None,
    alpha_index: int | None = None,
    resampling: str = "nearest",
    reproject: str = "nearest",
    dec: float | None = None,
) -> np.ma.MaskedArray | None:
    """Bands ``indexes`` (1-based) of ``ds`` over EPSG:3857 ``bounds`` as a masked array
    of shape ``(len(indexes), height, width)`` in the raster's dtype, or None when the
    bounds do not meet the raster.

    The mask follows rio-tiler's rules, so callers see what ``Reader.tile`` gives: with
    a ``nodata`` value (the file's, or an override), a band's pixel is masked where it
    equals nodata (NaN: is NaN), outside the raster included; otherwise a pixel is masked
    where the raster's alpha band (``alpha_index``) is not opaque or its GDAL mask is 0,
    and outside the raster.  ``resampling`` is used for the decimated read (GDAL
    RasterIO), ``reproject`` for the warp; both are rasterio ``Resampling`` names.
    """
    from rasterio.enums import Resampling
    from rasterio.warp import reproject as warp

    if resampling in _AGGREGATES:
        # a reduction (e.g. average) over all raster pixels under a tile pixel: warp with
        # it too, so the read pixels are reduced over the tile pixel's footprint, as
        # GDAL does when it downsamples a warped VRT at the raster's resolution
        reproject = resampling
    win = source_window(ds, bounds)
    if win is None:
        return None
    if dec is None:
        dec = decimation(ds, bounds, width)
    step = max(1.0, dec / (OVERSAMPLE_AGGREGATE if resampling in _AGGREGATES else OVERSAMPLE))
    out_w = max(1, int(math.ceil(win.width / step)))
    out_h = max(1, int(math.ceil(win.height / step)))
    indexes = list(indexes)
    io_res = Resampling[resampling]
    data = ds.read(indexes, window=win, out_shape=(len(indexes), out_h, out_w), resampling=io_res)
    src_transform = _scaled(ds.window_transform(win), win.width / out_w, win.height / out_h)
    dst_transform = tile_transform(bounds, width, height)
    dtype = data.dtype
    if nodata is not None:
        fill = nodata
        out = np.full((len(indexes), height, width), fill, dtype=dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warp(
                data, out, src_transform=src_transform, src_crs=ds.crs, src_nodata=nodata,
                dst_transform=dst_transform, dst_crs="EPSG:3857", dst_nodata=nodata,
                resampling=Resampling[reproject], init_dest_nodata=True,
            )
        mask = np.isnan(out) if (isinstance(nodata, float) and math.isnan(nodata)) else out == nodata
        return np.ma.MaskedArray(out, mask=mask)
    # no nodata: validity comes from the alpha band or GDAL's mask, warped as an alpha band
    if alpha_index is not None:
        a = ds.read(alpha_index, window=win, out_shape=(out_h, out_w), resampling=io_res)
        opaque = np.iinfo(a.dtype).max if np.issubdtype(a.dtype, np.integer) else 1.0
        alpha = np.where(a == opaque, 255, 0).astype(dtype)
    else:
        m = ds.read_masks(indexes[0], window=win, out_shape=(out_h, out_w), resampling=Resampling.nearest)
        alpha = np.where(m > 0, 255, 0).astype(dtype)
    src = np.concatenate([data, alpha[np.newaxis].astype(dtype)], axis=0)
    out = np.zeros((len(indexes) + 1, height, width), dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warp(
            src, out, src_transform=src_transform, src_crs=ds.crs, dst_transform=dst_transform,
            dst_crs="EPSG:3857", resampling=Resampling[reproject], src_alpha=len(indexes) + 1,
            dst_alpha=len(indexes) + 1, src_nodata=None, dst_nodata=None,
        )
    valid = out[-1] == 255
    mask = np.broadcast_to(~valid, (len(indexes), height, width)).copy()
    return np.ma.MaskedArray(out[:-1], mask=mask)


def _scaled(transform, sx: float, sy: float):
    from affine import Affine

    return transform * Affine.scale(sx, sy)
