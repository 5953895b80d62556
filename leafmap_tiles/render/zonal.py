"""Area statistics of a registered source over a polygon (zonal statistics).

:func:`area_statistics` reads the source's own pixels (full resolution, no resampling)
in the window that covers the polygon, keeps the pixels whose **centre** lies inside the
polygon (``rasterio.features.geometry_mask`` with ``all_touched=False``, GDAL's
rasterisation rule; every kept pixel weighs 1), drops nodata, applies scale/offset and
reduces with numpy: ``count``, ``mean``, ``median``, ``min``, ``max``, ``std``
(population, ``ddof=0``) and the percentiles asked for (numpy's default ``linear``
method).  It knows nothing of HTTP.

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

import numpy as np

from leafmap_tiles.errors import BadRequestError
from leafmap_tiles.protocol import Mosaic, SourcePath
from leafmap_tiles.protocol import members as source_members

#: Largest window (pixels of the source) one request may read; ``LEAFMAP_TILES_MAX_AREA_PIXELS``.
MAX_AREA_PIXELS = 50_000_000
STATS = ("count", "mean", "median", "min", "max", "std")


def max_area_pixels() -> int:
    from leafmap_tiles import settings

    return settings.current().max_area_pixels


def check_geometry(geometry) -> dict:
    """A GeoJSON-like Polygon or MultiPolygon (a ``Feature`` or shapely geometry is
    unwrapped) in EPSG:4326 as a plain dict; :class:`BadRequestError` for anything else
    (points, lines, empty or invalid polygons, coordinates outside lon/lat ranges)."""
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
    if isinstance(percentiles, (int, float)) and not isinstance(percentiles, bool):
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


def reduce(values: np.ndarray, percentiles) -> dict:
    """The statistics of 1-D float64 ``values`` (already valid and in physical units)."""
    out = {"count": int(values.size)}
    if values.size == 0:
        out.update({k: None for k in STATS[1:]})
        out.update({percentile_key(p): None for p in percentiles})
        return out
    out.update({"mean": float(values.mean()), "median": float(np.median(values)),
                "min": float(values.min()), "max": float(values.max()), "std": float(values.std())})
    if percentiles:
        for p, v in zip(percentiles, np.percentile(values, percentiles)):
            out[percentile_key(p)] = float(v)
    return out


_cache_lock = threading.Lock()
_geoms: OrderedDict = OrderedDict()  # (geometry, crs) -> geometry in that CRS
_masks: OrderedDict = OrderedDict()  # (geometry, crs, window transform, shape) -> inside mask
CACHE_ENTRIES = 64  # a series asks the same polygon of every frame; frames often share a grid


def _cached(cache: OrderedDict, key, make):
    with _cache_lock:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
    value = make()
    with _cache_lock:
        cache[key] = value
        while len(cache) > CACHE_ENTRIES:
            cache.popitem(last=False)
    return value


def _geometry_key(geometry: dict) -> str:
    return json.dumps(geometry, sort_keys=True, separators=(",", ":"))


def _native_geometry(geometry: dict, crs, clip=None) -> dict:
    """``geometry`` (EPSG:4326) in ``crs``; with ``clip`` (W, S, E, N EPSG:4326, the
    raster's footprint) first cut to it widened by a tenth each side: a polygon far
    larger than a projected raster (a continent over a UTM scene) does not survive the
    projection whole (its far parts fall outside the projection's domain, and GDAL
    returned an empty or broken shape: 0 pixels counted)."""
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
        return transform_geom("EPSG:4326", crs, g)

    key = (_geometry_key(geometry), crs.to_wkt() if crs is not None else None, tuple(clip) if clip else None)
    return _cached(_geoms, key, make)


def _inside_mask(geometry: dict, crs, geom_native: dict, transform, shape) -> np.ndarray:
    """(h, w) bool, read-only: pixels of the window whose centre is in the polygon."""
    from rasterio.features import geometry_mask

    def make():
        m = geometry_mask([geom_native], out_shape=shape, transform=transform, all_touched=False, invert=True)
        m.setflags(write=False)
        return m

    key = (_geometry_key(geometry), crs.to_wkt() if crs is not None else None, tuple(transform)[:6], shape)
    return _cached(_masks, key, make)


def _members_extent(engine, members, style, first):
    """(col0, row0, col1, row1) on ``first``'s grid covering every member's bounds."""
    from rasterio.warp import transform_bounds

    inv = ~first.transform
    cs, rs = [0, first.width], [0, first.height]
    for member in members[1:]:
        try:
            ds = engine.reader(member, style.nodata).dataset
            b = transform_bounds(ds.crs, first.crs, *ds.bounds, densify_pts=21)
        except Exception:
            continue
        for x, y in ((b[0], b[1]), (b[2], b[3]), (b[0], b[3]), (b[2], b[1])):
            c, r = inv * (x, y)
            cs.append(c)
            rs.append(r)
    return (math.floor(min(cs)), math.floor(min(rs)), math.ceil(max(cs)), math.ceil(max(rs)))


def _footprint(engine, path, style):
    """(W, S, E, N) EPSG:4326 of one file (the engine's description), None if unknown."""
    try:
        b = engine.info(path, style.nodata).bounds
        return tuple(float(v) for v in b) if b is not None else None
    except Exception:
        return None


def _window(ds, geom_native: dict, extent=None):
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


def _masked_read(ds, indexes, window, nodata, out_grid=None):
    """``(data float64 (bands, h, w), valid bool (bands, h, w))`` of ``ds``; with
    ``out_grid = (crs, transform, width, height)`` resampled onto that grid (nearest)."""
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
        arr = ds.read(list(indexes), window=window, masked=True)
    data = np.asarray(arr.data, dtype="float64")
    valid = ~np.ma.getmaskarray(arr) & np.isfinite(data)
    return data, valid


def area_statistics(engine, path: SourcePath, style, geometry: dict, percentiles=(), scales=None, offsets=None) -> dict:
    """Statistics of ``path`` (one file or URL, or a :class:`~leafmap_tiles.protocol.Mosaic`),
    as the ``style`` shows it (its bands or expression, its
    nodata) over ``geometry`` (a checked EPSG:4326 polygon, see :func:`check_geometry`).

    ``scales``/``offsets``: one per output band, physical = value * scale + offset,
    applied before reducing (None: 1 and 0).  Returns ``{"bands": [label, ...],
    "statistics": [{count, mean, median, min, max, std, p..}, ...], "pixels": n,
    "inside": bool}``: one statistics dict per output band; ``pixels`` is how many
    pixel centres fall inside the polygon (valid or not); ``inside`` is False when the
    polygon misses the raster.  Raises :class:`BadRequestError` when the window
    would exceed :func:`max_area_pixels`, and the engine's read errors."""
    from rasterio.windows import transform as window_transform

    from leafmap_tiles.render.style import band_labels, evaluate_blocks

    members = source_members(path)
    info = engine.info(path, style.nodata)
    indexes = style.indexes or tuple(i for i in range(1, info.count + 1) if i != info.alpha_index)
    labels = band_labels(style, indexes)
    n_out = len(labels) if style.expression else len(indexes)
    first = engine.reader(members[0], style.nodata).dataset
    geom0 = _native_geometry(geometry, first.crs, _footprint(engine, members[0], style))
    win = _window(first, geom0) if geom0 is not None else None
    if win is not None and len(members) > 1:
        # the first file's grid, over every member's extent: a later member's pixels
        # beyond the first file count too (read boundless from the first)
        feet = [f for f in (_footprint(engine, mb, style) for mb in members) if f is not None]
        union = None
        if feet and all(f[0] < f[2] for f in feet):
            union = (min(f[0] for f in feet), min(f[1] for f in feet), max(f[2] for f in feet), max(f[3] for f in feet))
        geom0 = _native_geometry(geometry, first.crs, union) or geom0
        win = _window(first, geom0, _members_extent(engine, members, style, first)) or win
    empty = {"bands": labels, "statistics": [reduce(np.zeros(0), percentiles) for _ in range(n_out)],
             "pixels": 0, "inside": False}
    if win is None:
        if len(members) == 1:
            return empty
        win = None
    limit = max_area_pixels()
    if win is not None and win.width * win.height > limit:
        raise BadRequestError(f"the polygon covers {int(win.width * win.height)} pixels of the source, more than "
                              f"{limit} (LEAFMAP_TILES_MAX_AREA_PIXELS): draw a smaller area")
    if win is None:  # outside the first file of a mosaic: use the next one's grid
        for j, member in enumerate(members[1:], 1):
            ds = engine.reader(member, style.nodata).dataset
            g_ = _native_geometry(geometry, ds.crs, _footprint(engine, member, style))
            w_ = _window(ds, g_) if g_ is not None else None
            if w_ is not None:
                return area_statistics(engine, Mosaic(members[j:]) if len(members[j:]) > 1 else members[j], style,
                                       geometry, percentiles, scales, offsets)
        return empty
    grid_transform = window_transform(win, first.transform)
    shape = (int(win.height), int(win.width))
    inside = _inside_mask(geometry, first.crs, geom0, grid_transform, shape)
    data = valid = None
    for k, member in enumerate(members):
        ds = engine.reader(member, style.nodata).dataset
        t0 = time.monotonic()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                if k == 0:
                    d, v = _masked_read(ds, indexes, win, style.nodata)
                else:
                    d, v = _masked_read(ds, indexes, None, style.nodata,
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
        if np.logical_or.reduce(valid, axis=0)[inside].all():
            break
    if style.expression:
        from rio_tiler.expression import get_expression_blocks

        blocks = get_expression_blocks(style.expression)
        names = [f"b{i}" for i in indexes]
        res = evaluate_blocks(blocks, names, data)
        ok = np.logical_and.reduce(valid, axis=0) & np.all(np.isfinite(res), axis=0)
        data, valid = res, np.broadcast_to(ok, res.shape)
    out = []
    for b in range(data.shape[0]):
        vals = data[b][inside & valid[b]]
        s = 1.0 if not scales or scales[b] is None else float(scales[b])
        o = 0.0 if not offsets or offsets[b] is None else float(offsets[b])
        if (s, o) != (1.0, 0.0):
            vals = vals * s + o
        out.append(reduce(vals, percentiles))
    return {"bands": labels, "statistics": out, "pixels": int(inside.sum()), "inside": True}
