"""Pixel reads from a collection: values at points and stacks of windows over dates.

The cached headers of the index (CRS, transform, size, overviews, nodata) decide what to
read before any file is opened: an item whose grid holds none of the points (or does not
overlap the bbox) is never requested, the pixel of each point and the window of a bbox
are computed from the header, and a coarser ``resolution`` reads the overview level
whose pixels are closest to it (one ``overview_level`` open, no full-resolution
blocks).  Files are opened with :func:`leafmap_tiles.providers.access.open_raster`: each
URL gets its own host's credentials, as thread-local GDAL options of the reading thread.

Values are physical: ``DN * scale + offset`` with the STAC ``raster:scale``/``offset``
of the band read (the asset's own, or the band's entry of ``raster:bands``), else the
file's own tags of that band; nodata (STAC ``nodata``, else the file's) and NaN are
missing (``None`` / NaN).  The items of one date form a mosaic: each pixel from
the first item (in index order) that has data there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from numbers import Real
from typing import Any

import numpy as np
from leafmap_tiles.errors import CollectionError

#: Largest (dates x rows x cols) a ``read`` may return; beyond it ValueError.
MAX_READ_PIXELS = 200_000_000
#: ``sample_points`` reads one window holding all the points of an item when it has at
#: most this many pixels, else one pixel per point.
WINDOW_READ_PIXELS = 1_000_000


def check_points(points) -> tuple[list, np.ndarray, np.ndarray]:
    """(names, lons, lats) of ``points``: a sequence of ``(lon, lat)`` pairs or of
    shapely/GeoJSON points (names 0, 1, ...), or a mapping ``{name: point}``.  Raises
    ``ValueError`` for anything that is not a point in EPSG:4326 degrees."""
    if isinstance(points, Mapping):
        names, items = list(points.keys()), list(points.values())
    else:
        try:
            items = list(points)
        except TypeError:
            raise CollectionError(f"points must be a list of (lon, lat) pairs or points, not {type(points).__name__}") from None
        names = list(range(len(items)))
    if not items:
        raise CollectionError("points is empty")
    lons, lats = [], []
    for p in items:
        if hasattr(p, "__geo_interface__"):
            p = p.__geo_interface__
        if isinstance(p, Mapping):
            if p.get("type") == "Feature":
                p = p.get("geometry") or {}
            if p.get("type") != "Point":
                raise CollectionError(f"not a point: {str(p)[:80]}")
            p = p.get("coordinates")
        try:
            lon, lat = (float(v) for v in list(p)[:2])
        except (TypeError, ValueError):
            raise CollectionError(f"a point must be (lon, lat) in degrees, got {str(p)[:80]}") from None
        if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 360 and -90 <= lat <= 90):
            raise CollectionError(f"point ({lon}, {lat}) is not lon/lat degrees (EPSG:4326)")
        lons.append(lon)
        lats.append(lat)
    return names, np.asarray(lons), np.asarray(lats)


def check_band(band) -> int:
    """``band`` as a 1-based band number; :class:`CollectionError` for anything else."""
    if isinstance(band, bool) or not isinstance(band, (int, np.integer)) or band < 1:
        raise CollectionError(f"band must be a 1-based band number (an int >= 1), got {band!r}")
    return int(band)


def check_resolution(resolution) -> None:
    """:class:`CollectionError` unless ``resolution`` is None or a real number (its sign
    and the units are checked against the grid's CRS by :func:`output_grid`)."""
    if resolution is not None and (isinstance(resolution, bool) or not isinstance(resolution, Real)):
        raise CollectionError(f"resolution must be a number (the pixel size in the CRS's units), got {resolution!r}")


def _stac_band(row: Mapping[str, Any], band: int) -> tuple[Any, Any, Any]:
    """(scale, offset, nodata) STAC gives for band ``band`` (> 1) of the row's asset: the
    band's entry of ``raster:bands`` (or ``bands``), else the asset's own
    ``raster:scale``/``raster:offset``/``nodata`` (which apply to every band); None
    where STAC says nothing."""
    import json

    from leafmap_tiles.providers.items import first_given

    try:
        fields = json.loads(row.get("asset_info") or "{}")
    except (TypeError, ValueError):
        fields = {}
    if not isinstance(fields, dict):
        fields = {}
    bands = fields.get("raster:bands") or fields.get("bands") or []
    entry = bands[band - 1] if isinstance(bands, list) and len(bands) >= band and isinstance(bands[band - 1], dict) else {}
    scale = first_given(fields.get("raster:scale"), entry.get("raster:scale"), entry.get("scale"))
    offset = first_given(fields.get("raster:offset"), entry.get("raster:offset"), entry.get("offset"))
    nodata = first_given(fields.get("nodata"), entry.get("nodata"), fields.get("raster:nodata"))
    return scale, offset, nodata


def _physical(row: Mapping[str, Any], band: int = 1, ds=None) -> tuple[float, float, float | None]:
    """(scale, offset, nodata) of band ``band`` of an index row: STAC's, else the file's
    (band 1 from the cached header; another band from STAC's entry of that band, else
    ``ds``'s own tags of that band: band 1's scale/offset never apply to another)."""
    if band == 1:
        scale, offset = row.get("stac_scale"), row.get("stac_offset")
        if scale is None and offset is None:
            scale, offset = row.get("scale"), row.get("offset")
        nodata = row.get("stac_nodata")
        if nodata is None:
            nodata = row.get("nodata")
    else:
        scale, offset, nodata = _stac_band(row, band)
        if scale is None and offset is None and ds is not None:
            scale, offset = ds.scales[band - 1], ds.offsets[band - 1]
        if nodata is None:
            nodata = row.get("stac_nodata")
        if nodata is None and ds is not None:
            nodata = ds.nodatavals[band - 1]
        elif nodata is None:
            nodata = row.get("nodata")
    return (1.0 if scale is None else float(scale)), (0.0 if offset is None else float(offset)), nodata


def _affine(row):
    from affine import Affine

    return Affine(*row["transform"][:6])


def _row_cols(row, lons, lats) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the pixels holding each point in the item's grid (from its header)."""
    from rasterio.crs import CRS
    from rasterio.warp import transform as warp_transform

    xs, ys = warp_transform(CRS.from_epsg(4326), CRS.from_user_input(row["crs"]), list(lons), list(lats))
    inv = ~_affine(row)
    xs, ys = np.asarray(xs), np.asarray(ys)
    cols, rows = inv.a * xs + inv.b * ys + inv.c, inv.d * xs + inv.e * ys + inv.f
    return np.floor(rows).astype("int64"), np.floor(cols).astype("int64")


def _masked_values(raw, nodata) -> np.ndarray:
    """float64 of ``raw`` with NaN where nodata or not finite."""
    out = np.asarray(raw, dtype="float64").copy()
    if nodata is not None:
        nd = float(nodata)
        out[np.isnan(out) if math.isnan(nd) else out == nd] = np.nan
    out[~np.isfinite(out)] = np.nan
    return out


def sample_date(rows: list, lons, lats, band: int = 1) -> np.ndarray:
    """Physical values (NaN = nodata or outside) at each point for the items of one date."""
    from rasterio.windows import Window

    from leafmap_tiles.providers.access import open_raster

    out = np.full(len(lons), np.nan)
    for row in rows:
        todo = np.isnan(out)
        if not todo.any():
            break
        r, c = _row_cols(row, lons[todo], lats[todo])
        inside = (r >= 0) & (r < int(row["height"])) & (c >= 0) & (c < int(row["width"]))
        if not inside.any():
            continue  # the header says no point is in this item: no request
        idx = np.flatnonzero(todo)[inside]
        with open_raster(row["href"]) as ds:
            if band > ds.count:
                raise CollectionError(f"band {band} of a {ds.count}-band asset ({row['id']}/{row['asset']})")
            scale, offset, nodata = _physical(row, band, ds)
            mask_from_file = nodata is None
            rr, cc = r[inside], c[inside]
            r0, c0 = int(rr.min()), int(cc.min())
            h, w = int(rr.max()) - r0 + 1, int(cc.max()) - c0 + 1
            if h * w <= WINDOW_READ_PIXELS:  # points close together: one read of the window holding them
                a = ds.read(band, window=Window(c0, r0, w, h), masked=mask_from_file)
                raw = np.asarray(a.data if mask_from_file else a, dtype="float64")[rr - r0, cc - c0]
                if mask_from_file:
                    raw[np.ma.getmaskarray(a)[rr - r0, cc - c0]] = np.nan
                vals = raw
            else:  # far apart: the pixel of each point
                vals = []
                for y, x in zip(rr, cc):
                    a = ds.read(band, window=Window(int(x), int(y), 1, 1), masked=mask_from_file)
                    if mask_from_file and np.ma.getmaskarray(a).all():
                        vals.append(np.nan)
                    else:
                        vals.append(float(np.asarray(a).reshape(-1)[0]))
        v = _masked_values(vals, nodata)
        out[idx] = np.where(np.isnan(v), np.nan, v * scale + offset)
    return out


def output_grid(rows: list, bbox, resolution):
    """(crs, transform, width, height) of the output grid: the first row's CRS, its
    pixel grid (origin kept, so native resolution reads exact pixels), ``resolution``
    (in the CRS's units; default the row's own, its width and height) over ``bbox``
    (W, S, E, N EPSG:4326)."""
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.warp import transform_bounds

    first = rows[0]
    crs = CRS.from_user_input(first["crs"])
    t = _affine(first)
    check_resolution(resolution)
    res = abs(t.a) if resolution is None else float(resolution)
    if not res > 0 or not math.isfinite(res):
        raise CollectionError(f"resolution must be a positive number in the CRS's units ({_units(crs)}), "
                              f"got {resolution!r}")
    res_y = abs(t.e) if resolution is None and t.e else res  # the file's own rows too (pixels need not be square)
    w, s, e, n = transform_bounds(CRS.from_epsg(4326), crs, *bbox, densify_pts=21)
    x0 = t.c + math.floor((w - t.c) / res) * res
    y0 = t.f - math.floor((t.f - n) / res_y) * res_y
    width = max(1, math.ceil((e - x0) / res))
    height = max(1, math.ceil((y0 - s) / res_y))
    return crs, Affine(res, 0.0, x0, 0.0, -res_y, y0), width, height


def _units(crs) -> str:
    """What a resolution is measured in on ``crs``: "degrees for EPSG:4326", "metre for EPSG:32633"."""
    try:
        epsg = crs.to_epsg()
    except Exception:
        epsg = None
    name = f"EPSG:{epsg}" if epsg else "the first item's CRS"
    if crs.is_geographic:
        return f"degrees for {name}"
    units = crs.linear_units
    return f"{units} for {name}" if units and units != "unknown" else f"units of {name}"


def footprint_4326(row) -> tuple[float, float, float, float] | None:
    """(W, S, E, N) EPSG:4326 of an item's grid, from its cached header (None if unknown)."""
    from rasterio.warp import transform_bounds

    try:
        t = _affine(row)
        xs = [t.c, t.c + t.a * int(row["width"])]
        ys = [t.f, t.f + t.e * int(row["height"])]
        b = transform_bounds(row["crs"], "EPSG:4326", min(xs), min(ys), max(xs), max(ys), densify_pts=21)
    except Exception:
        return None
    return b if all(math.isfinite(v) for v in b) else None


def check_bbox_overlaps(by_date: dict, bbox, asset: str) -> None:
    """Raise :class:`~leafmap_tiles.errors.NoOverlapError` when ``bbox`` (W, S, E, N
    EPSG:4326) meets no item of ``by_date`` (their headers' footprints); items whose
    footprint is unknown count as meeting it."""
    from leafmap_tiles.errors import NoOverlapError

    w, s, e, n = bbox
    feet = []
    for rows in by_date.values():
        for row in rows:
            f = footprint_4326(row)
            if f is None:
                return
            fw, fs, fe, fn = f
            if fe < fw:  # across the antimeridian (178 .. -178.5): as 178 .. 181.5
                fe += 360.0
            if fs < n and fn > s and any(fw + k < e and fe + k > w for k in (-360.0, 0.0, 360.0)):
                return
            feet.append(f)
    ext = (min(f[0] for f in feet), min(f[1] for f in feet), max(f[2] for f in feet), max(f[3] for f in feet))
    raise NoOverlapError(
        f"bbox ({w:g}, {s:g}, {e:g}, {n:g}) does not intersect any of the {len(feet)} {asset!r} items of the "
        f"collection (together they cover W,S,E,N = {ext[0]:.5f}, {ext[1]:.5f}, {ext[2]:.5f}, {ext[3]:.5f} "
        "in EPSG:4326); nothing was read")


def _overview_level(row, res: float) -> int | None:
    """The overview level (0-based, for ``rasterio.open(overview_level=)``) whose pixel
    is the largest not coarser than ``res``, from the cached header; None = full resolution."""
    native = abs(_affine(row).a)
    best = None
    for level, factor in enumerate(row.get("overviews") or []):
        if native * factor <= res * (1 + 1e-9):
            best = level
    return best


def _overlaps(row, crs, transform, width, height) -> bool:
    """Does the item's footprint (its header's grid) overlap the output grid?"""
    from rasterio.warp import transform_bounds

    t = _affine(row)
    xs = [t.c, t.c + t.a * int(row["width"])]
    ys = [t.f, t.f + t.e * int(row["height"])]
    try:
        w, s, e, n = transform_bounds(row["crs"], crs, min(xs), min(ys), max(xs), max(ys))
    except Exception:
        return True
    gx0, gy1 = transform.c, transform.f
    gx1, gy0 = gx0 + transform.a * width, gy1 + transform.e * height
    return w < gx1 and e > gx0 and s < gy1 and n > gy0


def read_date(rows: list, grid, band: int = 1, resampling: str = "nearest") -> np.ndarray:
    """(height, width) float64 physical values of one date on ``grid``, NaN = nodata."""
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    from leafmap_tiles.providers.access import open_raster

    crs, transform, width, height = grid
    out = np.full((height, width), np.nan)
    for row in rows:
        if not np.isnan(out).any():
            break
        if not _overlaps(row, crs, transform, width, height):
            continue  # no request for an item outside the bbox
        level = _overview_level(row, abs(transform.a))
        kwargs = {} if level is None else {"overview_level": level}
        with open_raster(row["href"], **kwargs) as ds:
            if band > ds.count:
                raise CollectionError(f"band {band} of a {ds.count}-band asset ({row['id']}/{row['asset']})")
            scale, offset, nodata = _physical(row, band, ds)
            opts = {"crs": crs, "transform": transform, "width": width, "height": height,
                    "resampling": Resampling[resampling]}
            if nodata is not None:
                opts["src_nodata"] = nodata
                opts["nodata"] = nodata
            with WarpedVRT(ds, **opts) as vrt:
                a = vrt.read(band, masked=True)
        v = np.asarray(a.data, dtype="float64")
        v[np.ma.getmaskarray(a) | ~np.isfinite(v)] = np.nan
        v = v * scale + offset
        take = np.isnan(out) & ~np.isnan(v)
        out[take] = v[take]
    return out


def run_dates(fn, by_date: dict, max_concurrent: int, progress, desc: str) -> list:
    """``fn(rows)`` for each date's rows, ``max_concurrent`` at a time, in date order."""
    dates = list(by_date)
    show = progress if progress is not None else len(dates) >= 20
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(dates), desc=desc, unit="date")
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(int(max_concurrent), len(dates))),
                                thread_name_prefix="collection-read") as pool:
            futures = [pool.submit(fn, by_date[d]) for d in dates]
            out = []
            for fut in futures:
                out.append(fut.result())
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return out


def to_dataarray(stack: np.ndarray, dates: Sequence[str], grid, name: str | None, attrs: dict):
    """An ``xarray.DataArray`` (time, y, x) with pixel-centre coordinates and the CRS
    (rioxarray's ``spatial_ref`` when rioxarray is installed, else ``attrs["crs"]``)."""
    try:
        import xarray as xr
    except ImportError as exc:  # pragma: no cover - an optional dependency
        raise ImportError("Collection.read() needs xarray: pip install 'leafmap_tiles[xarray]'") from exc
    crs, transform, width, height = grid
    xs = transform.c + transform.a * (np.arange(width) + 0.5)
    ys = transform.f + transform.e * (np.arange(height) + 0.5)
    times = np.array([np.datetime64(d, "ns") for d in dates])
    da = xr.DataArray(stack, dims=("time", "y", "x"), coords={"time": times, "y": ys, "x": xs}, name=name,
                      attrs={**attrs, "crs": crs.to_string(), "transform": tuple(transform)[:6]})
    try:
        import rioxarray  # noqa: F401

        da = da.rio.write_crs(crs).rio.write_transform(transform)
    except ImportError:
        pass
    return da
