"""Area statistics of a registered source over a polygon (zonal statistics).

:func:`area_statistics` reads the source's own pixels (full resolution, no resampling)
in the window that covers the polygon, keeps the pixels whose **centre** lies inside the
polygon (``rasterio.features.geometry_mask`` with ``all_touched=False``, GDAL's
rasterisation rule; every kept pixel weighs 1), drops nodata, applies scale/offset and
reduces with numpy: ``count``, ``mean``, ``median``, ``min``, ``max``, ``std``
(population, ``ddof=0``) and the percentiles asked for (numpy's default ``linear``
method).  It knows nothing of HTTP.

The polygon's edges are straight in lon/lat (GeoJSON's rule): before it is projected
onto the source's grid, edges longer than :data:`DENSIFY_DEGREES` get vertices along
them (:func:`densify`), so a parallel stays a parallel on a polar grid.

Masks are rasterio's per band (a band equal to nodata is nodata for that band), as
:meth:`RenderEngine.point` reads them; for an expression a pixel counts where every
band it uses has data and the result is finite (0/0 is nodata).  A mosaic (a tuple of
paths) is read on the pixel grid of its first file (the others resampled onto it,
nearest neighbour) and each pixel comes from the first file that has data there, as
the tiles show it.
"""

from __future__ import annotations

import json
import math
import threading
import time
import warnings
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from leafmap_tiles.errors import BadRequestError
from leafmap_tiles.protocol import Mosaic, SourcePath
from leafmap_tiles.protocol import members as source_members

#: Most pixels of the source one request may read; ``LEAFMAP_TILES_MAX_AREA_PIXELS``.
MAX_AREA_PIXELS = 50_000_000
STATS = ("count", "mean", "median", "min", "max", "std")
#: Longest edge (degrees) of a polygon reprojected from EPSG:4326: longer edges get
#: vertices added along them first (:func:`densify`).
DENSIFY_DEGREES = 0.05


def max_area_pixels() -> int:
    from leafmap_tiles import settings

    return settings.current().max_area_pixels


def check_geometry(geometry) -> dict:
    """A GeoJSON-like Polygon or MultiPolygon (a ``Feature`` or shapely geometry is
    unwrapped) in EPSG:4326 as a plain dict; :class:`BadRequestError` for anything else
    (points, lines, empty or invalid polygons, coordinates outside lon/lat ranges).
    A JSON dict already checked is answered from a cache (a series sends the same
    polygon with every frame); the answer is shared: do not change it."""
    if isinstance(geometry, dict):
        try:
            key = json.dumps(geometry, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError):
            key = None
        if key is not None:
            return _cached(_checked, key, lambda: _check_geometry(geometry))
    return _check_geometry(geometry)


def _check_geometry(geometry) -> dict:
    import shapely.geometry

    if hasattr(geometry, "__geo_interface__") and not isinstance(geometry, dict):
        geometry = geometry.__geo_interface__
    if isinstance(geometry, dict) and geometry.get("type") == "Feature":
        geometry = geometry.get("geometry")
    if isinstance(geometry, dict) and geometry.get("type") == "FeatureCollection":
        feats = geometry.get("features") or []
        if len(feats) != 1:
            raise BadRequestError(f"a FeatureCollection of {len(feats)} features: give one polygon")
        geometry = feats[0].get("geometry") if isinstance(feats[0], dict) else None
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        kind = geometry.get("type") if isinstance(geometry, dict) else type(geometry).__name__
        raise BadRequestError(f"geometry must be a GeoJSON Polygon or MultiPolygon in EPSG:4326, got {str(kind)[:40]}")
    try:
        shp = shapely.geometry.shape(geometry)
    except Exception as exc:
        raise BadRequestError(f"invalid {geometry.get('type')} coordinates: {str(exc)[:200]}") from None
    w, s, e, n = shp.bounds
    if not all(math.isfinite(v) for v in (w, s, e, n)) or s < -90 or n > 90 or w < -360 or e > 360:
        raise BadRequestError(f"polygon bounds {(w, s, e, n)} are not lon/lat degrees (EPSG:4326)")
    if not shp.is_valid:
        # e.g. a self-crossing ("bowtie") ring drawn by hand: every lobe kept (GEOS
        # make_valid, as rasterio's own mask of the ring counts them; buffer(0) drops one)
        fixed = shapely.make_valid(shp)
        parts = [g for g in getattr(fixed, "geoms", [fixed]) if g.geom_type in ("Polygon", "MultiPolygon")]
        shp = shapely.unary_union(parts) if parts else shapely.geometry.Polygon()
    if shp.is_empty or shp.area == 0:
        raise BadRequestError("the polygon is empty (zero area)")
    return shapely.geometry.mapping(shp)


def check_percentiles(percentiles) -> list[float]:
    """Percentiles as floats in [0, 100]; :class:`BadRequestError` otherwise."""
    if percentiles is None:
        return []
    if isinstance(percentiles, bool) or not isinstance(percentiles, (int, float, list, tuple)):
        raise BadRequestError(f"percentiles must be a number or a list of numbers in [0, 100], "
                              f"got {str(percentiles)[:40]!r}")
    if isinstance(percentiles, (int, float)):
        percentiles = [percentiles]
    out = []
    for p in percentiles:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= float(p) <= 100:
            raise BadRequestError(f"percentiles must be numbers in [0, 100], got {p!r}")
        out.append(float(p))
    return out


def percentile_key(p: float) -> str:
    """``"p2"``, ``"p98"``, ``"p2.5"``: the name of a percentile in the answer."""
    return f"p{int(p)}" if float(p).is_integer() else f"p{p:g}"


def check_stats(stats) -> tuple[str, ...] | None:
    """The names of :data:`STATS` to compute (``count`` is always given): a list of
    names, or one name (``"mean"``, as ``slider.series`` takes it); None (all) for None;
    :class:`BadRequestError` for an unknown name or anything else."""
    if stats is None:
        return None
    if isinstance(stats, str):
        stats = [stats]
    if not isinstance(stats, (list, tuple)):
        raise BadRequestError(f"stats must be a list of names from {', '.join(STATS)}, got {str(stats)[:60]!r}")
    bad = [s for s in stats if s not in STATS]
    if bad:
        raise BadRequestError(f"unknown statistic {str(bad[0])[:40]!r}: use {', '.join(STATS)} "
                              "(percentiles go in 'percentiles')")
    return tuple(dict.fromkeys(stats))


def reduce(values: np.ndarray, percentiles, stats=None) -> dict:
    """The statistics of 1-D float64 ``values`` (already valid and in physical units):
    ``count`` and the names of ``stats`` (None: all of :data:`STATS`), then the
    ``percentiles``.  ``values`` is reordered in place (the median and percentiles
    partition it, after the order-dependent mean and std are taken): pass an array
    of your own."""
    names = STATS[1:] if stats is None else tuple(n for n in STATS[1:] if n in stats)
    out: dict = {"count": int(values.size)}
    if values.size == 0:
        out.update({k: None for k in names})
        out.update({percentile_key(p): None for p in percentiles})
        return out
    if "mean" in names:
        out["mean"] = float(values.mean())
    if "std" in names:
        out["std"] = float(values.std())
    if "min" in names:
        out["min"] = float(values.min())
    if "max" in names:
        out["max"] = float(values.max())
    if "median" in names:
        out["median"] = float(np.median(values, overwrite_input=True))
    if percentiles:
        for p, v in zip(percentiles, np.percentile(values, percentiles, overwrite_input=True)):
            out[percentile_key(p)] = float(v)
    return {k: out[k] for k in ("count", *names, *(percentile_key(p) for p in percentiles))}


_cache_lock = threading.Lock()
_geoms: OrderedDict = OrderedDict()  # (geometry, crs) -> geometry in that CRS
_masks: OrderedDict = OrderedDict()  # (geometry, crs, window transform, shape) -> inside mask
_checked: OrderedDict = OrderedDict()  # geometry as sent (JSON) -> checked geometry
CACHE_ENTRIES = 64  # a series asks the same polygon of every frame; frames often share a grid


def _cached(cache: OrderedDict, key, make, limit: int = CACHE_ENTRIES):
    with _cache_lock:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
    value = make()
    with _cache_lock:
        cache[key] = value
        while len(cache) > limit:
            cache.popitem(last=False)
    return value


def _geometry_key(geometry: dict) -> str:
    return json.dumps(geometry, sort_keys=True, separators=(",", ":"))


def densify(geometry: dict) -> dict:
    """``geometry`` (GeoJSON-like, EPSG:4326) with vertices added along every edge
    longer than :data:`DENSIFY_DEGREES` (``shapely.segmentize``), unchanged (the same
    dict) when no edge is.  A GeoJSON edge is straight in lon/lat; reprojected as it is
    it becomes a straight chord in the target CRS, far off the edge where the two
    differ (a parallel is a circle in a polar stereographic grid: the chord of a box
    spanning every longitude cuts the ring out).  A field of a few hundredths of a
    degree keeps its vertices."""
    import shapely
    import shapely.geometry

    shp = shapely.geometry.shape(geometry)
    dense = shapely.segmentize(shp, DENSIFY_DEGREES)
    if shapely.get_num_coordinates(dense) == shapely.get_num_coordinates(shp):
        return geometry
    return shapely.geometry.mapping(dense)


def _native_geometry(geometry: dict, grid: _Grid, clip=None) -> dict:
    """``geometry`` (EPSG:4326) in ``grid``'s CRS, its edges densified first (:func:`densify`:
    each stays close to its lon/lat line); with ``clip`` (W, S, E, N EPSG:4326, the
    raster's footprint) first cut to it widened by a tenth each side: a polygon far
    larger than a projected raster (a continent over a UTM scene) does not survive the
    projection whole (its far parts fall outside the projection's domain, and GDAL
    returned an empty or broken shape: 0 pixels counted).  ``grid``: the source's
    :class:`_Grid` (its CRS, and the CRS's WKT for the cache key)."""
    from rasterio.warp import transform_geom

    def make():
        g = geometry
        if clip is not None and clip[0] < clip[2]:  # not across the antimeridian
            import shapely.geometry

            w, s, e, n = clip
            dx, dy = max((e - w) / 10, 1e-6), max((n - s) / 10, 1e-6)
            cut = shapely.geometry.shape(geometry).intersection(
                shapely.geometry.box(w - dx, max(s - dy, -90.0), e + dx, min(n + dy, 90.0)))
            if cut.is_empty:
                return None
            g = shapely.geometry.mapping(cut)
        return transform_geom("EPSG:4326", grid.crs, densify(g))

    key = (_geometry_key(geometry), grid.crs_wkt, tuple(clip) if clip else None)
    return _cached(_geoms, key, make)


def _inside_mask(geometry: dict, grid: _Grid, geom_native: dict, transform, shape) -> np.ndarray:
    """(h, w) bool, read-only: pixels of the window whose centre is in the polygon
    (``geom_native``, ``geometry`` on ``grid``)."""
    from rasterio.features import geometry_mask

    def make():
        m = geometry_mask([geom_native], out_shape=shape, transform=transform, all_touched=False, invert=True)
        m.setflags(write=False)
        return m

    key = (_geometry_key(geometry), grid.crs_wkt, tuple(transform)[:6], shape)
    return _cached(_masks, key, make)


def _members_extent(engine, members, style, first):
    """(col0, row0, col1, row1) on ``first``'s grid covering every member's bounds."""
    from rasterio.warp import transform_bounds

    inv = ~first.transform
    cs, rs = [0, first.width], [0, first.height]
    for member in members[1:]:
        try:
            ds = _grid(engine, member, style.nodata)
            b = transform_bounds(ds.crs, first.crs, *ds.bounds, densify_pts=21)
        except Exception:
            continue
        for x, y in ((b[0], b[1]), (b[2], b[3]), (b[0], b[3]), (b[2], b[1])):
            c, r = inv * (x, y)
            cs.append(c)
            rs.append(r)
    return (math.floor(min(cs)), math.floor(min(rs)), math.ceil(max(cs)), math.ceil(max(rs)))


class _Grid(NamedTuple):
    """What the statistics need of a dataset besides its pixels (read once, under the
    dataset's lock: see :meth:`RenderEngine.shared_reader`)."""

    crs: object
    transform: object
    width: int
    height: int
    bounds: tuple
    dtype: str
    crs_wkt: str | None  # the cache key of the CRS (PROJ's WKT export costs ~0.1 ms a call)


_grids: OrderedDict = OrderedDict()  # (path, nodata, file signature) -> _Grid
GRID_ENTRIES = 256  # one per frame of a series: more than a slider shows


def _grid(engine, path, nodata) -> _Grid:
    """The :class:`_Grid` of ``path``, cached per state of the file (its signature)."""
    from leafmap_tiles.render.engine import file_signature

    def make():
        with engine.shared_reader(path, nodata) as rdr:
            ds = rdr.dataset
            crs = ds.crs
            return _Grid(crs, ds.transform, ds.width, ds.height, tuple(ds.bounds), ds.dtypes[0],
                         crs.to_wkt() if crs is not None else None)

    signature = file_signature(path)
    if signature is None:  # a URL without a version: described again each time
        return make()
    return _cached(_grids, (path, repr(nodata), signature), make, GRID_ENTRIES)


def _footprint(engine, path, style):
    """(W, S, E, N) EPSG:4326 of one file (the engine's description), None if unknown."""
    try:
        b = engine.info(path, style.nodata).bounds
        return tuple(float(v) for v in b) if b is not None else None
    except Exception:
        return None


def _window(ds, geom_native: dict, extent=None):
    """:func:`_window_of`, cached per (polygon, grid): a series asks it of every frame."""
    key = ("window", json.dumps(geom_native, sort_keys=True, separators=(",", ":"), default=str),
           tuple(ds.transform)[:6], ds.width, ds.height, tuple(extent) if extent is not None else None)
    return _cached(_geoms, key, lambda: _window_of(ds, geom_native, extent))


def _window_of(ds, geom_native: dict, extent=None):
    """The window of ``ds`` (whole pixels) covering the polygon's bounds in the
    dataset's CRS, clipped to the raster (or to ``extent``, (col0, row0, col1, row1)
    on its grid: a mosaic's members may reach beyond its first file), or None when
    they do not overlap."""
    import shapely.geometry
    from rasterio.windows import Window, from_bounds

    w, s, e, n = shapely.geometry.shape(geom_native).bounds
    win = from_bounds(w, s, e, n, transform=ds.transform)
    c0, r0 = math.floor(win.col_off), math.floor(win.row_off)
    c1, r1 = math.ceil(win.col_off + win.width), math.ceil(win.row_off + win.height)
    # a flipped transform (south-up) gives negative heights: normalise
    c0, c1 = sorted((c0, c1))
    r0, r1 = sorted((r0, r1))
    x0, y0, x1, y1 = extent if extent is not None else (0, 0, ds.width, ds.height)
    c0, r0 = max(c0, x0), max(r0, y0)
    c1, r1 = min(c1, x1), min(r1, y1)
    if c1 <= c0 or r1 <= r0:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0)


def _beyond(ds, window) -> bool:
    """Whether ``window`` reaches outside ``ds``."""
    return window is not None and (window.col_off < 0 or window.row_off < 0
                                   or window.col_off + window.width > ds.width
                                   or window.row_off + window.height > ds.height)


def _nodata_only(ds, indexes) -> list | None:
    """The nodata value of each band of ``indexes`` when the file's mask of each is
    only that value (GDAL's ``GMF_NODATA``) on an integer band and the value is one of
    the band's dtype: then a pixel is nodata exactly where it equals it, as GDAL's
    nodata mask band says (a float band's mask also compares with a tolerance, and a
    per-dataset mask, alpha or all-valid band is read as GDAL gives it).  Else None."""
    from rasterio.enums import MaskFlags

    out = []
    flags, nodatas, dtypes = ds.mask_flag_enums, ds.nodatavals, ds.dtypes
    for i in indexes:
        dt, nd = np.dtype(dtypes[i - 1]), nodatas[i - 1]
        if list(flags[i - 1]) != [MaskFlags.nodata] or dt.kind not in "iu" or nd is None or not math.isfinite(nd):
            return None
        info = np.iinfo(dt)
        if not float(nd).is_integer() or not info.min <= nd <= info.max:
            return None
        out.append(int(nd))
    return out


def _masked_read(ds, indexes, window, nodata, out_grid=None, as_float=True):
    """``(data (bands, h, w), valid bool (bands, h, w))`` of ``ds``; with
    ``out_grid = (crs, transform, width, height)`` resampled onto that grid (nearest).
    ``data`` is float64, or the file's dtype with ``as_float=False`` (then ``data``
    and ``valid`` may be lists of (h, w) arrays, one per band: read band by band, each
    array stays below glibc's mmap threshold, see :data:`VALUES_CHUNK`)."""
    if out_grid is not None:
        from rasterio.enums import Resampling
        from rasterio.vrt import WarpedVRT

        crs, transform, width, height = out_grid
        opts = {"crs": crs, "transform": transform, "width": width, "height": height,
                "resampling": Resampling.nearest}
        if nodata is not None:
            opts["src_nodata"] = nodata
            opts["nodata"] = nodata
        with WarpedVRT(ds, **opts) as vrt:
            arr = vrt.read(list(indexes), masked=True)
    elif nodata is not None:  # the style's nodata replaces the file's (as rio-tiler's option)
        outside = _beyond(ds, window)
        raw = ds.read(list(indexes), window=window, boundless=outside, fill_value=nodata if outside else None)
        mask = np.isnan(raw) if isinstance(nodata, float) and math.isnan(nodata) else raw == nodata
        arr = np.ma.MaskedArray(raw, mask=mask)
    elif _beyond(ds, window):  # a mosaic's grid past this (first) file: masked there
        from rasterio.windows import Window

        arr = np.ma.masked_all((len(indexes), int(window.height), int(window.width)), dtype=ds.dtypes[0])
        inner = window.intersection(Window(0, 0, ds.width, ds.height))
        part = ds.read(list(indexes), window=inner, masked=True)
        r0, c0 = int(inner.row_off - window.row_off), int(inner.col_off - window.col_off)
        arr[:, r0:r0 + part.shape[1], c0:c0 + part.shape[2]] = part
    else:
        fast = _nodata_only(ds, indexes)
        if fast is not None and not as_float:  # GDAL's nodata mask, without a second read of each band
            bands = [ds.read(i, window=window) for i in indexes]
            return bands, [b != nd for b, nd in zip(bands, fast)]
        arr = ds.read(list(indexes), window=window, masked=True)
    data = np.asarray(arr.data, dtype="float64") if as_float else np.asarray(arr.data)
    valid = ~np.ma.getmaskarray(arr)
    if data.dtype.kind == "f":
        valid &= np.isfinite(data)
    return data, valid


def area_statistics(engine, path: SourcePath, style, geometry: dict, percentiles=(), scales=None, offsets=None,
                    stats=None) -> dict:
    """Statistics of ``path`` (one file or URL, or a :class:`~leafmap_tiles.protocol.Mosaic`),
    as the ``style`` shows it (its bands or expression, its
    nodata) over ``geometry`` (a checked EPSG:4326 polygon, see :func:`check_geometry`).

    ``scales``/``offsets``: one per output band, physical = value * scale + offset,
    applied before reducing (None: 1 and 0).  ``stats``: the names of :data:`STATS`
    to compute (see :func:`check_stats`; None, the default: all of them); ``count``
    and the ``percentiles`` are always given.  Returns ``{"bands": [label, ...],
    "statistics": [{count, mean, median, min, max, std, p..}, ...], "pixels": n,
    "inside": bool}``: one statistics dict per output band; ``pixels`` is how many
    pixel centres fall inside the polygon (valid or not); ``inside`` is False when the
    polygon misses the raster.  Raises :class:`BadRequestError` when the window
    needs more than :func:`max_area_pixels` pixels read, and the engine's read errors.

    What is read, and counted against the limit: the window of the polygon's bounds
    when it is within the limit (one read), else only the pixels along the polygon
    (:func:`_spans`: per band of rows, the columns the polygon spans there), so a thin
    diagonal polygon over a large raster is not refused for its bounding box."""
    from rasterio.windows import transform as window_transform

    from leafmap_tiles.render.style import band_labels

    members = source_members(path)
    info = engine.info(path, style.nodata)
    indexes = style.indexes or tuple(i for i in range(1, info.count + 1) if i != info.alpha_index)
    labels = band_labels(style, indexes)
    n_out = len(labels) if style.expression else len(indexes)
    first = _grid(engine, members[0], style.nodata)
    geom0 = _native_geometry(geometry, first, _footprint(engine, members[0], style))
    win = _window(first, geom0) if geom0 is not None else None
    if win is not None and len(members) > 1:
        # the first file's grid, over every member's extent: a later member's pixels
        # beyond the first file count too (read boundless from the first)
        feet = [f for f in (_footprint(engine, mb, style) for mb in members) if f is not None]
        union = None
        if feet and all(f[0] < f[2] for f in feet):
            union = (min(f[0] for f in feet), min(f[1] for f in feet), max(f[2] for f in feet), max(f[3] for f in feet))
        geom0 = _native_geometry(geometry, first, union) or geom0
        win = _window(first, geom0, _members_extent(engine, members, style, first)) or win
    empty = {"bands": labels, "statistics": [reduce(np.zeros(0), percentiles, stats) for _ in range(n_out)],
             "pixels": 0, "inside": False}
    if win is None:
        if len(members) == 1:
            return empty
        win = None
    if win is None:  # outside the first file of a mosaic: use the next one's grid
        for j, member in enumerate(members[1:], 1):
            ds = _grid(engine, member, style.nodata)
            g_ = _native_geometry(geometry, ds, _footprint(engine, member, style))
            w_ = _window(ds, g_) if g_ is not None else None
            if w_ is not None:
                return area_statistics(engine, Mosaic(members[j:]) if len(members[j:]) > 1 else members[j], style,
                                       geometry, percentiles, scales, offsets, stats)
        return empty
    limit = max_area_pixels()
    if win.width * win.height <= limit:
        parts = [(win, _inside_mask(geometry, first, geom0, window_transform(win, first.transform),
                                    (int(win.height), int(win.width))))]
    else:  # only the pixels along the polygon: a thin or diagonal shape reads few
        spans = _spans(geom0, first.transform, win)
        n_read = sum(int(w.width * w.height) for w in spans)
        if n_read > limit:
            raise BadRequestError(f"the polygon needs {n_read} pixels of the source read (the columns it spans in "
                                  f"each band of rows), more than {limit} (LEAFMAP_TILES_MAX_AREA_PIXELS): "
                                  "draw a smaller area")
        parts = [(w, _span_mask(geom0, first.transform, w)) for w in spans]
    per_band: list[list] = [[] for _ in range(n_out)]
    pixels = 0
    for part, inside in parts:
        for b, vals in enumerate(_values_in(engine, members, style, indexes, first, part, inside)):
            per_band[b].append(vals)
        pixels += int(inside.sum())
    out = []
    for b in range(n_out):
        chunks = per_band[b]
        vals = chunks[0] if len(chunks) == 1 else np.concatenate(chunks) if chunks else np.zeros(0)
        s = 1.0 if not scales or scales[b] is None else float(scales[b])
        o = 0.0 if not offsets or offsets[b] is None else float(offsets[b])
        if (s, o) != (1.0, 0.0):  # in place (our own array), the same operations as vals * s + o
            vals *= s
            vals += o
        out.append(reduce(vals, percentiles, stats))
    return {"bands": labels, "statistics": out, "pixels": pixels, "inside": True}


#: Bands of rows a polygon's window is cut into when the window itself is over the limit.
MAX_STRIPS = 256


def _spans(geom_native: dict, transform, win) -> list:
    """Windows inside ``win`` that hold every pixel whose centre is in the polygon: the
    window's rows cut into at most :data:`MAX_STRIPS` bands, and in each band the
    columns of each part of the polygon there (merged where they overlap).  Their
    pixels are what is read: about the pixels inside the polygon, plus one band's
    height of slope, for a thin diagonal shape as for a square.  A rotated grid keeps
    the whole window."""
    import shapely.geometry
    from rasterio.windows import Window, from_bounds
    from rasterio.windows import bounds as window_bounds

    if transform.b != 0 or transform.d != 0:
        return [win]
    shp = shapely.geometry.shape(geom_native)
    c_lo, c_hi = int(win.col_off), int(win.col_off + win.width)
    r_end = int(win.row_off + win.height)
    step = max(1, math.ceil(int(win.height) / MAX_STRIPS))
    out = []
    for r0 in range(int(win.row_off), r_end, step):
        strip = Window(c_lo, r0, c_hi - c_lo, min(step, r_end - r0))
        cut = shp.intersection(shapely.geometry.box(*window_bounds(strip, transform)))
        cols = []
        for g in getattr(cut, "geoms", [cut]):
            if g.is_empty or g.geom_type not in ("Polygon", "MultiPolygon") or g.area == 0:
                continue  # a line or point where the polygon only touches the band: no pixel centre
            pw = from_bounds(*g.bounds, transform=transform)
            a, b = sorted((pw.col_off, pw.col_off + pw.width))
            c0, c1 = max(c_lo, math.floor(a)), min(c_hi, math.ceil(b))
            if c1 > c0:
                cols.append((c0, c1))
        cols.sort()
        merged: list[list[int]] = []
        for c0, c1 in cols:
            if merged and c0 <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], c1)
            else:
                merged.append([c0, c1])
        out.extend(Window(c0, strip.row_off, c1 - c0, strip.height) for c0, c1 in merged)
    return out


def _span_mask(geom_native: dict, transform, win) -> np.ndarray:
    """(h, w) bool of ``win``: pixels whose centre is in the polygon (as :func:`_inside_mask`)."""
    from rasterio.features import geometry_mask
    from rasterio.windows import transform as window_transform

    return geometry_mask([geom_native], out_shape=(int(win.height), int(win.width)),
                         transform=window_transform(win, transform), all_touched=False, invert=True)


def _values_in(engine, members, style, indexes, first, win, inside) -> list[np.ndarray]:
    """Per output band, the valid values (float64, before scale/offset) of the pixels of
    ``win`` (on ``first``'s grid) where ``inside``; a mosaic takes each pixel from its
    first member with data, an expression is evaluated where every band has data."""
    from rasterio.windows import transform as window_transform

    from leafmap_tiles.render.style import evaluate_values

    grid_transform = window_transform(win, first.transform)
    shape = (int(win.height), int(win.width))
    data = valid = None
    for k, member in enumerate(members):
        with engine.shared_reader(member, style.nodata) as rdr, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.monotonic()
            try:
                if k == 0:  # one file: its own dtype until the values are gathered
                    d, v = _masked_read(rdr.dataset, indexes, win, style.nodata, as_float=len(members) > 1)
                else:
                    d, v = _masked_read(rdr.dataset, indexes, None, style.nodata,
                                        out_grid=(first.crs, grid_transform, shape[1], shape[0]))
            except Exception as exc:
                raise engine.read_failure(member, exc, t0) from None
        engine.read_succeeded(member)
        if data is None:
            data, valid = d, v
        else:  # each pixel from the first file that has data there (any band, as the tiles)
            take = ~np.logical_or.reduce(valid, axis=0) & np.logical_or.reduce(v, axis=0)
            data[:, take] = d[:, take]
            valid[:, take] = v[:, take]
        if k + 1 < len(members) and np.logical_or.reduce(valid, axis=0)[inside].all():
            break  # a mosaic whose first files filled every pixel inside
    if style.expression:
        from rio_tiler.expression import get_expression_blocks

        # evaluated on the pixels inside where every band it uses has data (gathered
        # first: no arithmetic on the rest of the window)
        sel = np.logical_and(inside, valid[0])
        for v in valid[1:]:
            sel &= v
        names = [f"b{i}" for i in indexes]
        # one band at a time: numpy gathers a 2-D mask from each band ~20x faster than
        # from the (bands, h, w) array at once
        res = evaluate_values(get_expression_blocks(style.expression), names, [band[sel] for band in data])
        ok = np.isfinite(res[0])
        for r in res[1:]:
            ok &= np.isfinite(r)
        return res if ok.all() else [r[ok] for r in res]
    return [np.asarray(data[b][inside & valid[b]], dtype="float64") for b in range(len(data))]
