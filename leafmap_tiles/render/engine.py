"""Reads tiles, points and statistics of registered sources with rio-tiler.

One :class:`RenderEngine` lives in the tile-server process.  Readers are opened once
per worker thread and kept in a bounded per-thread cache (GDAL datasets are not
thread-safe); statistics for the default stretch are computed once per source and
style key from an overview (``preview``, longest side 1024 px), never per tile.
Source descriptions and statistics are kept in LRU caches of ``cache_entries``
entries each (``LEAFMAP_TILES_CACHE_ENTRIES``, default :data:`CACHE_ENTRIES`), so a
stream of distinct styles cannot grow the process without bound.

Every failure is classified by :func:`leafmap_tiles.gdal_errors.classify`; a remote
source whose host failed is remembered by :class:`~leafmap_tiles.render.remote.RemoteHealth`
(fast answers during a back-off, GDAL's caches for it cleared before the next try).
"""

from __future__ import annotations

import math
import os
import threading
import time
import warnings
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from leafmap_tiles import _antimeridian
from leafmap_tiles._paths import check_local_path as check_local
from leafmap_tiles.errors import InvalidSourceError, LeafmapTilesError
from leafmap_tiles.gdal_errors import NETWORK_ERRORS, classify, is_outside, is_remote
from leafmap_tiles.protocol import SourceInfoJSON, is_mosaic, members
from leafmap_tiles.render import decimated, encode
from leafmap_tiles.render.colormaps import apply_explicit, lut_index
from leafmap_tiles.render.remote import RemoteHealth
from leafmap_tiles.render.style import Style, band_labels, evaluate_blocks

STRETCH_PERCENTILES = (2.0, 98.0)
STATS_MAX_SIZE = 1024
READERS_PER_THREAD = 64
CACHE_ENTRIES = 256


# Earth's ellipsoids (WGS 84, GRS 1980, Clarke, Airy, Bessel, Everest, Krassowsky, the
# authalic spheres ...) have semi-major axes between 6,370 and 6,380 km; other bodies'
# are far off (Venus 6,051.8 km, Mars 3,396.19 km, the Moon 1,737.4 km).
EARTH_SEMI_MAJOR_M = (6_350_000.0, 6_400_000.0)


def check_earth_crs(path: str, crs) -> None:
    """Raise :class:`InvalidSourceError` when ``crs`` (a rasterio CRS) is not on the
    Earth (its ellipsoid's semi-major axis is outside :data:`EARTH_SEMI_MAJOR_M`):
    such a raster cannot be placed on an Earth basemap."""
    import pyproj

    try:
        ell = pyproj.CRS.from_user_input(crs.to_wkt()).ellipsoid
    except Exception:
        return  # PROJ cannot tell; the bounds transform reports real problems
    if ell is None or ell.semi_major_metre is None:
        return
    a = float(ell.semi_major_metre)
    if not EARTH_SEMI_MAJOR_M[0] <= a <= EARTH_SEMI_MAJOR_M[1]:
        raise InvalidSourceError(
            f"{path}: its CRS ({crs.to_string() if crs.to_epsg() else pyproj.CRS.from_user_input(crs.to_wkt()).name}) "
            f"is on the ellipsoid {ell.name!r} with a semi-major axis of {a / 1000:,.1f} km, not the Earth's "
            "(about 6,378 km): a raster of another planet or moon cannot be shown on an Earth map"
        )


def default_cache_entries() -> int:
    """Entries of each of the engine's LRU caches (source descriptions, statistics,
    parsed styles): ``LEAFMAP_TILES_CACHE_ENTRIES`` (:mod:`leafmap_tiles.settings`,
    default :data:`CACHE_ENTRIES`)."""
    from leafmap_tiles import settings

    return settings.current().cache_entries


@dataclass
class SourceInfo:
    """What the tile server reports about a source (``/info``).

    ``bounds`` is (west, south, east, north) in EPSG:4326 degrees; west > east when
    the raster crosses the antimeridian.  ``native_bounds`` are in ``crs``.
    """

    path: str
    width: int
    height: int
    count: int
    visible_count: int
    alpha_index: int | None
    dtype: str
    nodata: float | None
    crs: str | None
    bounds: tuple[float, float, float, float]
    native_bounds: tuple[float, float, float, float]
    band_names: list[str]
    band_descriptions: list[str]
    scales: list[float]
    offsets: list[float]
    has_palette: bool
    minzoom: int
    maxzoom: int
    overviews: list[int]
    gcps: bool
    statistics: dict = field(default_factory=dict)

    def to_json(self) -> SourceInfoJSON:
        """The JSON of ``/info`` (:class:`leafmap_tiles.protocol.SourceInfoJSON`; NaN
        nodata as ``"nan"``)."""
        d: Any = asdict(self)
        if self.nodata is not None and math.isnan(self.nodata):
            d["nodata"] = "nan"
        return d

    def default_indexes(self) -> tuple[int, ...]:
        visible = [i for i in range(1, self.count + 1) if i != self.alpha_index]
        if self.has_palette:
            return (1,)
        return tuple(visible[:3]) if len(visible) >= 3 else (visible[0],)


def _jsonable(v):
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


class _SharedReader:
    """One entry of :meth:`RenderEngine.shared_reader`: a reader (opened by its first
    user) and the lock its users hold; ``retired`` once evicted, closed by whoever
    holds it last."""

    __slots__ = ("reader", "lock", "retired")

    def __init__(self) -> None:
        self.reader = None
        self.lock = threading.Lock()
        self.retired = False

    def retire(self) -> None:
        """No longer handed out; its dataset is closed now, or by its holder on release."""
        self.retired = True
        if self.lock.acquire(blocking=False):
            try:
                if self.reader is not None:
                    try:
                        self.reader.close()
                    except Exception:
                        pass
                    self.reader = None
            finally:
                self.lock.release()


class RenderEngine:
    """Stateless about sources except caches: every call names the source by its
    ``path`` (a local path or URL, or a tuple of them for a mosaic); :meth:`forget`
    drops what is cached for a path.

    Args:
        cache_entries: size of each LRU cache (descriptions, statistics); default
            :data:`CACHE_ENTRIES` or ``LEAFMAP_TILES_CACHE_ENTRIES``.
        health: memory of failed remote hosts (default: a new :class:`RemoteHealth`).
    """

    def __init__(self, cache_entries: int | None = None, health: RemoteHealth | None = None) -> None:
        from cachetools import LRUCache

        self._local = threading.local()
        self._generation = 0
        self.cache_entries = cache_entries or default_cache_entries()
        self._stats: LRUCache = LRUCache(self.cache_entries)
        self._stats_lock = threading.Lock()
        self._info: LRUCache = LRUCache(self.cache_entries)
        self.health = health or RemoteHealth()
        self._epochs: dict[str, int] = {}  # per URL: bumped after a network failure
        self._src_res: LRUCache = LRUCache(max(64, self.cache_entries))
        self._shared: OrderedDict = OrderedDict()  # reader key -> _SharedReader (shared_reader)
        self._shared_lock = threading.Lock()
        self._cost: dict[tuple, float] = {}
        self.levels = decimated.Levels()  # decimated copies of rasters lacking overviews
        self.far_reads = 0  # tiles read by the far-zoom path (a debug counter for tests)
        # ``background(key, fn)`` runs fn when the server is idle (set by the server,
        # e.g. Scheduler.submit_background); None: nothing is built ahead of need
        self.background = None

    # ------------------------------------------------------------ failures
    def _failure(self, path, exc: BaseException, during: str, t0: float):
        """Classify ``exc`` (raised by a call on ``path`` that started at ``t0``,
        ``time.monotonic()``) and remember a network failure of a remote path."""
        err = classify(path, exc, during, elapsed=time.monotonic() - t0)
        if isinstance(path, str) and is_remote(path):
            if isinstance(err, NETWORK_ERRORS):
                with self._stats_lock:
                    self._epochs[path] = self._epochs.get(path, 0) + 1  # reopen on the next try
                self.health.failed(path, err)
            else:
                self.health.ok(path)
        return err

    def _succeeded(self, path) -> None:
        if isinstance(path, str):
            self.health.ok(path)

    def read_failure(self, path, exc: BaseException, t0: float):
        """The specific error for a failed read of ``path`` by a caller outside the
        engine (e.g. :mod:`leafmap_tiles.render.terracotta`), remembered like the
        engine's own failures; ``t0`` is when the read started (``time.monotonic()``)."""
        return self._failure(path, exc, "read", t0)

    def read_succeeded(self, path) -> None:
        """A caller outside the engine read ``path`` successfully."""
        self._succeeded(path)

    # ------------------------------------------------------------------ readers
    def _readers(self) -> OrderedDict:
        cache = getattr(self._local, "readers", None)
        if cache is None or getattr(self._local, "generation", None) != self._generation:
            for rdr in (cache or {}).values():  # opened before invalidate_all(): reopen
                try:
                    rdr.close()
                except Exception:
                    pass
            cache = self._local.readers = OrderedDict()
            self._local.generation = self._generation
        return cache

    def reader(self, path: str, nodata: float | None = None):
        """The calling thread's rio-tiler Reader for ``path`` (opened on first use)."""
        from leafmap_tiles.render.reader import Reader

        if is_remote(path):
            self.health.check(path)  # raises at once while a failed host is in back-off
        key = (path, None if nodata is None else repr(nodata), self._generation, file_signature(path),
               self._epochs.get(path, 0))
        cache = self._readers()
        rdr = cache.get(key)
        if rdr is not None:
            cache.move_to_end(key)
            return rdr
        options = {} if nodata is None else {"nodata": nodata}
        t0 = time.monotonic()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                rdr = Reader(path, options=options)
            except Exception as exc:
                raise self._failure(path, exc, "open", t0) from None
        cache[key] = rdr
        while len(cache) > READERS_PER_THREAD:
            _, old = cache.popitem(last=False)
            try:
                old.close()
            except Exception:
                pass
        return rdr

    @contextmanager
    def shared_reader(self, path: str, nodata: float | None = None):
        """``with engine.shared_reader(path) as rdr:`` one rio-tiler Reader of ``path``
        for every thread, held by the calling thread alone inside the block (one lock
        per dataset: GDAL datasets are not thread-safe, but may change threads between
        calls).  For work that reads the same pixels from whichever thread runs it,
        e.g. the frames of an area series: with one dataset per source, not one per
        thread, each block sits once in GDAL's block cache (``GDAL_CACHEMAX``), where
        per-thread readers cached it once per thread and, for a 40-frame series on 4
        threads, overflowed the cache so that every call decompressed its blocks again.
        Keep the block short (a read); opening failures raise as :meth:`reader`."""
        from leafmap_tiles.render.reader import Reader

        if is_remote(path):
            self.health.check(path)
        key = (path, None if nodata is None else repr(nodata), self._generation, file_signature(path),
               self._epochs.get(path, 0))
        while True:
            with self._shared_lock:
                entry = self._shared.get(key)
                if entry is None:
                    entry = self._shared[key] = _SharedReader()
                self._shared.move_to_end(key)
                evicted = []
                while len(self._shared) > self.cache_entries:
                    evicted.append(self._shared.popitem(last=False)[1])
            for old in evicted:
                old.retire()
            entry.lock.acquire()
            if not entry.retired:
                break
            entry.lock.release()  # evicted meanwhile: take (or make) the current entry
            entry.retire()
        try:
            if entry.reader is None:
                options = {} if nodata is None else {"nodata": nodata}
                t0 = time.monotonic()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        entry.reader = Reader(path, options=options)
                    except Exception as exc:
                        raise self._failure(path, exc, "open", t0) from None
            yield entry.reader
        finally:
            entry.lock.release()
            if entry.retired:
                entry.retire()

    def _retire_shared(self) -> None:
        with self._shared_lock:
            old = list(self._shared.values())
            self._shared.clear()
        for entry in old:
            entry.retire()

    def invalidate_all(self) -> None:
        """Reopen every dataset on next use (after credentials or GDAL options change)."""
        with self._stats_lock:
            self._generation += 1  # each worker thread drops its readers on next use
            self._stats.clear()
            self._info.clear()
        self._retire_shared()
        self.health.reset()
        self.levels.clear()

    def forget(self, path) -> None:
        """Drop the cached descriptions, statistics, decimated levels and failure state
        of ``path``."""
        self.levels.forget(path)
        paths = set(members(path))
        with self._shared_lock:
            gone = [self._shared.pop(k) for k in [k for k in self._shared if k[0] in paths]]
        for entry in gone:
            entry.retire()
        with self._stats_lock:
            for k in [k for k in list(self._stats.keys()) if k[0] == path]:
                self._stats.pop(k, None)
            for k in [k for k in list(self._info.keys()) if k[0] == path]:
                self._info.pop(k, None)
        for p in members(path):
            if is_remote(p):
                self.health.reset(p)

    def retry(self, path) -> None:
        """Before an explicit new attempt on ``path`` (a registration): forget its
        remembered network failures and GDAL's caches for it, so the host is asked again."""
        for p in members(path):
            if is_remote(p) and p in self.health.failing():
                self.health.reset(p)
                with self._stats_lock:
                    self._epochs[p] = self._epochs.get(p, 0) + 1

    # --------------------------------------------------------------------- info
    def info(self, path: str, nodata: float | None = None) -> SourceInfo:
        """Open ``path`` and describe it; raises a specific error if it is not a
        readable, georeferenced raster (checked by reading its smallest overview, and
        for a local file the full-resolution blocks of :meth:`check_readable`), once
        per state of the file."""
        key = (path, None if nodata is None else repr(nodata), file_signature(path))
        with self._stats_lock:
            cached = self._info.get(key)
        if cached is not None:
            return cached
        if is_mosaic(path):
            info = _mosaic_info([self.info(p, nodata) for p in path])
            with self._stats_lock:
                self._info[key] = info
            return info
        check_local(path)
        rdr = self.reader(path, nodata)
        t0 = time.monotonic()
        try:
            info = self._describe(path, nodata, rdr)
        except LeafmapTilesError:
            raise
        except Exception as exc:  # e.g. a truncated header found while reading band metadata
            raise self._failure(path, exc, "open", t0) from None
        if not is_remote(path):
            # a local file rewritten in place (new state) is described only if its pixels
            # can be read: a truncated copy's header and overviews may still read
            self.check_readable(path)
        with self._stats_lock:
            self._info[key] = info
        return info

    def _describe(self, path: str, nodata, rdr) -> SourceInfo:
        ds = rdr.dataset
        raw_count, has_gcps = _raw_layout(path, ds)
        if ds.crs is None:
            raise InvalidSourceError(
                f"{path} has no georeference (no CRS, geotransform or GCPs); "
                "give a GeoTIFF/COG, or a numpy array with crs= and transform="
            )
        check_earth_crs(path, ds.crs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                bounds = tuple(float(v) for v in rdr.get_geographic_bounds(_wgs84()))
            except Exception as exc:
                raise InvalidSourceError(f"{path}: cannot transform its bounds to EPSG:4326 ({exc})") from None
        if _antimeridian.is_global_width(ds.crs, ds.bounds):
            bounds = _data_bounds(rdr, bounds)  # zoom to the data (e.g. only near 180°)
        if ds.crs.is_geographic:
            w, s_, e, n = (float(v) for v in ds.bounds)
            if not (-90.001 <= min(s_, n) and max(s_, n) <= 90.001 and -360.001 <= min(w, e) and max(w, e) <= 720.001):
                raise InvalidSourceError(
                    f"{path}: its bounds {tuple(round(v, 3) for v in ds.bounds)} in {ds.crs.to_string()} lie "
                    "outside the globe (latitude beyond +-90): the geotransform is wrong (for xarray, "
                    "set the spatial dimensions with da.rio.set_spatial_dims(x_dim=..., y_dim=...))"
                )
        alpha_index = None
        from rasterio.enums import ColorInterp, MaskFlags

        for i, ci in enumerate(ds.colorinterp, start=1):
            if ci == ColorInterp.alpha or MaskFlags.alpha in ds.mask_flag_enums[i - 1] and ci == ColorInterp.alpha:
                alpha_index = i
        if has_gcps and alpha_index and alpha_index > raw_count:
            alpha_index = None  # the alpha band was added by rio-tiler's WarpedVRT
        count = raw_count
        visible = count - (1 if alpha_index else 0)
        try:
            palette = bool(rdr.colormap)
        except Exception:
            palette = False
        descs = [d or "" for d in ds.descriptions]
        eff_nodata = nodata if nodata is not None else ds.nodata
        try:
            minzoom, maxzoom = int(rdr.minzoom), int(rdr.maxzoom)
        except Exception:
            minzoom, maxzoom = 0, 22
        # rio-tiler's is too low across the antimeridian; the centre pixel's size is too
        # coarse where the centre is a pole of Web Mercator (polar rasters): the finer
        native = _native_maxzoom(ds)
        if native is not None and native > maxzoom:
            maxzoom = native
            minzoom = min(minzoom, maxzoom)
        info = SourceInfo(
            path=path,
            width=ds.width,
            height=ds.height,
            count=count,
            visible_count=visible,
            alpha_index=alpha_index,
            dtype=str(ds.dtypes[0]),
            nodata=None if eff_nodata is None else float(eff_nodata),
            crs=ds.crs.to_string() if ds.crs else None,
            bounds=bounds,  # type: ignore[arg-type]
            native_bounds=tuple(float(v) for v in ds.bounds),  # type: ignore[arg-type]
            band_names=[f"b{i}" for i in range(1, count + 1)],
            band_descriptions=descs[:count],
            scales=[float(s) for s in ds.scales][:count],
            offsets=[float(o) for o in ds.offsets][:count],
            has_palette=palette,
            minzoom=minzoom,
            maxzoom=maxzoom,
            overviews=list(ds.overviews(1)) if not has_gcps else [],
            gcps=has_gcps,
        )
        return info

    def check_readable(self, path) -> None:
        """Read the full-resolution blocks at the corners and centre of band 1, so that
        a truncated or corrupt file fails at registration, not on some tiles later."""
        import rasterio
        from rasterio.windows import Window

        if is_mosaic(path):
            for p in path:
                self.check_readable(p)
            return
        if is_remote(path):
            self.health.check(path)
        t0 = time.monotonic()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                with rasterio.open(path) as ds:
                    h, w = ds.height, ds.width
                    for r, c in ((0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1), (h // 2, w // 2)):
                        ds.read(1, window=Window(c, r, 1, 1))
            except Exception as exc:
                raise self._failure(path, exc, "read", t0) from None
        self._succeeded(path)

    # ------------------------------------------------------------- statistics
    def statistics(self, path: str, style: Style) -> list[dict]:
        """Per output band: ``min``, ``max``, ``mean``, ``std``, ``p2``, ``p98``,
        ``valid_percent``, computed once from a preview whose longest side is 1024 px
        (nearest resampling) and cached.  For an expression, of its float result."""
        key = (path, file_signature(path)) + style.stats_key()
        with self._stats_lock:
            cached = self._stats.get(key)
        if cached is not None:
            return cached
        info = self.info(path, style.nodata)
        indexes = style.indexes or info.default_indexes()
        per_band: list[list[np.ndarray]] = []
        totals = 0
        for member in members(path):
            rdr = self.reader(member, style.nodata)
            t0 = time.monotonic()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    img = rdr.preview(indexes=indexes, max_size=STATS_MAX_SIZE)
                except Exception as exc:
                    raise self._failure(member, exc, "read", t0) from None
            self._succeeded(member)
            data, valid = _band_data(img, style)
            totals += valid[0].size
            for b in range(data.shape[0]):
                if len(per_band) <= b:
                    per_band.append([])
                per_band[b].append(data[b][valid[b]])
        out = []
        for b in range(len(per_band)):
            vals = np.concatenate(per_band[b])
            if vals.size == 0:
                out.append({"min": None, "max": None, "mean": None, "std": None, "p2": None, "p98": None, "valid_percent": 0.0})
                continue
            p2, p98 = np.percentile(vals, STRETCH_PERCENTILES)
            out.append(
                {
                    "min": _jsonable(vals.min()),
                    "max": _jsonable(vals.max()),
                    "mean": _jsonable(vals.mean()),
                    "std": _jsonable(vals.std()),
                    "p2": _jsonable(p2),
                    "p98": _jsonable(p98),
                    "valid_percent": round(100.0 * vals.size / totals, 4),
                }
            )
        with self._stats_lock:
            self._stats[key] = out
        return out

    def stretch_mode(self, path, style: Style) -> str:
        """The stretch that fills in a missing ``vmin``/``vmax``: the style's
        ``stretch``, else ``"none"`` for 8-bit RGB(A) (three uint8 bands shown, no
        expression: drawn as they are, as QGIS, rio-tiler and TiTiler draw them), else
        ``"percentile"``."""
        if style.stretch is not None:
            return style.stretch
        info = self.info(path, style.nodata)
        if (info.dtype == "uint8" and style.expression is None and not self.uses_palette(info, style)
                and len(style.indexes or info.default_indexes()) == 3):
            return "none"
        return "percentile"

    def stretch(self, path: str, style: Style) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(vmin, vmax)`` per output band: the style's, else from the stretch mode
        (:meth:`stretch_mode`): ``"percentile"`` the 2nd/98th percentiles, ``"minmax"``
        the minimum and maximum (both of the preview), ``"none"`` the full range of
        the integer dtype (0..255 for uint8)."""
        if style.vmin is not None and style.vmax is not None:
            return style.vmin, style.vmax
        mode = self.stretch_mode(path, style)
        if mode == "none":  # parse_style allows it for integer bands only
            info = self.info(path, style.nodata)
            dt = np.iinfo(np.dtype(info.dtype))
            n = len(style.indexes or info.default_indexes())
            ends = [(float(dt.min), float(dt.max))] * n
        else:
            lo_key, hi_key = ("p2", "p98") if mode == "percentile" else ("min", "max")
            ends = [(s[lo_key], s[hi_key]) for s in self.statistics(path, style)]
        vmin, vmax = [], []
        for i, (d_lo, d_hi) in enumerate(ends):
            lo = style.vmin[i] if style.vmin is not None else (d_lo if d_lo is not None else 0.0)
            hi = style.vmax[i] if style.vmax is not None else (d_hi if d_hi is not None else 1.0)
            if hi <= lo:  # a constant band: show its value at full intensity, not as black
                lo = hi - 1.0 if style.vmin is None else lo
                hi = lo + 1.0 if hi <= lo else hi
            vmin.append(float(lo))
            vmax.append(float(hi))
        return tuple(vmin), tuple(vmax)

    # ---------------------------------------------------------------- tiles
    def uses_palette(self, info: SourceInfo, style: Style) -> bool:
        return (
            info.has_palette
            and style.colormap is None
            and style.expression is None
            and style.indexes in (None, (1,))
        )

    def tile(self, path: str, style: Style, z: int, x: int, y: int, fmt: str = "PNG") -> bytes:
        """Encoded ``fmt`` image of Web Mercator tile ``z/x/y`` (``style.tile_size``
        pixels square).  Pixels without data are transparent; a tile outside the
        raster is a fully transparent image."""
        info = self.info(path, style.nodata)
        ts = style.tile_size
        palette = self.uses_palette(info, style)
        resampling = "nearest" if (palette or style.explicit) else style.resampling
        indexes = style.indexes or info.default_indexes()
        img = self._read_tile(path, style, z, x, y, indexes, resampling)
        if img is None:
            return encode.empty_png(ts) if fmt == "PNG" else self._encode_empty(ts, fmt)
        if palette:
            data = img.array.data[0]
            valid = _valid_any(img)
            cmap = self.reader(members(path)[0], style.nodata).colormap
            if data.dtype == np.uint8 and max(cmap) < 256:
                from rio_tiler.colormap import make_lut

                lut = make_lut(cmap)
                return self._encode_lut(data, valid, lut, fmt)
            rgba = apply_explicit(data, ~valid, {k: tuple(v) for k, v in cmap.items()})
            return self._encode_rgba(rgba, fmt)
        if style.explicit:
            data, valid = _band_data(img, style)
            rgba = apply_explicit(data[0], ~valid[0], style.colormap.explicit)
            return self._encode_rgba(rgba, fmt)
        data, valid_b = _band_data(img, style)
        vmin, vmax = self.stretch(path, style)
        valid = _pixel_valid(valid_b, style)
        if style.colormap is not None and data.shape[0] == 1:
            return self._encode_colormap(path, style, data[0], valid, vmin[0], vmax[0], (z, x, y), fmt)
        # GDAL's per-dataset mask rule: a pixel is drawn where any band has data, with
        # every band's own value (a band equal to nodata is not zeroed)
        scaled = _rescale(data, _drawn_bands(data, valid), vmin, vmax)
        if scaled.shape[0] == 1:
            if fmt == "PNG":
                return encode.png_grey_alpha(scaled[0], valid.astype(np.uint8) * 255)
            return encode.encode_gdal(scaled, valid.astype(np.uint8) * 255, fmt)
        alpha = valid.astype(np.uint8) * 255
        if fmt == "PNG":
            return encode.png_rgba(np.dstack([scaled[0], scaled[1], scaled[2], alpha]))
        return encode.encode_gdal(scaled[:3], alpha, fmt)

    def _member_tile(self, path: str, x: int, y: int, z: int, style: Style, **kwargs):
        """One file's tile as rio-tiler ImageData, NaN masked; None outside it."""
        rdr = self.reader(path, style.nodata)
        if not rdr.tile_exists(x, y, z):
            return None
        t0 = time.monotonic()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                img = self._far_tile(path, rdr, x, y, z, style, **kwargs)
                if img is False:  # near the native zoom: rio-tiler's own path
                    img = rdr.tile(x, y, z, **kwargs)
            except Exception as exc:
                if type(exc).__name__ == "TileOutsideBounds":
                    return None
                raise self._failure(path, exc, "read", t0) from None
        self._succeeded(path)
        if img is None:
            return None
        if np.issubdtype(img.array.dtype, np.floating):
            img.array.mask = np.ma.getmaskarray(img.array) | np.isnan(img.array.data)
        return img

    def _far_tile(self, path, rdr, x: int, y: int, z: int, style: Style, *, tilesize, indexes,
                  resampling_method, reproject_method):
        """Tile z/x/y read by :mod:`~leafmap_tiles.render.decimated` (the window the tile
        covers, at the tile's resolution) when its pixels are at least
        ``decimated.MIN_DECIMATION`` times those of the raster's best overview; ``False``
        where rio-tiler's ``Reader.tile`` is fast (near the native zoom, or an overview
        close to the tile's resolution) and its pixels are kept; ``None`` when the tile
        does not meet the raster."""
        from rasterio.vrt import WarpedVRT
        from rio_tiler.models import ImageData

        ds = rdr.dataset
        if isinstance(ds, WarpedVRT):  # GCP-only files: rio-tiler's path
            return False
        key = (path, file_signature(path))
        bounds = tuple(rdr.tms.xy_bounds(x, y, z))
        info = self.info(path, style.nodata)
        nodata = rdr.options.get("nodata", ds.nodata)
        alpha_index = info.alpha_index if nodata is None else None
        dec = decimated.decimation(ds, bounds, tilesize, self.resolution(key, ds) or None)
        # rio-tiler's VRT has at most ~dec^2 tile areas of pixels (fewer with overviews):
        # near the native zoom the cost model (a GDAL warp suggestion) is not needed
        if not decimated.could_use_decimated(dec, resampling_method) or not decimated.use_decimated(
                self.rio_tiler_cost(key, ds, bounds, z, tilesize, info.overviews, nodata is not None),
                resampling_method, dec):
            self.build_ahead(path, ds, indexes, nodata, alpha_index, resampling_method)
            return False
        arr = decimated.read_tile(
            ds, bounds, tilesize, tilesize, indexes, nodata=nodata, alpha_index=alpha_index,
            resampling=resampling_method, reproject=reproject_method, dec=dec,
            levels=self.levels, level_key=key,
        )
        if arr is None or np.ma.getmaskarray(arr).all():
            return None
        self.far_reads += 1
        return ImageData(arr, bounds=bounds, crs=rdr.tms.rasterio_crs,
                         band_names=[f"b{i}" for i in indexes], nodata=nodata)

    def build_ahead(self, path, ds, indexes, nodata, alpha_index, resampling: str) -> None:
        """While a local raster without overviews is viewed near its native zoom,
        have its first decimated level built in the background (see
        :func:`decimated.base_level_job`), so that zooming out does not wait for a
        full read of the file.  Arguments as :func:`decimated.read_tile`'s."""
        if self.background is None or not isinstance(path, str) or is_remote(path):
            return
        job = decimated.base_level_job(ds, path, indexes, nodata=nodata, alpha_index=alpha_index,
                                       resampling=resampling, levels=self.levels,
                                       level_key=(path, file_signature(path)))
        if job is not None:
            self.background(("levels", path), job)

    def resolution(self, key, ds) -> float:
        """Pixel size (EPSG:3857 metres) at the raster's centre, once per file state."""
        with self._stats_lock:
            hit = self._src_res.get(key)
        if hit is None:
            hit = decimated.source_resolution_in_3857(ds) or 0.0
            with self._stats_lock:  # an LRU (bounded); cachetools caches need a lock
                self._src_res[key] = hit
        return hit

    def rio_tiler_cost(self, key, ds, bounds, z: int, tilesize: int, overviews, nodata: bool = False) -> float:
        """:func:`decimated.rio_tiler_cost` of a tile, cached per file state, zoom,
        size and whether a nodata value applies, while the tile's window is far smaller
        than the raster (then the cost depends on the zoom only); tiles that see most
        of the raster are computed."""
        ck = (key, z, tilesize, nodata)
        hit = self._cost.get(ck)
        if hit is not None:
            return hit
        win = decimated.source_window(ds, bounds)
        if win is None:
            return 0.0
        cost = decimated.rio_tiler_cost(ds, bounds, tilesize, tilesize, overviews, win, nodata=nodata)
        if win.width < ds.width / 2 and win.height < ds.height / 2:
            with self._stats_lock:  # shared by the render threads
                if len(self._cost) > 8192:
                    self._cost.clear()
                self._cost[ck] = cost
        return cost

    def _read_tile(self, path, style: Style, z: int, x: int, y: int, indexes, resampling):
        """ImageData of tile z/x/y, or None where there is no data.  A mosaic (tuple of
        paths) takes each pixel from the first member that has data there
        (rio-tiler ``mosaic_reader`` with ``FirstMethod``)."""
        kwargs = dict(tilesize=style.tile_size, indexes=indexes,
                      resampling_method=resampling, reproject_method=resampling)
        if not is_mosaic(path):
            return self._member_tile(path, x, y, z, style, **kwargs)
        from rio_tiler.errors import EmptyMosaicError, TileOutsideBounds
        from rio_tiler.mosaic import mosaic_reader

        def member(p, *args, **kw):
            img = self._member_tile(p, x, y, z, style, **kw)
            if img is None:
                raise TileOutsideBounds(f"{p} does not cover tile {z}/{x}/{y}")
            return img

        try:
            img, _ = mosaic_reader(list(path), member, threads=1, **kwargs)
        except EmptyMosaicError:
            return None
        return img

    def _encode_colormap(self, path, style: Style, band, valid, vmin, vmax, zxy, fmt):
        """A single band through a colormap table, coloured as matplotlib's imshow
        colours it (:func:`~leafmap_tiles.render.colormaps.lut_index`): under/over
        colours outside [vmin, vmax]; nodata pixels inside the raster get the bad
        colour (transparent by default); outside the raster stays transparent."""
        cmap = style.colormap
        idx = lut_index(cmap, band, vmin, vmax)
        table = cmap.table()
        transparent = ~valid
        if cmap.bad_visible and transparent.any():
            inside = self._inside(path, zxy, style.tile_size)
            idx[transparent & inside] = cmap.n + 2
            transparent &= ~inside
        shown = ~transparent
        top = int(idx[shown].max()) if shown.any() else 0
        if fmt == "PNG" and top < 256:
            pal = np.zeros((256, 4), dtype=np.uint8)
            k = min(len(table), 256)
            pal[:k] = table[:k]
            return encode.png_lut(np.where(shown, idx, 0).astype(np.uint8), shown, pal)
        rgba = table[idx]
        rgba[transparent] = 0
        return self._encode_rgba(rgba, fmt)

    def _inside(self, path, zxy, ts: int) -> np.ndarray:
        """(ts, ts) bool: which pixels of Web Mercator tile ``zxy`` lie inside the
        raster's grid (any member of a mosaic), whatever their values."""
        import morecantile
        from rasterio.warp import transform as warp_xy

        z, x, y = zxy
        b = morecantile.tms.get("WebMercatorQuad").xy_bounds(x, y, z)
        step_x, step_y = (b.right - b.left) / ts, (b.top - b.bottom) / ts
        cols = b.left + (np.arange(ts) + 0.5) * step_x
        rows = b.top - (np.arange(ts) + 0.5) * step_y
        xx, yy = np.meshgrid(cols, rows)
        out = np.zeros((ts, ts), dtype=bool)
        for member in members(path):
            ds = self.reader(member).dataset
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sx, sy = warp_xy("EPSG:3857", ds.crs, xx.ravel(), yy.ravel())
            c, r = ~ds.transform * (np.asarray(sx), np.asarray(sy))
            c, r = np.asarray(c).reshape(ts, ts), np.asarray(r).reshape(ts, ts)
            with np.errstate(invalid="ignore"):
                out |= (c >= 0) & (c < ds.width) & (r >= 0) & (r < ds.height)
        return out

    def _encode_lut(self, index, valid, lut, fmt):
        if fmt == "PNG":
            return encode.png_lut(index, valid, lut)
        rgba = lut[index]
        rgba[~valid] = 0
        return self._encode_rgba(rgba, fmt)

    def _encode_rgba(self, rgba, fmt):
        if fmt == "PNG":
            return encode.png_rgba(rgba)
        bands = np.ascontiguousarray(np.moveaxis(rgba[..., :3], -1, 0))
        return encode.encode_gdal(bands, rgba[..., 3].copy(), fmt)

    def _encode_empty(self, ts, fmt):
        return self._encode_rgba(np.zeros((ts, ts, 4), dtype=np.uint8), fmt)

    # ---------------------------------------------------------------- points
    def point(self, path: str, style: Style, lon: float, lat: float) -> dict:
        """Values at (``lon``, ``lat``) EPSG:4326: ``{"inside": bool, "values": [...],
        "bands": [...]}`` with ``None`` for nodata/NaN/masked.  Values are raw (no
        scale/offset); an expression gives its float result.  Each band's value is
        ``None`` where that band is nodata (rasterio's masked read; the tiles still
        draw such a pixel while another band has data); ``style.nodata`` replaces the
        file's nodata."""
        info = self.info(path, style.nodata)
        if is_mosaic(path):
            first = None
            for member in path:
                out = self.point(member, style, lon, lat)
                if out["inside"] and any(v is not None for v in out["values"]):
                    return out
                first = first or (out if out["inside"] else None)
            return first or out
        rdr = self.reader(path, style.nodata)
        indexes = style.indexes or tuple(i for i in range(1, info.count + 1) if i != info.alpha_index)
        t0 = time.monotonic()
        lon = lon if -180.0 <= lon < 180.0 else (lon + 180.0) % 360.0 - 180.0  # any world copy
        # a geographic raster may run from 0 to 360 degrees east: the same meridian there
        tries = [lon, lon + 360.0 if lon < 0 else lon - 360.0] if rdr.crs.is_geographic else [lon]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for k, x in enumerate(tries):
                try:
                    pt = rdr.point(x, lat, indexes=indexes)
                    break
                except Exception as exc:
                    if not is_outside(exc):
                        raise self._failure(path, exc, "read", t0) from None
                    if k == len(tries) - 1:
                        n = 1 if style.expression else len(indexes)
                        return {"inside": False, "values": [None] * n, "bands": band_labels(style, indexes)}
        self._succeeded(path)
        arr = pt.array
        data = np.asarray(arr.data, dtype="float64")
        mask = np.ma.getmaskarray(arr) | ~np.isfinite(data)
        if style.expression:
            from rio_tiler.expression import get_expression_blocks

            blocks = get_expression_blocks(style.expression)
            names = [f"b{i}" for i in indexes]
            res = evaluate_blocks(blocks, names, data.reshape(-1, 1, 1)).reshape(-1)
            m = bool(mask.any())
            values = [None if (m or not math.isfinite(v)) else float(v) for v in res]
        else:  # per band, as rasterio's masked read and rio-tiler's point give them
            values = [None if mask[i] else _native(data[i], info.dtype) for i in range(len(data))]
        return {"inside": True, "values": values, "bands": band_labels(style, indexes)}


def _data_bounds(rdr, bounds: tuple) -> tuple:
    """(W, S, E, N) EPSG:4326 of the valid pixels of a global-width geographic raster,
    from its preview (longest side 1024 px, any band valid): W > E when they wrap
    across the antimeridian; ``bounds`` unchanged when no pixel is valid."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            img = rdr.preview(max_size=STATS_MAX_SIZE)
        except Exception:
            return bounds
    valid = _valid_any(img)
    if np.issubdtype(img.array.dtype, np.floating):
        valid &= ~np.logical_and.reduce(np.isnan(img.array.data))
    if not valid.any():
        return bounds
    w, s_, e, n = (float(v) for v in rdr.dataset.bounds)
    h, wd = valid.shape
    dx, dy = (e - w) / wd, (n - s_) / h
    cols = np.flatnonzero(valid.any(axis=0))
    span = _antimeridian.data_span(w + (cols + 0.5) * dx, dx)
    rows = np.flatnonzero(valid.any(axis=1))
    north, south = n - rows[0] * dy, n - (rows[-1] + 1) * dy
    return (span[0], max(south, -90.0), span[1], min(north, 90.0))


def _native_maxzoom(ds) -> int | None:
    """Web Mercator zoom whose pixel size matches the raster's own at its centre
    (morecantile ``zoom_for_res`` on :func:`decimated.source_resolution_in_3857`)."""
    import morecantile

    res = decimated.source_resolution_in_3857(ds)
    if res is None:
        return None
    try:
        return int(morecantile.tms.get("WebMercatorQuad").zoom_for_res(res))
    except Exception:
        return None


def file_signature(path) -> tuple | None:
    """(mtime_ns, size, inode) of a local file, ``("s3", etag, size, last-modified)``
    of an S3 object (checked at most every ``LEAFMAP_TILES_REMOTE_RASTER_TTL`` seconds,
    :mod:`leafmap_tiles.render.versions`), a tuple of them for a mosaic, None for
    other URLs: part of every cache key, so a file rewritten at the same path (an
    object uploaded again under the same key) is read again."""
    from leafmap_tiles._paths import is_s3
    from leafmap_tiles.render.versions import VERSIONS

    if is_mosaic(path):
        return tuple(file_signature(p) for p in path)
    if is_s3(path):
        version = VERSIONS.signature(path)
        return None if version is None else ("s3",) + tuple(version)
    try:
        st = os.stat(path)
    except (OSError, ValueError, TypeError):
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _mosaic_info(members: list[SourceInfo]) -> SourceInfo:
    """One description of several files shown as one mosaic: same band count and
    dtype required; bounds are the union; values (nodata, scales) from the first."""
    first = members[0]
    for m in members[1:]:
        if (m.count, m.dtype) != (first.count, first.dtype):
            raise InvalidSourceError(
                f"cannot mosaic {first.path} ({first.count} x {first.dtype}) with "
                f"{m.path} ({m.count} x {m.dtype}): band count and dtype must match"
            )
    w = min(m.bounds[0] for m in members)
    s_ = min(m.bounds[1] for m in members)
    e = max(m.bounds[2] for m in members)
    n = max(m.bounds[3] for m in members)
    return SourceInfo(
        **{**asdict(first), "path": [m.path for m in members], "bounds": (w, s_, e, n),
           "native_bounds": first.native_bounds,
           "minzoom": min(m.minzoom for m in members), "maxzoom": max(m.maxzoom for m in members)}
    )


def _native(v: float, dtype: str):
    return int(v) if np.issubdtype(np.dtype(dtype), np.integer) else float(v)


def _wgs84():
    from rasterio.crs import CRS

    return CRS.from_epsg(4326)


def _raw_layout(path: str, ds) -> tuple[int, bool]:
    """Band count of the file itself and whether it is georeferenced by GCPs only
    (rio-tiler then reads it through a WarpedVRT that adds an alpha band)."""
    from rasterio.vrt import WarpedVRT

    if not isinstance(ds, WarpedVRT):
        return ds.count, False
    return ds.src_dataset.count, bool(ds.src_dataset.gcps[0])


def _valid_any(img) -> np.ndarray:
    """(H, W) bool: pixels where any band has data (GDAL's per-dataset mask rule)."""
    m = np.ma.getmaskarray(img.array)
    return np.logical_or.reduce(~m)


def _pixel_valid(valid_b: np.ndarray, style: Style) -> np.ndarray:
    """(H, W) bool: a pixel is drawn where any of its bands has data (as GDAL's
    dataset mask and rio-tiler's tile mask); for an expression, where its result is."""
    return valid_b[0] if style.expression else np.logical_or.reduce(valid_b)


def _drawn_bands(data: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per band, where its own value is drawn: every pixel of ``valid`` (a band that
    equals nodata keeps its value), except non-finite values (shown as 0)."""
    out = np.broadcast_to(valid, data.shape)
    if np.issubdtype(data.dtype, np.floating):
        out = out & np.isfinite(data)
    return out


def _band_data(img, style: Style) -> tuple[np.ndarray, np.ndarray]:
    """(data, valid) per output band; NaN is nodata; expressions run in float64 and
    a pixel is valid only where every input band is valid and the result is finite."""
    arr = img.array
    data = arr.data
    mask = np.ma.getmaskarray(arr).copy()
    if np.issubdtype(data.dtype, np.floating):
        mask |= np.isnan(data)
    if not style.expression:
        return data, ~mask
    from rio_tiler.expression import get_expression_blocks

    blocks = get_expression_blocks(style.expression)
    names = [f"b{i}" for i in style.indexes]
    res = evaluate_blocks(blocks, names, data)
    bad = np.logical_or.reduce(mask, axis=0) | ~np.isfinite(res)
    return res, ~bad


def _rescale(data: np.ndarray, valid: np.ndarray, vmin, vmax) -> np.ndarray:
    """Linear rescale of each band from [vmin, vmax] to 0..255 (clipped, truncated to
    uint8, 0 where invalid): the same arithmetic as rio-tiler's ``rescale_image``."""
    out = np.empty(data.shape, dtype=np.uint8)
    for b in range(data.shape[0]):
        lo, hi = float(vmin[b]), float(vmax[b])
        with np.errstate(invalid="ignore"):
            im = (np.clip(data[b], lo, hi, dtype=np.float64) - lo) / np.float64(hi - lo) * 255.0
        if np.issubdtype(data.dtype, np.floating) and data.dtype != np.float64:
            im = im.astype(data.dtype)  # rio-tiler stores the rescaled values in the source dtype
        out[b] = np.where(valid[b], im, 0).astype(np.uint8)
    return out
