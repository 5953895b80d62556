"""Build a collection: search a STAC API, read the COG headers, write the index.

``build(source, collection, name=...)`` searches (every page, every item of a date),
reads the header of each selected asset concurrently, and writes the GeoParquet index
and a ``collection.json`` manifest under the workspace.  The same parameters again
return the cached index without touching the network, unless ``force=True``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leafmap_tiles import _paths
from leafmap_tiles.providers.dates import date_bounds

from . import headers as _headers
from . import index as _index
from .collection import Collection, MANIFEST_FILE, INDEX_DIR, default_workspace
from leafmap_tiles.errors import CollectionError

_TIFF_TYPES = ("image/tiff", "image/geotiff", "image/vnd.stac.geotiff")


def resolve_source(source: Any) -> tuple[str, str]:
    """(STAC API URL, source label) for a URL or a provider module/object with
    ``stac_url()`` (e.g. :mod:`leafmap_tiles.providers.terrascope`)."""
    if isinstance(source, str):
        if not _paths.is_http_url(source):
            raise CollectionError(f"source must be a STAC API URL (http/https) or a provider, got {source!r}")
        return source.rstrip("/"), source.rstrip("/")
    stac_url = getattr(source, "stac_url", None)
    if callable(stac_url):
        label = getattr(source, "__name__", None) or type(source).__name__
        return str(stac_url()).rstrip("/"), label
    raise TypeError("source must be a STAC API URL or a provider module such as "
                    "leafmap_tiles.providers.terrascope (with a stac_url() function)")


def _jsonable(value: Any) -> Any:
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def parameters_of(stac_url: str, collection: str, bbox, date_range, query, filter, assets) -> dict:
    """The search parameters that identify a cached index (JSON-able)."""
    lo, hi = date_bounds(date_range)
    return _jsonable({
        "stac_url": stac_url,
        "collection": collection,
        "bbox": None if bbox is None else [float(v) for v in bbox],
        "date_range": None if date_range is None else [lo, hi],
        "query": query,
        "filter": filter,
        "assets": None if assets is None else sorted(assets if not isinstance(assets, str) else [assets]),
    })


def parameters_hash(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def _is_raster_asset(asset) -> bool:
    media = (asset.media_type or "").lower()
    if any(t in media for t in _TIFF_TYPES):
        return True
    href = asset.href.split("?", 1)[0].lower()
    return href.endswith((".tif", ".tiff"))


def _item_rows(item, asset_keys: Sequence[str] | None) -> list[dict[str, Any]]:
    import shapely.geometry

    from leafmap_tiles.providers.items import get_render_params

    when = item.datetime or item.common_metadata.start_datetime
    when = when.astimezone(_dt.timezone.utc) if when.tzinfo else when.replace(tzinfo=_dt.timezone.utc)
    if item.geometry is not None:
        geom = shapely.geometry.shape(item.geometry)
    else:
        geom = shapely.geometry.box(*item.bbox)
    bbox = item.bbox or list(geom.bounds)
    cloud = item.properties.get("eo:cloud_cover")
    keys = list(asset_keys) if asset_keys is not None else [
        k for k, a in item.assets.items() if _is_raster_asset(a)]
    rows = []
    for key in keys:
        if key not in item.assets:
            continue
        asset = item.assets[key]
        render = get_render_params(item, key)
        rows.append({
            "id": item.id,
            "collection": item.collection_id,
            "asset": key,
            "href": asset.href,
            "datetime": when,
            "date": when.strftime("%Y-%m-%d"),
            "year": when.year,
            "month": when.month,
            "cloud_cover": None if cloud is None else float(cloud),
            "geometry": shapely.to_wkb(geom),
            "bbox": {"xmin": float(bbox[0]), "ymin": float(bbox[1]),
                     "xmax": float(bbox[2]), "ymax": float(bbox[3])},
            "stac_scale": render["scale"],
            "stac_offset": render["offset"],
            "stac_nodata": render["nodata"],
            "properties": json.dumps(_jsonable(item.properties), sort_keys=True),
            "asset_info": json.dumps(_jsonable({k: v for k, v in asset.to_dict().items() if k != "href"}),
                                     sort_keys=True),
        })
    return rows


def build(
    source: Any,
    collection: str,
    *,
    name: str,
    bbox: Sequence[float] | None = None,
    date_range: Any = None,
    query: dict | None = None,
    filter: dict | None = None,  # noqa: A002 - the STAC API's name
    assets: Sequence[str] | None = None,
    workspace: str | os.PathLike | None = None,
    max_concurrent: int = 16,
    force: bool = False,
    timeout: float = _headers.DEFAULT_TIMEOUT,
    progress: bool = True,
) -> Collection:
    """Search ``collection`` of ``source`` and index the COG headers of its assets.

    Args:
        source: a STAC API URL, or a provider module with ``stac_url()`` such as
            :mod:`leafmap_tiles.providers.terrascope` (log in first: its credentials
            go to its own hosts only).
        collection: the STAC collection id.
        name: the collection's name (its workspace folder by default).
        bbox: (west, south, east, north) in EPSG:4326.
        date_range: ``(start, end)`` (``YYYY-MM-DD``, datetimes, None for open) or
            ``"start/end"``; a date-only end includes that day.
        query, filter: STAC API ``query`` and CQL2-JSON ``filter``.
        assets: asset keys to index (default: every GeoTIFF asset).
        workspace: folder of the index (default ``~/leafmap_tiles_workspace/<name>``).
        max_concurrent: header reads at once.
        force: search and read again even when the cached index matches.
        timeout: seconds before a header read counts as timed out.
        progress: show a progress bar and print a summary.

    A header that cannot be read (401, 404, timeout, not a TIFF) is kept with its
    error (``Collection.failures()``); a warning says how many failed.
    """
    from leafmap_tiles.providers.search import search as stac_search

    if not name or any(c in name for c in "/\\") or name in (".", ".."):
        raise CollectionError(f"name must be a plain folder name, got {name!r}")
    if isinstance(assets, str):
        assets = [assets]
    stac_url, label = resolve_source(source)
    params = parameters_of(stac_url, collection, bbox, date_range, query, filter, assets)
    digest = parameters_hash(params)
    ws = Path(workspace).expanduser() if workspace is not None else default_workspace(name)
    manifest_path = ws / MANIFEST_FILE
    if not force and manifest_path.exists():
        try:
            cached = json.loads(manifest_path.read_text())
        except ValueError:
            cached = {}
        if cached.get("parameters_hash") == digest and (ws / INDEX_DIR).exists():
            col = Collection.load(ws)
            failed = col.failures()
            if failed:  # e.g. built before login: say how to read them again
                kinds = sorted({f["error_kind"] for f in failed})
                warnings.warn(
                    f"cached index {name!r}: {len(failed)} of {len(col)} headers could not be read when it "
                    f"was built ({', '.join(kinds)}); build(..., force=True) reads them again"
                    + (" (log in to the provider first)" if "auth" in kinds else ""),
                    stacklevel=2,
                )
            return col

    start, end = date_bounds(date_range)
    extra: dict[str, Any] = {}
    if query is not None:
        extra["query"] = query
    if filter is not None:
        extra["filter"] = filter
    items = stac_search(stac_url, collection, bbox=bbox, start=start, end=end,
                        unique_dates=False, **extra)
    rows = [row for item in items for row in _item_rows(item, assets)]
    found = _headers.read_headers([r["href"] for r in rows], max_concurrent=max_concurrent,
                                  timeout=timeout, progress=progress)
    for row, header in zip(rows, found):
        row.update(header)
    table = _index.table_from_rows(rows)
    failed = [r for r in rows if r.get("error")]
    dates = sorted(r["date"] for r in rows)
    manifest = {
        "format": "leafmap_tiles.collection/1",
        "name": name,
        "source": label,
        "stac_url": stac_url,
        "collection": collection,
        "parameters": params,
        "parameters_hash": digest,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "items": len({r["id"] for r in rows}),
        "rows": len(rows),
        "failed": len(failed),
        "date_range": [dates[0], dates[-1]] if dates else None,
    }
    ws.mkdir(parents=True, exist_ok=True)
    _index.write_partitioned(table, ws / INDEX_DIR, manifest)
    tmp = manifest_path.with_name(MANIFEST_FILE + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    os.replace(tmp, manifest_path)
    result = Collection(table, manifest, path=ws)
    if progress:
        print(result.summary())
    if failed:
        warnings.warn(result.summary(), stacklevel=2)
    return result


_date_bounds = date_bounds  # the name before issue 17 (branches written before it)


def from_items(items, *, name: str = "items", assets: Sequence[str] | None = None, max_concurrent: int = 16,
               timeout: float = _headers.DEFAULT_TIMEOUT, progress: bool = False) -> Collection:
    """A collection (in memory, not written) of STAC items already at hand: ``pystac.Item``
    objects or their dicts, e.g. the result of a search or items describing local COGs.
    Their headers are read as by :func:`build` (failures kept in the rows); ``assets``
    picks asset keys (default: every GeoTIFF asset).  ``export`` writes it."""
    import pystac

    parsed = [it if isinstance(it, pystac.Item) else pystac.Item.from_dict(dict(it)) for it in items]
    if isinstance(assets, str):
        assets = [assets]
    rows = [row for item in parsed for row in _item_rows(item, assets)]
    found = _headers.read_headers([r["href"] for r in rows], max_concurrent=max_concurrent,
                                  timeout=timeout, progress=progress)
    for row, header in zip(rows, found):
        row.update(header)
    dates = sorted(r["date"] for r in rows)
    manifest = {"format": "leafmap_tiles.collection/1", "name": name, "source": "items",
                "items": len({r["id"] for r in rows}), "rows": len(rows),
                "failed": sum(1 for r in rows if r.get("error")),
                "date_range": [dates[0], dates[-1]] if dates else None}
    return Collection(_index.table_from_rows(rows), manifest)


def local_item(path: str | os.PathLike, datetime: Any = None, *, asset: str = "data", item_id: str | None = None,
               scale: float | None = None, offset: float | None = None, nodata: float | None = None):
    """A ``pystac.Item`` for one local (or remote) GeoTIFF, for :func:`from_items`:
    footprint from the file's bounds (EPSG:4326), one asset ``asset`` whose href is the
    path, ``raster:bands`` scale/offset/nodata when given.  ``datetime``: a
    ``datetime``/``date``/ISO string, else the ``YYYYMMDD`` or ``YYYY-MM-DD`` in the
    file name (``ValueError`` when there is none)."""
    import re

    import pystac
    import rasterio
    import shapely.geometry
    from rasterio.warp import transform_bounds

    path = os.fspath(path)
    when = datetime
    if when is None:
        m = re.search(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)", os.path.basename(path))
        if m is None:
            raise CollectionError(f"no date in the name of {path}: give datetime=")
        when = _dt.datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)), tzinfo=_dt.timezone.utc)
    elif isinstance(when, str):
        when = _dt.datetime.fromisoformat(when)
    elif isinstance(when, _dt.date) and not isinstance(when, _dt.datetime):
        when = _dt.datetime(when.year, when.month, when.day)
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    with rasterio.open(path) as ds:
        bounds = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
    geom = shapely.geometry.mapping(shapely.geometry.box(*bounds))
    item = pystac.Item(id=item_id or os.path.splitext(os.path.basename(path))[0], geometry=geom,
                       bbox=list(bounds), datetime=when, properties={})
    extra = {}
    band = {k: v for k, v in (("scale", scale), ("offset", offset), ("nodata", nodata)) if v is not None}
    if band:
        extra["raster:bands"] = [band]
    item.add_asset(asset, pystac.Asset(href=path, media_type="image/tiff; application=geotiff",
                                       roles=["data"], extra_fields=extra))
    return item
