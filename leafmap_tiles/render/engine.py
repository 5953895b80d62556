"""Reads tiles, points and statistics of registered sources with rio-tiler.

One :class:`RenderEngine` lives in the tile-server process.  Readers are opened once
per worker thread and kept in a bounded per-thread cache (GDAL datasets are not
thread-safe); statistics for the default stretch are computed once per source and
style key from an overview (``preview``, longest side 1024 px), never per tile.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections import OrderedDict
from dataclasses import asdict, dataclass, field

import numpy as np

from leafmap_tiles.errors import InvalidSourceError
from leafmap_tiles.render import encode
from leafmap_tiles.render.colormaps import apply_explicit
from leafmap_tiles.render.errors import check_local, classify
from leafmap_tiles.render.style import Style

STRETCH_PERCENTILES = (2.0, 98.0)
STATS_MAX_SIZE = 1024
READERS_PER_THREAD = 64


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

    def to_json(self) -> dict:
        d = asdict(self)
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


class RenderEngine:
    """Stateless about sources except caches: every call names the source by
    ``source_id`` and ``path``; :meth:`forget` drops what is cached for an id."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._generation = 0
        self._stats: dict[tuple, list[dict]] = {}
        self._stats_lock = threading.Lock()
        self._info: dict[tuple, SourceInfo] = {}

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
        from rio_tiler.io import Reader

        key = (path, None if nodata is None else repr(nodata), self._generation)
        cache = self._readers()
        rdr = cache.get(key)
        if rdr is not None:
            cache.move_to_end(key)
            return rdr
        options = {} if nodata is None else {"nodata": nodata}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                rdr = Reader(path, options=options)
            except Exception as exc:
                raise classify(path, exc) from None
        cache[key] = rdr
        while len(cache) > READERS_PER_THREAD:
            _, old = cache.popitem(last=False)
            try:
                old.close()
            except Exception:
                pass
        return rdr

    def invalidate_all(self) -> None:
        """Reopen every dataset on next use (after credentials or GDAL options change)."""
        with self._stats_lock:
            self._generation += 1  # each worker thread drops its readers on next use
            self._stats.clear()
            self._info.clear()

    def forget(self, path: str) -> None:
        with self._stats_lock:
            for k in [k for k in self._stats if k[0] == path]:
                del self._stats[k]
            for k in [k for k in self._info if k[0] == path]:
                del self._info[k]

    # --------------------------------------------------------------------- info
    def info(self, path: str, nodata: float | None = None) -> SourceInfo:
        """Open ``path`` and describe it; raises a specific error if it is not a
        readable, georeferenced raster (checked by reading its smallest overview)."""
        key = (path, None if nodata is None else repr(nodata))
        cached = self._info.get(key)
        if cached is not None:
            return cached
        check_local(path)
        rdr = self.reader(path, nodata)
        ds = rdr.dataset
        raw_count, has_gcps = _raw_layout(path, ds)
        if ds.crs is None:
            raise InvalidSourceError(
                f"{path} has no georeference (no CRS, geotransform or GCPs); "
                "give a GeoTIFF/COG, or a numpy array with crs= and transform="
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                bounds = tuple(float(v) for v in rdr.get_geographic_bounds(_wgs84()))
            except Exception as exc:
                raise InvalidSourceError(f"{path}: cannot transform its bounds to EPSG:4326 ({exc})") from None
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
        self._info[key] = info
        return info

    def check_readable(self, path: str) -> None:
        """Read the full-resolution blocks at the corners and centre of band 1, so that
        a truncated or corrupt file fails at registration, not on some tiles later."""
        import rasterio
        from rasterio.windows import Window

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                with rasterio.open(path) as ds:
                    h, w = ds.height, ds.width
                    for r, c in ((0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1), (h // 2, w // 2)):
                        ds.read(1, window=Window(c, r, 1, 1))
            except Exception as exc:
                raise classify(path, exc, during="read") from None

    # ------------------------------------------------------------- statistics
    def statistics(self, path: str, style: Style) -> list[dict]:
        """Per output band: ``min``, ``max``, ``mean``, ``std``, ``p2``, ``p98``,
        ``valid_percent``, computed once from a preview whose longest side is 1024 px
        (nearest resampling) and cached.  For an expression, of its float result."""
        key = (path,) + style.stats_key()
        with self._stats_lock:
            cached = self._stats.get(key)
        if cached is not None:
            return cached
        info = self.info(path, style.nodata)
        rdr = self.reader(path, style.nodata)
        indexes = style.indexes or info.default_indexes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                img = rdr.preview(indexes=indexes, max_size=STATS_MAX_SIZE)
            except Exception as exc:
                raise classify(path, exc, during="read") from None
        data, valid = _band_data(img, style)
        out = []
        for b in range(data.shape[0]):
            vals = data[b][valid[b]]
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
                    "valid_percent": round(100.0 * vals.size / valid[b].size, 4),
                }
            )
        with self._stats_lock:
            self._stats[key] = out
        return out

    def stretch(self, path: str, style: Style) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(vmin, vmax)`` per output band: the style's, else the 2nd/98th percentiles."""
        if style.vmin is not None and style.vmax is not None:
            return style.vmin, style.vmax
        stats = self.statistics(path, style)
        vmin, vmax = [], []
        for i, s in enumerate(stats):
            lo = style.vmin[i] if style.vmin is not None else (s["p2"] if s["p2"] is not None else 0.0)
            hi = style.vmax[i] if style.vmax is not None else (s["p98"] if s["p98"] is not None else 1.0)
            if hi <= lo:
                hi = lo + 1.0 if style.vmax is None else hi
                lo = hi - 1.0 if lo >= hi else lo
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
        rdr = self.reader(path, style.nodata)
        ts = style.tile_size
        if not rdr.tile_exists(x, y, z):
            return encode.empty_png(ts) if fmt == "PNG" else self._encode_empty(ts, fmt)
        palette = self.uses_palette(info, style)
        resampling = "nearest" if (palette or style.explicit) else style.resampling
        indexes = style.indexes or info.default_indexes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                img = rdr.tile(
                    x, y, z, tilesize=ts, indexes=indexes,
                    resampling_method=resampling, reproject_method=resampling,
                )
            except Exception as exc:
                if type(exc).__name__ == "TileOutsideBounds":
                    return encode.empty_png(ts) if fmt == "PNG" else self._encode_empty(ts, fmt)
                raise classify(path, exc, during="read") from None
        if palette:
            data = img.array.data[0]
            valid = _valid_any(img)
            cmap = rdr.colormap
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
        scaled = _rescale(data, valid_b, vmin, vmax)
        valid = np.logical_or.reduce(valid_b) if style.expression is None else valid_b[0]
        if scaled.shape[0] == 1:
            if style.colormap is not None:
                return self._encode_lut(scaled[0], valid, style.colormap.lut, fmt)
            if fmt == "PNG":
                return encode.png_grey_alpha(scaled[0], valid.astype(np.uint8) * 255)
            return encode.encode_gdal(scaled, valid.astype(np.uint8) * 255, fmt)
        alpha = valid.astype(np.uint8) * 255
        if fmt == "PNG":
            return encode.png_rgba(np.dstack([scaled[0], scaled[1], scaled[2], alpha]))
        return encode.encode_gdal(scaled[:3], alpha, fmt)

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
        scale/offset); an expression gives its float result."""
        info = self.info(path, style.nodata)
        rdr = self.reader(path, style.nodata)
        indexes = style.indexes or tuple(i for i in range(1, info.count + 1) if i != info.alpha_index)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                pt = rdr.point(lon, lat, indexes=indexes)
            except Exception as exc:
                if type(exc).__name__ == "PointOutsideBounds":
                    n = 1 if style.expression else len(indexes)
                    return {"inside": False, "values": [None] * n, "bands": _band_labels(style, indexes)}
                raise classify(path, exc, during="read") from None
        arr = pt.array
        data = np.asarray(arr.data, dtype="float64")
        mask = np.ma.getmaskarray(arr) | ~np.isfinite(data)
        if style.expression:
            from rio_tiler.expression import apply_expression, get_expression_blocks

            blocks = get_expression_blocks(style.expression)
            names = [f"b{i}" for i in indexes]
            with np.errstate(all="ignore"):
                res = apply_expression(blocks, names, data.reshape(-1, 1, 1)).reshape(-1)
            m = bool(mask.any())
            values = [None if (m or not math.isfinite(v)) else float(v) for v in res]
        else:
            values = [None if mask[i] else _native(data[i], info.dtype) for i in range(len(data))]
        return {"inside": True, "values": values, "bands": _band_labels(style, indexes)}


def _band_labels(style: Style, indexes) -> list[str]:
    if style.expression:
        from rio_tiler.expression import get_expression_blocks

        return get_expression_blocks(style.expression)
    return [f"b{i}" for i in indexes]


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
    m = np.ma.getmaskarray(img.array)
    return np.logical_or.reduce(~m)


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
    from rio_tiler.expression import apply_expression, get_expression_blocks

    blocks = get_expression_blocks(style.expression)
    names = [f"b{i}" for i in style.indexes]
    with np.errstate(all="ignore"):
        res = np.asarray(apply_expression(blocks, names, data.astype("float64")), dtype="float64")
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
