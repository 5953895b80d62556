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
they are sampled: with ``nearest`` (read and warp) :mod:`~leafmap_tiles.render.samples`
computes rio-tiler's own samples, and this module's read is only used where those
would need more than ``samples.MAX_WINDOW_PIXELS`` of the raster (a large raster
without overviews, e.g. a striped file: then from a level, see :class:`Levels`); with
``average`` this module is closer to the true area average of the raster pixels than
Terracotta's warped VRT (tests/terracotta_api/test_far_zoom.py measures both against
GDAL's average warp from full resolution).

Only used where rio-tiler's path is slow: where the warped VRT or the raster pixels
it would process are at least :data:`MIN_DECIMATION` times the tile's per side
(:func:`rio_tiler_cost`); elsewhere rio-tiler's own path and pixels are kept.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

MIN_DECIMATION_AGGREGATE = 2.0  # the same for reductions (average, mode, ...)
#: what a full-resolution pixel the warper reads without a nodata test costs, against one with
#: it (measured: ~15-20 ns against ~40 ns a pixel; cog_dateline.tif z2-z5, bess z1-z2)
FULL_WINDOW_WEIGHT = 0.4
MIN_DECIMATION = 5.0  # from this ratio (per side) of what rio-tiler would process to the tile, this path is used
OVERSAMPLE = 2.0  # source pixels read per tile pixel and axis (nearest, bilinear, ...)
OVERSAMPLE_CLASSES = 4.0  # the same for the most frequent class of a paletted band (sampled, then "mode")
_GRID = 21  # points per tile edge used to find the tile's footprint in the source CRS
WEB_MERCATOR_HALF = 20037508.342789244


LEVEL_GAIN = 4.0  # a level is used when GDAL would decode >= LEVEL_GAIN^2 x the pixels it returns
BASE_LEVEL = 4  # the finest level (LEVEL_GAIN as a power of two)
# large rasters (>= LARGE_PIXELS): their levels are reduced from the base level in memory
# (only the base level reads the file), used from LEVEL_GAIN_LARGE on, and the base level
# is built ahead of need (Levels, base_level_job)
LARGE_PIXELS = 4 * 2**20
LEVEL_GAIN_LARGE = 2.0 * math.sqrt(2.0)
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


def rio_tiler_cost(ds, bounds, width: int, height: int, overviews, window=None, nodata: bool = False) -> float:
    """What rio-tiler's ``Reader.tile`` / ``Reader.part`` would process for a tile of
    ``width`` x ``height`` pixels over EPSG:3857 ``bounds``, in tile areas: the larger of
    the warped VRT it builds (``rio_tiler.utils.get_vrt_transform``) and the raster
    pixels GDAL decodes for it (``window`` of the raster, see :func:`source_window`).

    Model of GDAL (3.x): when the tile is read at less than half the VRT's size, GDAL
    reads the VRT's implicit overview ``f`` (the largest raster overview factor not
    above that ratio), which warps raster overview ``f`` whatever its resolution, so
    ``window / f**2`` raster pixels are decoded; otherwise the model counts the raster
    overview closest to the VRT's resolution.  That undercounts where rio-tiler builds
    its VRT at the tile's resolution (rasters across the antimeridian, some geographic
    CRSs): GDAL's warper then reads the full-resolution window (its debug output for
    the z1 tile of the global ``bess_NDVI_maximum_cog.tif``: a 3600 x 1702 source window
    warped into a 332 x 331 VRT, 120-150 ms cold; for the fitted view of
    ``cog_dateline.tif``: 2.8 Mpx in two chunks).  Those pixels are counted where the
    raster has a ``nodata`` value (the style's or the file's): then the warper also
    builds and tests a validity mask of every one of them, which is what makes the read
    slow (bess z1, 7.5 Mpx: 80-300 ms, ~40 ns a pixel).  Without nodata the same full
    window costs less than half of that per pixel (cog_dateline z2-z5, 4.5-5.5 Mpx:
    46-115 ms, no nodata), so there it counts :data:`FULL_WINDOW_WEIGHT` of a pixel;
    fitted views such as cog_dateline's stay below the limit, on rio-tiler's path and
    pixels (tests/core/test_add_raster.py).  ``overviews`` are decimation factors."""
    from rio_tiler.utils import get_vrt_transform

    from leafmap_tiles.render.reader import with_fast_crs

    try:
        _, vw, vh = get_vrt_transform(with_fast_crs(ds), bounds, height, width, dst_crs="EPSG:3857")
    except Exception:
        return math.inf
    ovr = list(overviews or [])
    ratio = max(vw / float(width), vh / float(height))
    f_vrt = max([o for o in ovr if o <= ratio] or [1])
    vrt_px = vw * vh / float(f_vrt * f_vrt)
    win_px = float(window.width * window.height) if window is not None else 0.0
    if f_vrt > 1:
        decoded = win_px / float(f_vrt * f_vrt)
    else:  # the warper reads the full-resolution window; testing nodata makes each pixel dearer
        decoded = win_px * (1.0 if nodata else FULL_WINDOW_WEIGHT)
    return max(vrt_px, decoded) / float(width * height)


def could_use_decimated(dec: float, resampling: str = "nearest") -> bool:
    """False where :func:`use_decimated` is False whatever the overviews: rio-tiler's
    warped VRT holds about ``dec``^2 tile areas of pixels (``dec`` from
    :func:`decimation`; the warp's own suggestion may differ by the projection's
    distortion, allowed for with a 1.5x margin per side)."""
    limit = MIN_DECIMATION_AGGREGATE if resampling in _AGGREGATES else MIN_DECIMATION
    return dec * 1.5 >= limit


#: from this many raster pixels per tile pixel (per side) a tile is a thumbnail of the
#: raster and is always read here: rio-tiler's warp then costs set-up more than pixels
#: (an implicit VRT overview per raster overview, each with its own transformer), which
#: the pixel count of :func:`rio_tiler_cost` does not see (measured: cog_dateline.tif
#: z0-z1, 60-200 ms against 8-15 ms for its native tile, 581 x 589 pixels decoded)
THUMBNAIL_DECIMATION = 64.0


def use_decimated(cost: float, resampling: str = "nearest", dec: float = 0.0) -> bool:
    """Whether a tile whose rio-tiler cost (:func:`rio_tiler_cost`) is ``cost`` is read
    by this module: from :data:`MIN_DECIMATION` squared tile areas on (5x the tile's
    pixels per side: ~1.6 million pixels, tens of milliseconds), where rio-tiler's path
    gets slow; below it rio-tiler's pixels are kept (the first, fitted view of a raster
    among them: tests/core/test_add_raster.py).  With a reduction such as ``average``
    (Terracotta's default, used by ``leafmap-tiles serve``) GDAL reduces every pixel of
    the VRT it reads, so from :data:`MIN_DECIMATION_AGGREGATE` squared on.  ``dec``
    (:func:`decimation`) at or past :data:`THUMBNAIL_DECIMATION`: always."""
    if dec >= THUMBNAIL_DECIMATION:
        return True
    if resampling in _AGGREGATES:  # GDAL reduces every VRT pixel: slow from fewer pixels on
        return cost >= MIN_DECIMATION_AGGREGATE * MIN_DECIMATION_AGGREGATE
    return cost >= MIN_DECIMATION * MIN_DECIMATION


class Levels:
    """Decimated copies of whole rasters that lack overviews, built once per source
    and kept in memory (least recently used dropped past ``max_bytes``).

    Reading a window of a raster without overviews at 1/N of its resolution makes GDAL
    decode every pixel of the window; far out, a tile's window is most of the raster,
    so every far tile would decode the whole file.  A level (all bands, 1/L of the
    resolution, L a power of two) is read once instead and tiles cut from it."""

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        import threading
        from collections import OrderedDict

        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._cache: OrderedDict = OrderedDict()
        self._building: dict = {}
        self._claimed: set = set()
        self.built = 0  # levels built (a debug counter for tests)

    def get(self, key, build):
        import threading

        while True:
            with self._lock:
                hit = self._cache.get(key)
                if hit is not None:
                    self._cache.move_to_end(key)
                    return hit
                ev = self._building.get(key)
                if ev is None:
                    ev = self._building[key] = threading.Event()
                    mine = True
                else:
                    mine = False
            if not mine:
                ev.wait()
                continue
            try:
                value = build()
            finally:
                with self._lock:
                    self._building.pop(key, None)
                ev.set()
            with self._lock:
                self._cache[key] = value
                self.built += 1
                total = sum(v[0].nbytes + (0 if v[1] is None else v[1].nbytes) for v in self._cache.values())
                while total > self.max_bytes and len(self._cache) > 1:
                    _, old = self._cache.popitem(last=False)
                    total -= old[0].nbytes + (0 if old[1] is None else old[1].nbytes)
            return value

    def claim(self, key) -> bool:
        """True the first time ``key`` is claimed (for a build ahead of need) while
        it is not cached; False after, so that it is asked for once."""
        with self._lock:
            if key in self._cache or key in self._building or key in self._claimed:
                return False
            self._claimed.add(key)
            return True

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
            self._claimed.clear()

    def forget(self, path) -> None:
        """Drop the levels of ``path`` (keys are ``((path, file state), ...)``)."""
        with self._lock:
            for k in [k for k in self._cache if k[0][0][0] == path]:
                del self._cache[k]
            self._claimed = {k for k in self._claimed if k[0][0][0] != path}


def source_window(ds, bounds):
    """The window of ``ds`` (a rasterio dataset) that EPSG:3857 ``bounds`` cover, or
    None when they do not meet the raster.  Found from a grid of points of the tile
    transformed to the raster's CRS (points outside its projection's domain ignored),
    so it also holds for polar and antimeridian rasters; widened by a pixel each side."""
    from rasterio.warp import transform as warp_xy
    from rasterio.windows import Window

    from leafmap_tiles.render.reader import fast_crs

    xs = np.linspace(bounds[0], bounds[2], _GRID)
    ys = np.linspace(bounds[1], bounds[3], _GRID)
    gx, gy = np.meshgrid(xs, ys)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            sx, sy = warp_xy("EPSG:3857", fast_crs(ds), gx.ravel().tolist(), gy.ravel().tolist())
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
    levels: Levels | None = None,
    level_key=None,
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
    ``dec`` is the tile's pixel size over the raster's (:func:`decimation`).  With
    ``levels`` (and ``level_key`` naming the file and its state), a raster without
    overviews near the needed resolution is read from a decimated copy built once.
    """
    from rasterio.enums import Resampling
    from rasterio.warp import reproject as warp

    from leafmap_tiles.render.reader import fast_crs

    if resampling == "nearest" and reproject == "nearest":
        # point samples: rio-tiler's very pixels, computed for the samples only
        from leafmap_tiles.render import samples

        arr = samples.read_tile(ds, bounds, width, height, indexes, nodata=nodata, alpha_index=alpha_index)
        if arr is not None:
            return arr
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
    indexes = list(indexes)
    io_res, reproject, oversample = _read_plan(ds, indexes, resampling, reproject)
    step = max(1.0, dec / oversample)
    out_w = max(1, int(math.ceil(win.width / step)))
    out_h = max(1, int(math.ceil(win.height / step)))
    level = None
    if levels is not None and level_key is not None:
        best = max([f for f in ds.overviews(indexes[0]) if f <= step] or [1])
        gain = step / best  # GDAL would decode gain^2 x the pixels it returns
        if gain >= LEVEL_GAIN or (gain >= LEVEL_GAIN_LARGE and _large(ds)):
            factor = max(BASE_LEVEL, 2 ** int(math.log2(step)))  # >= step / 2, <= step * 1.41
            level = _level(ds, levels, level_key, factor, resampling, io_res, nodata, alpha_index)
    if level is not None:
        ldata, lalpha, (sx, sy) = level
        c0, r0 = int(win.col_off // sx), int(win.row_off // sy)
        c1 = min(ldata.shape[2], int(math.ceil((win.col_off + win.width) / sx)))
        r1 = min(ldata.shape[1], int(math.ceil((win.row_off + win.height) / sy)))
        if c1 <= c0 or r1 <= r0:
            return None
        data = ldata[[i - 1 for i in indexes], r0:r1, c0:c1]
        src_transform = ds.transform * _affine_scale_translate(sx, sy, c0, r0)
        out_h, out_w = data.shape[1:]
    else:
        lalpha = None
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
                data, out, src_transform=src_transform, src_crs=fast_crs(ds), src_nodata=nodata,
                dst_transform=dst_transform, dst_crs="EPSG:3857", dst_nodata=nodata,
                resampling=Resampling[reproject], init_dest_nodata=True,
            )
        mask = np.isnan(out) if (isinstance(nodata, float) and math.isnan(nodata)) else out == nodata
        return np.ma.MaskedArray(out, mask=mask)
    # no nodata: validity comes from the alpha band or GDAL's mask, warped as an alpha band
    if level is not None:
        alpha = lalpha[r0:r1, c0:c1].astype(dtype)
    elif alpha_index is not None:
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
            src, out, src_transform=src_transform, src_crs=fast_crs(ds), dst_transform=dst_transform,
            dst_crs="EPSG:3857", resampling=Resampling[reproject], src_alpha=len(indexes) + 1,
            dst_alpha=len(indexes) + 1, src_nodata=None, dst_nodata=None,
        )
    valid = out[-1] == 255
    mask = np.broadcast_to(~valid, (len(indexes), height, width)).copy()
    return np.ma.MaskedArray(out[:-1], mask=mask)


def _read_plan(ds, indexes, resampling: str, reproject: str):
    """(GDAL RasterIO resampling, warp resampling name, source pixels per tile pixel)
    for a decimated read of bands ``indexes`` with ``resampling``."""
    from rasterio.enums import Resampling

    if resampling in _AGGREGATES and _paletted(ds, indexes[0]):
        # a paletted band holds classes: GDAL averages it colour by colour (its colour
        # table searched for each output pixel: ~400 ms per Mpx); take the most frequent
        # class instead (decimated by sampling, then GDAL's "mode" in the warp), from
        # more samples per tile pixel: a class count needs them more than a mean does
        return Resampling.nearest, "mode", OVERSAMPLE_CLASSES
    return Resampling[resampling], reproject, OVERSAMPLE


def _level(ds, levels: Levels, level_key, factor: int, resampling: str, io_res, nodata, alpha_index):
    """The level of ``ds`` at 1/``factor`` (built once: see :class:`Levels`)."""
    kind = (level_key, resampling, nodata is None, alpha_index)

    def build():
        # coarser levels are reduced from the base level in memory: only the base level
        # reads the file (each read of a striped file without overviews decodes all
        # of it); always from the base, so a level's pixels do not depend on the order
        # in which zooms were asked
        if factor > BASE_LEVEL and io_res.name in ("average", "nearest") and _large(ds) and _fits(ds, levels):
            base = _level(ds, levels, level_key, BASE_LEVEL, resampling, io_res, nodata, alpha_index)
            return _reduce_level(base, factor // BASE_LEVEL, io_res.name, nodata)
        return _build_level(ds, factor, io_res, nodata, alpha_index)

    return levels.get((kind, factor), build)


def _large(ds) -> bool:
    """Whether ``ds`` has at least :data:`LARGE_PIXELS` pixels (its full read is slow)."""
    return ds.width * ds.height >= LARGE_PIXELS


def _fits(ds, levels: Levels) -> bool:
    """Whether the base level of ``ds`` takes at most a quarter of ``levels``' memory."""
    itemsize = np.dtype(ds.dtypes[0]).itemsize
    return ds.count * ds.width * ds.height * itemsize / BASE_LEVEL**2 <= levels.max_bytes / 4


def base_level_job(ds, path: str, indexes, *, nodata, alpha_index, resampling: str, levels: Levels, level_key):
    """A callable that builds the first level :func:`read_tile` would use when the view
    zooms out (1/:data:`BASE_LEVEL`, from which coarser levels are reduced in memory),
    or None where no level is worth building ahead: the raster has overviews, is
    smaller than :data:`LARGE_PIXELS`, or its level would take more than a
    quarter of ``levels``' memory, or it was built or asked for already.  ``ds`` is
    the open dataset of the local file ``path`` (the callable opens its own: a GDAL
    dataset is not shared between threads); the other arguments as :func:`read_tile`'s.
    A server runs the callable in the background while the raster is viewed near its
    native zoom, so that zooming out does not wait for it.  Not for nearest tiles of a
    striped raster: those read only the rows that hold samples."""
    indexes = list(indexes)
    if ds.overviews(indexes[0]) or not _large(ds):
        return None
    bh, bw = ds.block_shapes[0]
    if resampling == "nearest" and bw >= ds.width and bh < ds.height:
        return None  # striped: nearest tiles read the sampled rows (samples.read_tile)
    if not _fits(ds, levels):
        return None
    io_res, _, _ = _read_plan(ds, indexes, resampling, resampling)
    kind = (level_key, resampling, nodata is None, alpha_index)
    if not levels.claim((kind, BASE_LEVEL)):
        return None
    def build() -> None:
        import rasterio

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(path) as own:
                _level(own, levels, level_key, BASE_LEVEL, resampling, io_res, nodata, alpha_index)

    return build


def _paletted(ds, index: int) -> bool:
    """Whether band ``index`` (1-based) of ``ds`` has a colour table."""
    from rasterio.enums import ColorInterp

    try:
        return ds.colorinterp[index - 1] == ColorInterp.palette
    except Exception:
        return False


def _build_level(ds, factor: int, io_res, nodata, alpha_index):
    """(all bands, validity alpha 0/255 or None, factor) of ``ds`` at 1/``factor``."""
    from rasterio.enums import Resampling

    h, w = max(1, -(-ds.height // factor)), max(1, -(-ds.width // factor))
    data = _read_level_data(ds, factor, h, w, io_res)
    alpha = None
    if nodata is None:
        if alpha_index is not None:
            a = ds.read(alpha_index, out_shape=(h, w), resampling=io_res)
            opaque = np.iinfo(a.dtype).max if np.issubdtype(a.dtype, np.integer) else 1.0
            alpha = np.where(a == opaque, 255, 0).astype(np.uint8)
        else:
            m = ds.read_masks(1, out_shape=(h, w), resampling=Resampling.nearest)
            alpha = np.where(m > 0, 255, 0).astype(np.uint8)
    return data, alpha, (ds.width / w, ds.height / h)  # raster pixels per level pixel


#: a level of a raster with at least this many pixels is read by two threads (top and
#: bottom half, each with its own dataset): decoding a large striped file is most of
#: the cost (bess_NDVI_maximum_striped.tif, 26 Mpx: 285 ms for its average level in
#: one read)
PARALLEL_PIXELS = 16 * 2**20


def _read_level_data(ds, factor: int, h: int, w: int, io_res):
    """All bands of ``ds`` at ``h`` x ``w`` (1/``factor``).  A large local raster whose
    height is a multiple of ``2 * factor`` is read in two halves at once: each half's
    window is a whole number of level rows, so GDAL maps every level pixel onto the
    same raster pixels as in one read (identical values)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from rasterio.windows import Window

    if (ds.width * ds.height < PARALLEL_PIXELS or ds.height % (2 * factor) or not os.path.isfile(ds.name)):
        return ds.read(out_shape=(ds.count, h, w), resampling=io_res)
    half = h // 2

    def bottom():
        import rasterio

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(ds.name) as own:
                win = Window(0, half * factor, ds.width, ds.height - half * factor)
                return own.read(window=win, out_shape=(ds.count, h - half, w), resampling=io_res)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="leafmap-tiles-level") as pool:
        lower = pool.submit(bottom)
        upper = ds.read(window=Window(0, 0, ds.width, half * factor), out_shape=(ds.count, half, w),
                        resampling=io_res)
        return np.concatenate([upper, lower.result()], axis=1)


def _reduce_level(level, k: int, how: str, nodata):
    """A level ``k`` times coarser than ``level`` ((data, alpha, (sx, sy)) of
    :func:`_build_level`), by blocks of k x k level pixels: ``average`` = mean of the
    valid pixels (integers rounded to nearest, as GDAL's average; a block without valid
    pixels is nodata), ``nearest`` = the block's centre pixel (the one GDAL's nearest
    decimation by k picks); an alpha/mask is sampled at the block's centre.  Blocks past the edge are partial: their missing
    pixels count as invalid."""
    data, alpha, (sx, sy) = level
    nb, h, w = data.shape
    oh, ow = -(-h // k), -(-w // k)
    if nodata is None:
        valid = alpha > 0
    elif isinstance(nodata, float) and math.isnan(nodata):
        valid = ~np.isnan(data)
    else:
        valid = data != nodata
    if valid.ndim == 2:
        valid = np.broadcast_to(valid, data.shape)
    if np.issubdtype(data.dtype, np.floating):
        valid = valid & ~np.isnan(data)  # GDAL's average skips NaN too
    c = k // 2
    rows = np.minimum(np.arange(oh) * k + c, h - 1)
    cols = np.minimum(np.arange(ow) * k + c, w - 1)
    # validity from an alpha/mask is sampled at the centre, as _build_level reads it
    new_alpha = None if alpha is None else alpha[rows][:, cols].copy()
    if how == "nearest":
        return data[:, rows][:, :, cols].copy(), new_alpha, (sx * k, sy * k)
    ph, pw = oh * k - h, ow * k - w
    v = np.pad(valid, ((0, 0), (0, ph), (0, pw)), constant_values=False).reshape(nb, oh, k, ow, k)
    d = np.pad(np.where(valid, data, 0), ((0, 0), (0, ph), (0, pw))).astype("float64").reshape(nb, oh, k, ow, k)
    n = v.sum(axis=(2, 4))
    total = d.sum(axis=(2, 4))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
    if np.issubdtype(data.dtype, np.integer):
        mean = np.floor(mean + 0.5)
    fill = 0 if nodata is None else nodata
    out = np.where(n > 0, mean, fill).astype(data.dtype)
    return out, new_alpha, (sx * k, sy * k)


def _affine_scale_translate(sx: float, sy: float, col: int, row: int):
    from affine import Affine

    return Affine.translation(col * sx, row * sy) * Affine.scale(sx, sy)


def _scaled(transform, sx: float, sy: float):
    from affine import Affine

    return transform * Affine.scale(sx, sy)
