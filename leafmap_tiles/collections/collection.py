"""``Collection``: a cached index of a STAC search, usable without the STAC API.

A collection is a table with one row per item and asset (see
:data:`leafmap_tiles.collections.index.SCHEMA`) and a manifest (name, source, search
parameters, counts).  Everything here works from the index alone; only
:meth:`Collection.to_store` (statistics) and the tile server (pixels) read the
assets themselves.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from . import index as _index
from leafmap_tiles.errors import CollectionError, CollectionIndexError, CollectionKeyError, CollectionNotFoundError

MANIFEST_FILE = "collection.json"
INDEX_DIR = "index"
WORKSPACE_ENV = "LEAFMAP_TILES_WORKSPACE"


def workspace_root() -> Path:
    """Folder of the workspaces: ``$LEAFMAP_TILES_WORKSPACE`` or ``~/leafmap_tiles_workspace``."""
    from leafmap_tiles import settings

    return Path(settings.current().workspace).expanduser()


def default_workspace(name: str) -> Path:
    return workspace_root() / name


def _plain_header(row: Mapping[str, Any]) -> dict[str, Any]:
    from .headers import HEADER_FIELDS

    return {k: row.get(k) for k in HEADER_FIELDS}


@dataclass(frozen=True)
class CollectionAsset:
    """One asset of one item of a collection (``collection[i]``); ``Map.add_raster``
    accepts it and uses the index's nodata/scale/offset."""

    row: Mapping[str, Any]

    @property
    def href(self) -> str:
        return self.row["href"]

    @property
    def id(self) -> str:
        return self.row["id"]

    @property
    def asset(self) -> str:
        return self.row["asset"]

    @property
    def date(self) -> str:
        return self.row["date"]

    @property
    def header(self) -> dict[str, Any]:
        return _plain_header(self.row)

    def render_params(self) -> dict[str, Any]:
        """{"scale", "offset", "nodata"}: STAC's values, else a one-band file's own
        (scale 1 / offset 0 count as none).  A file of several bands keeps its tags to
        the tile server, which applies each band's own (the index holds band 1's only:
        given to the layer, they were applied to every band, e.g. band 2 of
        cog_scale.tif read 1000.3 for 2003.4)."""
        r = self.row
        scale = r.get("stac_scale")
        offset = r.get("stac_offset")
        one_band = r.get("count") == 1
        if (scale is None and offset is None and one_band
                and (r.get("scale"), r.get("offset")) not in ((None, None), (1.0, 0.0))):
            scale, offset = r.get("scale"), r.get("offset")
        return {"scale": scale, "offset": offset, "nodata": r.get("stac_nodata")}

    def raster_source(self) -> tuple[str, dict[str, Any]]:
        """(href, {"name", "nodata", "scale", "offset", "protected"}) for the map."""
        from leafmap_tiles.providers.access import credentials_for

        return self.href, {"name": f"{self.id} {self.asset}", **self.render_params(),
                           "protected": credentials_for(self.href) is not None}

    def __repr__(self) -> str:
        return f"CollectionAsset(id={self.id!r}, asset={self.asset!r}, date={self.date!r})"


class Collection:
    """A STAC search and its COG headers, cached as GeoParquet.

    ``len()`` is the number of rows (item/asset pairs); ``collection[i]`` is a
    :class:`CollectionAsset`."""

    def __init__(self, table: pa.Table, manifest: Mapping[str, Any] | None = None,
                 path: str | os.PathLike | None = None) -> None:
        self.table = table
        self.manifest = dict(manifest or {})
        self.path = Path(path) if path is not None else None

    # ------------------------------------------------------------ basics
    @property
    def name(self) -> str | None:
        return self.manifest.get("name")

    @property
    def source(self) -> str | None:
        return self.manifest.get("source")

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, i: int) -> CollectionAsset:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise CollectionIndexError(f"collection index {i} out of range ({n} rows)")
        return CollectionAsset(self.table.slice(i, 1).to_pylist()[0])

    def __iter__(self) -> Iterator[CollectionAsset]:
        for row in self.table.to_pylist():
            yield CollectionAsset(row)

    def __repr__(self) -> str:
        return f"Collection(name={self.name!r}, rows={len(self)}, dates={len(self.dates)}, bands={self.bands})"

    @property
    def dates(self) -> list[str]:
        """Distinct ``YYYY-MM-DD`` dates (UTC), sorted."""
        return sorted(set(self.table.column("date").to_pylist()))

    @property
    def bands(self) -> list[str]:
        """Distinct asset keys, sorted."""
        return sorted(set(self.table.column("asset").to_pylist()))

    @property
    def item_ids(self) -> list[str]:
        return sorted(set(self.table.column("id").to_pylist()))

    def asset(self, item_id: str, asset: str) -> CollectionAsset:
        """The row of ``item_id``/``asset``."""
        for row in self.table.filter(pc.and_(pc.equal(self.table["id"], item_id),
                                             pc.equal(self.table["asset"], asset))).to_pylist():
            return CollectionAsset(row)
        raise CollectionKeyError(f"no asset {asset!r} of item {item_id!r} in this collection")

    def failures(self) -> list[dict[str, Any]]:
        """Rows whose header could not be read: {"id", "asset", "href", "error_kind", "error"}."""
        failed = self.table.filter(pc.is_valid(self.table["error"]))
        return failed.select(["id", "asset", "href", "error_kind", "error"]).to_pylist()

    def summary(self) -> str:
        """One line: rows, items, dates, and how many headers failed (by kind)."""
        fails = self.failures()
        kinds: dict[str, int] = {}
        for f in fails:
            kinds[f["error_kind"]] = kinds.get(f["error_kind"], 0) + 1
        text = (f"collection {self.name!r}: {len(self)} assets of {len(self.item_ids)} items, "
                f"{len(self.dates)} dates; {len(fails)} of {len(self)} headers could not be read")
        if kinds:
            text += " (" + ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())) + "; see .failures())"
        return text

    def equals(self, other: "Collection") -> bool:
        """Same index rows (in order) as ``other``."""
        return self.table.equals(other.table)

    # ------------------------------------------------------------ filter
    def filter(self, bbox: Sequence[float] | None = None, date_range: Any = None,
               cloud_cover_lt: float | None = None,
               where: pc.Expression | Callable[[pa.Table], Any] | Mapping[str, Any] | None = None) -> "Collection":
        """A new collection with the rows that match every condition given.

        Args:
            bbox: (west, south, east, north), EPSG:4326: items whose geometry intersects it.
            date_range: ``(start, end)`` or ``"start/end"`` as in ``build`` (a date-only
                end includes that day).
            cloud_cover_lt: ``eo:cloud_cover`` strictly below this (items without one
                do not match).
            where: a ``pyarrow.compute`` expression on the index columns, a callable
                ``table -> boolean array``, or ``{column: value or [values]}``.
        """
        from leafmap_tiles.providers.dates import date_bounds, parse_bound

        table = self.table
        if date_range is not None:
            lo, hi = date_bounds(date_range)
            lo_t = parse_bound(lo, is_end=False)
            hi_t = parse_bound(hi, is_end=True)
            if lo_t is not None:
                table = table.filter(pc.greater_equal(table["datetime"], pa.scalar(lo_t, table.schema.field("datetime").type)))
            if hi_t is not None:
                table = table.filter(pc.less_equal(table["datetime"], pa.scalar(hi_t, table.schema.field("datetime").type)))
        if cloud_cover_lt is not None:
            table = table.filter(pc.less(table["cloud_cover"], float(cloud_cover_lt)))
        if bbox is not None:
            import numpy as np
            import shapely

            w, s, e, n = (float(v) for v in bbox)
            if s > n:
                raise CollectionError("bbox south is greater than north")
            geoms = shapely.from_wkb(table.column("geometry").to_pylist())
            mask = shapely.intersects(geoms, shapely.box(w, s, e, n)) if len(geoms) else np.zeros(0, bool)
            table = table.filter(pa.array(mask, pa.bool_()))
        if where is not None:
            if isinstance(where, pc.Expression):
                table = table.filter(where)
            elif callable(where):
                table = table.filter(pa.array(where(table), pa.bool_()))
            elif isinstance(where, Mapping):
                for col, value in where.items():
                    if col not in table.column_names:
                        raise CollectionKeyError(f"no column {col!r} in the index")
                    if isinstance(value, (list, tuple, set)):
                        table = table.filter(pc.is_in(table[col], value_set=pa.array(list(value))))
                    else:
                        table = table.filter(pc.equal(table[col], value))
            else:
                raise TypeError("where must be a pyarrow.compute expression, a callable or a dict")
        return Collection(table, self.manifest, path=None)

    # ------------------------------------------------------------ conversions
    def to_geodataframe(self):
        """The index as a ``geopandas.GeoDataFrame`` (CRS OGC:CRS84); needs geopandas."""
        try:
            import geopandas
        except ImportError as exc:  # pragma: no cover
            raise ImportError("to_geodataframe() needs geopandas: pip install geopandas") from exc
        df = self.table.to_pandas()
        df["geometry"] = geopandas.GeoSeries.from_wkb(df["geometry"], crs="OGC:CRS84")
        return geopandas.GeoDataFrame(df, geometry="geometry", crs="OGC:CRS84")

    def export(self, path: str | os.PathLike) -> Path:
        """Write the collection elsewhere: ``*.parquet`` -> one GeoParquet file (the
        manifest in its metadata); otherwise a folder like a workspace (partitioned
        ``index/`` and ``collection.json``).  Returns the path."""
        path = Path(path).expanduser()
        manifest = dict(self.manifest)
        manifest["rows"] = len(self)
        manifest["items"] = len(self.item_ids)
        manifest["failed"] = len(self.failures())
        dates = self.dates
        manifest["date_range"] = [dates[0], dates[-1]] if dates else None
        if path.suffix.lower() in (".parquet", ".geoparquet"):
            _index.write_file(self.table, path, manifest)
        else:
            path.mkdir(parents=True, exist_ok=True)
            _index.write_partitioned(self.table, path / INDEX_DIR, manifest)
            (path / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Collection":
        """A collection from a workspace folder, an exported file or folder, or the
        name of a collection in the default workspace root."""
        p = Path(path).expanduser()
        if not p.exists() and isinstance(path, str) and os.sep not in path and "/" not in path:
            p = default_workspace(path)
        if not p.exists():
            raise CollectionNotFoundError(f"no collection at {path}")
        manifest = None
        if p.is_dir() and (p / INDEX_DIR).is_dir():
            table, manifest = _index.read(p / INDEX_DIR)
            if (p / MANIFEST_FILE).exists():
                manifest = json.loads((p / MANIFEST_FILE).read_text())
        else:
            table, manifest = _index.read(p)
        return cls(table, manifest, path=p)

    # ------------------------------------------------------------ maps
    def to_time_sources(self, asset: str | None = None) -> dict[str, dict[str, Any]]:
        """``{date: {"urls": [...], "scale", "offset", "nodata", "protected"}}`` for
        ``Map.add_time_slider``: every item of a date (a mosaic), rows whose header
        failed left out.  ``asset`` may be omitted when the collection has one."""
        if asset is None:
            if len(self.bands) != 1:
                raise CollectionError(f"choose an asset: asset= one of {self.bands}")
            asset = self.bands[0]
        if asset not in self.bands:
            raise CollectionKeyError(f"no asset {asset!r} in this collection (assets: {self.bands})")
        rows = self.table.filter(pc.and_(pc.equal(self.table["asset"], asset),
                                         pc.is_null(self.table["error"])))
        out: dict[str, dict[str, Any]] = {}
        for row in rows.to_pylist():
            a = CollectionAsset(row)
            href, info = a.raster_source()
            entry = out.setdefault(row["date"], {"urls": [], **a.render_params(), "protected": False})
            entry["urls"].append(href)
            entry["protected"] = entry["protected"] or info["protected"]
        if not out:
            raise CollectionError(f"no readable {asset!r} asset in this collection")
        return out

    # ------------------------------------------------------------ pixels
    def _rows_by_date(self, asset: str | None) -> tuple[str, dict[str, list]]:
        if asset is None:
            if len(self.bands) != 1:
                raise CollectionError(f"choose an asset: asset= one of {self.bands}")
            asset = self.bands[0]
        if asset not in self.bands:
            raise CollectionKeyError(f"no asset {asset!r} in this collection (assets: {self.bands})")
        rows = self.table.filter(pc.and_(pc.equal(self.table["asset"], asset),
                                         pc.is_null(self.table["error"]))).to_pylist()
        by_date: dict[str, list] = {}
        for row in rows:
            by_date.setdefault(row["date"], []).append(row)
        if not by_date:
            raise CollectionError(f"no readable {asset!r} asset in this collection")
        return asset, dict(sorted(by_date.items()))

    def sample_points(self, points, asset: str | None = None, *, band: int = 1, max_concurrent: int = 8,
                      progress: bool | None = None):
        """Values of ``asset`` at ``points`` on every date: a ``pandas.DataFrame`` with
        one row per (point, date) and columns ``point``, ``lon``, ``lat``, ``date``
        (``datetime64``), ``value`` (physical units: STAC ``raster:scale``/``offset``,
        else the file's tags; NaN for nodata or outside every item of that date).

        Args:
            points: ``[(lon, lat), ...]`` or shapely/GeoJSON points (``point`` is their
                position), or ``{name: point}`` (``point`` is the name); EPSG:4326.
            asset: the asset key (may be omitted when the collection has one).
            band: 1-based band of the asset's file.
            max_concurrent: dates read at once (threads).
            progress: tqdm bar (default: for 20 dates or more).

        Each point reads the one pixel that holds it (no resampling); the items of a
        date form a mosaic (first item with data).  Items whose cached header puts no
        point inside their grid are not requested; each URL gets its own host's
        credentials.  Raises ``ValueError``/``KeyError`` for bad points or asset, and
        the read errors of ``open_raster`` (``AuthenticationError`` ...)."""
        import numpy as np
        import pandas as pd

        from . import pixels

        names, lons, lats = pixels.check_points(points)
        band = pixels.check_band(band)
        asset, by_date = self._rows_by_date(asset)
        values = pixels.run_dates(lambda rows: pixels.sample_date(rows, lons, lats, band), by_date,
                                  max_concurrent, progress, f"{self.name or 'collection'}: points")
        dates = list(by_date)
        n = len(names)
        df = pd.DataFrame({
            "point": np.repeat(np.array(names, dtype=object), len(dates)),
            "lon": np.repeat(lons, len(dates)),
            "lat": np.repeat(lats, len(dates)),
            "date": pd.to_datetime(dates * n),
            "value": np.stack(values, axis=1).reshape(-1) if dates else np.zeros(0),
        })
        df.attrs["asset"] = asset
        return df

    def read(self, bbox: Sequence[float], asset: str | None = None, resolution: float | None = None, *,
             band: int = 1, resampling: str = "nearest", max_concurrent: int = 8, progress: bool | None = None):
        """Pixels of ``asset`` over ``bbox`` on every date: an ``xarray.DataArray`` with
        dims ``(time, y, x)`` (float64, physical units, NaN = nodata), coordinates at
        pixel centres and the CRS: written by rioxarray (``da.rio.crs``,
        ``da.rio.transform()``) when it is installed, else in ``attrs["crs"]`` and
        ``attrs["transform"]`` (GDAL order a..f).

        Args:
            bbox: (west, south, east, north) in EPSG:4326.
            asset: the asset key (may be omitted when the collection has one).
            resolution: pixel size in the units of the first item's CRS (metres for UTM);
                default the item's own: then the pixels are the file's, unresampled.
            band: 1-based band of the asset's file.
            resampling: rasterio resampling name for other grids (``"nearest"``, ``"average"`` ...).
            max_concurrent: dates read at once (threads).
            progress: tqdm bar (default: for 20 dates or more).

        The grid is the first item's CRS and pixel grid, extended over ``bbox``.  From
        the cached headers: items outside ``bbox`` are not requested, and a coarser
        ``resolution`` opens the overview level nearest to it (not the full-resolution
        blocks).  Raises :class:`~leafmap_tiles.errors.NoOverlapError` (a
        ``ValueError``) when ``bbox`` meets none of the items (before anything is
        read), ``ValueError`` for a bad bbox/resolution or a result larger
        than 200 million values, ``KeyError`` for an unknown asset, ``ImportError``
        without xarray."""
        from . import pixels

        try:
            w, s, e, n = (float(v) for v in bbox)
        except (TypeError, ValueError):
            raise CollectionError(f"bbox must be (west, south, east, north) in EPSG:4326, got {bbox!r}") from None
        if not (s < n and w < e and -90 <= s and n <= 90 and -180 <= w and e <= 360):
            raise CollectionError(f"bbox {(w, s, e, n)} is not (west, south, east, north) in EPSG:4326 with W < E, S < N")
        from rasterio.enums import Resampling

        if resampling not in Resampling.__members__:
            raise CollectionError(f"unknown resampling {resampling!r}: one of {', '.join(Resampling.__members__)}")
        band = pixels.check_band(band)
        pixels.check_resolution(resolution)
        asset, by_date = self._rows_by_date(asset)
        pixels.check_bbox_overlaps(by_date, (w, s, e, n), asset)
        first_rows = next(iter(by_date.values()))
        grid = pixels.output_grid(first_rows, (w, s, e, n), resolution)
        size = len(by_date) * grid[2] * grid[3]
        if size > pixels.MAX_READ_PIXELS:
            raise CollectionError(f"{len(by_date)} dates x {grid[3]} x {grid[2]} pixels is more than "
                             f"{pixels.MAX_READ_PIXELS}: choose a smaller bbox, a coarser resolution or fewer dates")
        import numpy as np

        planes = pixels.run_dates(lambda rows: pixels.read_date(rows, grid, band, resampling), by_date,
                                  max_concurrent, progress, f"{self.name or 'collection'}: read")
        return pixels.to_dataarray(np.stack(planes), list(by_date), grid, asset,
                                   {"collection": self.name, "asset": asset, "band": band})

    # ------------------------------------------------------------ key store
    def to_store(self, store: Any, keys: Sequence[str] = ("date", "asset"), *,
                 max_concurrent: int = 4, progress: bool = False) -> int:
        """Write one key-store row per item/asset (rows whose header failed are left
        out) and return how many were written.

        Key values come from the index columns named by ``keys``; the path is the
        asset href.  Metadata: bounds and statistics of band 1 read from the COG's
        smallest overview (so approximate: ``metadata["approximate"]`` is true in the
        metadata JSON), plus the cached header, the item id, datetime and STAC
        scale/offset/nodata.  ``store`` is a :class:`~leafmap_tiles.store.KeyStore`
        or a path/URL for ``store.open``; a new database is created with ``keys``.

        Raises ``ValueError`` when two rows would get the same keys (e.g. two tiles
        of one date: use ``keys=("date", "id", "asset")``); nothing is written then."""
        from leafmap_tiles import store as _store
        from leafmap_tiles.errors import InvalidDatabaseError

        keys = [keys] if isinstance(keys, str) else list(keys)
        for k in keys:
            if k not in self.table.column_names:
                raise CollectionKeyError(f"no column {k!r} in the index (columns: {self.table.column_names})")
        if not hasattr(store, "insert"):
            store = _store.open(store)
        rows = self.table.filter(pc.is_null(self.table["error"])).to_pylist()
        seen: dict[tuple, str] = {}
        for row in rows:
            kv = tuple(str(row[k]) for k in keys)
            if kv in seen:
                raise CollectionError(f"keys {dict(zip(keys, kv))} given to both {seen[kv]} and "
                                 f"{row['id']}/{row['asset']}: add 'id' to keys")
            seen[kv] = f"{row['id']}/{row['asset']}"
        try:
            existing = tuple(store.get_keys())
        except InvalidDatabaseError:
            store.create(keys, exist_ok=True)
            existing = tuple(keys)
        if tuple(existing) != tuple(keys):
            raise CollectionError(f"the store's keys are {existing}, not {tuple(keys)}")
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=max(1, int(max_concurrent))) as pool:
            metas = list(pool.map(lambda r: approximate_metadata(r, self.name), rows))
        for row, meta in zip(rows, metas):
            store.insert([str(row[k]) for k in keys], row["href"], metadata=meta)
        return len(rows)


def smallest_overview_shape(row: Mapping[str, Any]) -> tuple[int, int]:
    """(rows, cols) of the smallest overview of band 1 (the full size without overviews)."""
    h, w = int(row["height"]), int(row["width"])
    factors = row.get("overviews") or []
    if not factors:
        return h, w
    f = max(factors)
    return max(1, math.ceil(h / f)), max(1, math.ceil(w / f))


def approximate_metadata(row: Mapping[str, Any], collection_name: str | None = None) -> dict[str, Any]:
    """Terracotta metadata of one index row, statistics from its smallest overview."""
    import rasterio

    from leafmap_tiles.providers.access import gdal_auth_options
    from leafmap_tiles.store import compute_metadata

    shape = smallest_overview_shape(row)
    extra = {
        "approximate": True,
        "statistics_from": f"smallest overview ({shape[0]}x{shape[1]} of {row['height']}x{row['width']})",
        "collection": collection_name,
        "item_id": row["id"],
        "asset": row["asset"],
        "datetime": row["datetime"].isoformat() if row.get("datetime") is not None else None,
        "cloud_cover": row.get("cloud_cover"),
        "stac": {"scale": row.get("stac_scale"), "offset": row.get("stac_offset"),
                 "nodata": row.get("stac_nodata")},
        "header": _plain_header(row),
    }
    # the credentials of this href's host only, for this thread only
    with rasterio.Env(**gdal_auth_options(row["href"])):
        return compute_metadata(row["href"], max_shape=shape, extra_metadata=extra)


def list_collections(workspace: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Collections under ``workspace`` (default: the workspace root): ``[{"name",
    "items", "rows", "failed", "date_range", "source", "collection", "path"}]`` from
    their manifests, sorted by name.  ``workspace`` may also be one collection's folder."""
    root = Path(workspace).expanduser() if workspace is not None else workspace_root()
    if not root.is_dir():
        return []
    candidates = [root] if (root / MANIFEST_FILE).exists() else sorted(p for p in root.iterdir() if p.is_dir())
    out = []
    for folder in candidates:
        mf = folder / MANIFEST_FILE
        if not mf.exists():
            continue
        try:
            m = json.loads(mf.read_text())
        except ValueError:
            continue
        out.append({"name": m.get("name", folder.name), "items": m.get("items"), "rows": m.get("rows"),
                    "failed": m.get("failed"), "date_range": m.get("date_range"),
                    "source": m.get("source"), "collection": m.get("collection"), "path": str(folder)})
    return sorted(out, key=lambda d: str(d["name"]))


def load(path: str | os.PathLike) -> Collection:
    """:meth:`Collection.load`."""
    return Collection.load(path)
