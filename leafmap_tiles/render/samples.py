"""Far-zoom tiles with rio-tiler's own pixels (nearest resampling), without its VRT.

With ``nearest`` for both the read and the warp, each pixel of rio-tiler's
``Reader.tile`` is one raster pixel: GDAL reads the warped VRT that
``rio_tiler.utils.get_vrt_transform`` gives (at about the raster's resolution over the
whole tile) into the tile's ``width`` x ``height`` by point sampling, and the warper
computes each sampled VRT pixel from the raster pixel under its centre.  What makes
that slow far out is that GDAL's warper computes *every* pixel of each VRT block a
sample falls in (rio-tiler issues #348 and #819).  Here only the sampled pixels are
computed, in the same three steps (GDAL 3.x rules, checked against rio-tiler 9.4 /
GDAL 3.10 on the NAIP, Landsat and COG test files: tests/core/test_far_zoom.py):

1. the level GDAL reads: the VRT's implicit overview built from raster overview ``f``
   (the VRT's size divided by the overview's real reduction in x, rounded, over the same
   bounds: :func:`_level`), the one with
   the largest reduction below 1.2 x the requested one + 0.1 (GDAL's oversampling
   threshold for nearest, see :data:`OVERSAMPLING_MARGIN`), or the VRT itself;
2. where rio-tiler reads a subset of the VRT's bands, GDAL's nearest RasterIO picks,
   for tile column ``i``, VRT (overview) column ``floor((i + 0.5) * vw / width + 1e-10)``
   (rows alike); where it reads all of them, GDAL warps straight into the tile's grid,
   so the samples are the tile's pixel centres (:func:`_whole_dataset_read`);
3. each picked VRT pixel's centre is transformed to the raster's CRS (PROJ, exactly:
   GDAL's warper uses a linear approximation within 0.125 pixel, so a sample that close
   to a raster pixel edge may take the neighbouring pixel there: 0-4 % of the pixels of
   the test files), and the raster (overview ``f``) pixel under it is read.

Only the window of overview ``f`` that holds the samples is read (one ``read``); where
that would be more than :data:`MAX_WINDOW_PIXELS` (no overview near the tile's
resolution), a striped raster is read only on the rows that hold samples, and otherwise
:func:`read_tile` returns None and the caller uses
:mod:`~leafmap_tiles.render.decimated`'s read instead (a tiled global raster at zoom
0-1, where GDAL reads full resolution: bess_NDVI_maximum_cog.tif; its pixels then come
from an overview, not rio-tiler's).
"""

from __future__ import annotations

import functools
import math
import threading
import warnings

import numpy as np

from leafmap_tiles.render.reader import fast_crs, with_fast_crs

OVERSAMPLING_THRESHOLD = 1.2  # GDAL's default for nearest (GDAL_OVERVIEW_OVERSAMPLING_THRESHOLD)
#: GDAL 3.10 takes an overview of reduction r for a requested reduction d when
#: r < 1.2 d + 0.1 (measured: reading rio-tiler's VRTs of srtm90.tif and cog.tif at every
#: size, GDAL's "Selecting overview" debug message switches there for r = 2, 4 and 8)
OVERSAMPLING_MARGIN = 0.1
EPSILON = 1e-10  # GDAL's nearest RasterIO and warp kernel add it before flooring
MAX_WINDOW_PIXELS = 4 * 2**20  # a larger window is left to decimated.read_tile (levels)


def _level(ds, vw: int, vh: int, width: int, height: int):
    """(overview factor f, its width and height, the implicit VRT overview's width and
    height) GDAL reads a ``vw`` x ``vh`` VRT into ``width`` x ``height`` from
    (``VRTWarpedDataset::GetOverviewSize``: both sides divided by the overview's ratio
    in x; GDAL takes the most reduced overview below the oversampling threshold)."""
    desired = min(vw / float(width), vh / float(height))
    best = (1, ds.width, ds.height, vw, vh)
    best_res = 0.0
    for f, ow, oh in _overview_sizes(ds):
        target = ds.width / float(ow)
        vow, voh = int(vw / target + 0.5), int(vh / target + 0.5)
        if vow < 1 or voh < 1:
            break
        res = min(vw / float(vow), vh / float(voh))
        if res < desired * OVERSAMPLING_THRESHOLD + OVERSAMPLING_MARGIN and res > best_res:
            best, best_res = (f, ow, oh, vow, voh), res
    return best


def _overview_sizes(ds):
    """[(factor, width, height)] of the overviews of band 1 of ``ds`` (the band GDAL
    chooses overviews by), as the file holds them: tools round their sizes either way
    (misc/landsat.tif: 744 x 741 for 1489 x 1482), so they are read, once per file."""
    factors = tuple(ds.overviews(1))
    if not factors:
        return []
    return _sizes(ds.name, ds.width, ds.height, factors, tuple(ds.bounds))


@functools.lru_cache(maxsize=512)
def _sizes(name: str, width: int, height: int, factors, bounds):
    import rasterio

    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, f in enumerate(factors):
            try:
                with rasterio.open(name, overview_level=k) as o:
                    out.append((f, o.width, o.height))
            except Exception:  # GDAL's usual rounding (gdaladdo, the COG driver)
                out.append((f, -(-width // f), -(-height // f)))
    return out


def _striped_rows(ds, f: int, ri, c0: int, c1: int, read, want_mask: bool, mask_band: int):
    """For a striped raster read at full resolution (``f`` 1) whose samples' window is
    too large to read whole (e.g. a global raster at zoom 0-1): only the rows that hold
    samples, columns ``c0:c1``, one read per row (GDAL decodes only their strips).
    (rows as (bands, n, width), their GDAL mask or None, each sample's index among
    them), or None where this does not apply (tiled, or still too many pixels)."""
    from rasterio.windows import Window

    if f != 1 or ds.block_shapes[0][1] < ds.width:
        return None
    wanted = np.unique(ri)
    if wanted.size * (c1 - c0) > MAX_WINDOW_PIXELS:
        return None
    block = np.empty((len(read), wanted.size, c1 - c0), dtype=ds.dtypes[read[0] - 1])
    mblock = np.empty((wanted.size, c1 - c0), dtype="uint8") if want_mask else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, row in enumerate(wanted.tolist()):
            win = Window(c0, row, c1 - c0, 1)
            block[:, k] = ds.read(read, window=win)[:, 0]
            if want_mask:
                mblock[k] = ds.read_masks(mask_band, window=win)[0]
    return block, mblock, np.searchsorted(wanted, ri)


def _whole_dataset_read(ds, indexes, nodata, alpha_index) -> bool:
    """Whether rio-tiler's read asks GDAL for every band of its warped VRT at once:
    GDAL then warps the chosen level straight into the tile's grid
    (``VRTWarpedDataset::IRasterIO``), instead of sampling warped VRT blocks.  The VRT
    holds the raster's bands, plus an alpha band where there is neither nodata nor an
    alpha band; rio-tiler reads the bands asked for, plus the alpha band where there
    is no nodata, in one read (the VRT gives every band the raster's dtype)."""
    if nodata is not None:
        return len(indexes) == ds.count
    if alpha_index is not None:
        return len(indexes) + 1 == ds.count
    return len(indexes) == ds.count


def read_tile(ds, bounds, width: int, height: int, indexes, *, nodata=None,
              alpha_index: int | None = None) -> np.ma.MaskedArray | None:
    """Bands ``indexes`` (1-based) of ``ds`` over EPSG:3857 ``bounds`` as rio-tiler's
    ``Reader.tile(..., resampling_method="nearest", reproject_method="nearest")`` gives
    them: a masked array ``(len(indexes), height, width)`` in the raster's dtype, masked
    where a band equals ``nodata`` (NaN: is NaN) or, without ``nodata``, where the
    alpha band ``alpha_index`` is not opaque or the GDAL mask is 0, and outside the
    raster (all of it where no sample falls on the raster).  None where this module
    does not apply: the samples' window would exceed :data:`MAX_WINDOW_PIXELS`, the
    raster is rotated, or rio-tiler's VRT cannot be computed."""
    from rasterio.windows import Window
    from rio_tiler.utils import get_vrt_transform

    indexes = list(indexes)
    t = ds.transform
    if t.b != 0 or t.d != 0 or (t.is_identity and ds.gcps[0]):
        return None  # rotated or GCP-referenced: left to decimated.read_tile
    try:
        vt, vw, vh = get_vrt_transform(with_fast_crs(ds), bounds, height, width, dst_crs="EPSG:3857")
    except Exception:
        return None
    f, ow, oh, vow, voh = _level(ds, vw, vh, width, height)
    if _whole_dataset_read(ds, indexes, nodata, alpha_index):
        # the tile's own pixel centres over the VRT's bounds
        xs = vt.c + (np.arange(width) + 0.5) * (vt.a * vw / float(width))
        ys = vt.f + (np.arange(height) + 0.5) * (vt.e * vh / float(height))
    else:
        # GDAL's nearest RasterIO picks VRT (overview) pixels, whose centres are warped
        cols = np.floor((np.arange(width) + 0.5) * (vow / float(width)) + EPSILON)
        rows = np.floor((np.arange(height) + 0.5) * (voh / float(height)) + EPSILON)
        xs = vt.c + (cols + 0.5) * (vt.a * vw / float(vow))
        ys = vt.f + (rows + 0.5) * (vt.e * vh / float(voh))
    sx, sy = _grid_to_source(fast_crs(ds), xs, ys)
    # the raster's (overview f's) pixel under each sample
    rx, ry = ds.width / float(ow), ds.height / float(oh)
    inv_a, inv_e = 1.0 / (t.a * rx), 1.0 / (t.e * ry)
    with np.errstate(invalid="ignore"):
        c = np.floor((sx - t.c) * inv_a + EPSILON)
        r = np.floor((sy - t.f) * inv_e + EPSILON)
    inside = np.isfinite(c) & np.isfinite(r) & (c >= 0) & (c < ow) & (r >= 0) & (r < oh)
    n_bands = len(indexes)
    dtype = np.dtype(ds.dtypes[indexes[0] - 1])
    if not inside.any():  # no sample falls on the raster: an empty tile, as rio-tiler's
        fill = 0 if nodata is None else nodata
        return np.ma.MaskedArray(np.full((n_bands, height, width), fill, dtype=dtype), mask=True)
    ci, ri = c[inside].astype(np.int64), r[inside].astype(np.int64)
    c0, c1, r0, r1 = int(ci.min()), int(ci.max()) + 1, int(ri.min()), int(ri.max()) + 1
    read = indexes + ([alpha_index] if nodata is None and alpha_index is not None else [])
    want_mask = nodata is None and alpha_index is None
    mblock = None
    if (c1 - c0) * (r1 - r0) <= MAX_WINDOW_PIXELS:
        # the window of overview f, in full-resolution pixels (GDAL maps it back onto f)
        win = Window(c0 * rx, r0 * ry, (c1 - c0) * rx, (r1 - r0) * ry)
        shape = (r1 - r0, c1 - c0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            block = ds.read(read, window=win, out_shape=(len(read),) + shape)
            if want_mask:
                mblock = ds.read_masks(indexes[0], window=win, out_shape=shape)
        ri, ci = ri - r0, ci - c0
    else:
        rows = _striped_rows(ds, f, ri, c0, c1, read, want_mask, indexes[0])
        if rows is None:
            return None
        block, mblock, ri = rows
        ci = ci - c0
    if nodata is not None:
        out = np.full((n_bands, height * width), nodata, dtype=dtype)
        out[:, inside] = block[:n_bands, ri, ci]
        out = out.reshape(n_bands, height, width)
        if np.issubdtype(dtype, np.floating):
            # GDAL's warper leaves nodata for a NaN pixel on some paths (cog_nodata_nan.tif)
            # and copies the NaN on others (bess_NDVI_maximum_*); the engine masks NaN
            # either way, so here a NaN sample is nodata
            out[np.isnan(out)] = nodata
        if isinstance(nodata, float) and math.isnan(nodata):
            mask = np.isnan(out)
        else:
            mask = out == nodata
        return np.ma.MaskedArray(out, mask=mask)
    out = np.zeros((n_bands, height * width), dtype=dtype)
    out[:, inside] = block[:n_bands, ri, ci]
    valid = np.zeros(height * width, dtype=bool)
    if alpha_index is not None:
        a = block[-1]
        opaque = np.iinfo(a.dtype).max if np.issubdtype(a.dtype, np.integer) else 1.0
        valid[inside] = a[ri, ci] == opaque
    else:
        valid[inside] = mblock[ri, ci] > 0
    mask = np.broadcast_to(~valid.reshape(height, width), (n_bands, height, width)).copy()
    return np.ma.MaskedArray(out.reshape(n_bands, height, width), mask=mask)


def _grid_to_source(crs, xs, ys):
    """The grid of EPSG:3857 points ``xs`` (columns) x ``ys`` (rows) in ``crs``, as two
    flat arrays (row-major).  Where ``crs`` is geographic the transform is separable
    (longitude from x alone, latitude from y alone: web mercator's inverse), so only
    a row and a column are transformed; that is checked on a few grid points against
    the full transform (a datum shift would break it), else every point is."""
    if crs.is_geographic and xs.size > 8 and ys.size > 8:
        lon, _ = _to_source(crs, xs, np.full(xs.size, ys[ys.size // 2]))
        _, lat = _to_source(crs, np.full(ys.size, xs[xs.size // 2]), ys)
        pick_c = np.array([0, xs.size // 3, xs.size - 1, 1, xs.size // 2])
        pick_r = np.array([0, ys.size - 1, ys.size // 3, ys.size // 2, 2])
        cx, cy = _to_source(crs, xs[pick_c], ys[pick_r])
        same = np.array_equal(cx, lon[pick_c], equal_nan=True) and np.array_equal(cy, lat[pick_r], equal_nan=True)
        if same:
            gx, gy = np.meshgrid(lon, lat)
            return gx.ravel(), gy.ravel()
    gx, gy = np.meshgrid(xs, ys)
    return _to_source(crs, gx.ravel(), gy.ravel())


_local = threading.local()  # pyproj transformers, one set per thread (they are not shared)


def _transformer(crs):
    """A pyproj transformer from EPSG:3857 to ``crs`` (x, y order), kept per thread."""
    from pyproj import Transformer

    cache = getattr(_local, "transformers", None)
    if cache is None:
        cache = _local.transformers = {}
    key = crs.to_wkt()
    tr = cache.get(key)
    if tr is None:
        if len(cache) > 32:
            cache.clear()
        tr = cache[key] = Transformer.from_crs("EPSG:3857", key, always_xy=True)
    return tr


def _to_source(crs, xs, ys):
    """EPSG:3857 points ``xs``, ``ys`` (arrays) in ``crs``, with PROJ (pyproj: the same
    PROJ operation GDAL uses, on numpy arrays without copies to lists); points outside
    the projection's domain are NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sx, sy = _transformer(crs).transform(np.asarray(xs, dtype="float64"), np.asarray(ys, dtype="float64"),
                                             errcheck=False)
    sx, sy = np.array(sx, dtype="float64"), np.array(sy, dtype="float64")
    bad = ~(np.isfinite(sx) & np.isfinite(sy))
    sx[bad], sy[bad] = np.nan, np.nan
    return sx, sy
