"""The collection index as GeoParquet: one row per item and asset.

Written with pyarrow: geometry as WKB (column ``geometry``, OGC:CRS84 lon/lat, the
STAC item geometry), a ``bbox`` struct column declared as the GeoParquet 1.1
bounding-box covering, and GeoParquet ``geo`` metadata in every file.  In a
workspace the index is a Hive-partitioned dataset ``index/year=YYYY/month=M/`` (one
file per month); :func:`write_file` writes one file with every column (export).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

GEO_VERSION = "1.1.0"
#: Key of the collection manifest (JSON) in the Parquet key-value metadata.
MANIFEST_KEY = b"leafmap_tiles:collection"

_BBOX = pa.struct([("xmin", pa.float64()), ("ymin", pa.float64()),
                   ("xmax", pa.float64()), ("ymax", pa.float64())])

#: The index schema; ``year``/``month`` are the partition columns.
SCHEMA = pa.schema([
    ("id", pa.string()),
    ("collection", pa.string()),
    ("asset", pa.string()),
    ("href", pa.string()),
    ("datetime", pa.timestamp("us", tz="UTC")),
    ("date", pa.string()),
    ("year", pa.int16()),
    ("month", pa.int8()),
    ("cloud_cover", pa.float64()),
    ("geometry", pa.binary()),
    ("bbox", _BBOX),
    ("stac_scale", pa.float64()),
    ("stac_offset", pa.float64()),
    ("stac_nodata", pa.float64()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("count", pa.int32()),
    ("dtype", pa.string()),
    ("crs", pa.string()),
    ("epsg", pa.int32()),
    ("transform", pa.list_(pa.float64())),
    ("block_width", pa.int32()),
    ("block_height", pa.int32()),
    ("overviews", pa.list_(pa.int32())),
    ("compression", pa.string()),
    ("nodata", pa.float64()),
    ("scale", pa.float64()),
    ("offset", pa.float64()),
    ("is_tiled", pa.bool_()),
    ("error", pa.string()),
    ("error_kind", pa.string()),
    ("properties", pa.string()),   # JSON of the item's properties
    ("asset_info", pa.string()),   # JSON of the STAC asset (title, type, roles, raster fields)
])

PARTITIONS = ("year", "month")
_PARTITION_SCHEMA = pa.schema([("year", pa.int16()), ("month", pa.int8())])
SORT_KEYS = [("datetime", "ascending"), ("id", "ascending"), ("asset", "ascending")]


def table_from_rows(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Rows (dicts with the :data:`SCHEMA` fields) as a table sorted by datetime, id, asset."""
    table = pa.Table.from_pylist([dict(r) for r in rows], schema=SCHEMA)
    return table.sort_by(SORT_KEYS) if table.num_rows else table


def geo_metadata(table: pa.Table) -> dict[str, Any]:
    """The GeoParquet ``geo`` metadata of ``table`` (types and bbox from its geometries)."""
    import shapely

    geoms = shapely.from_wkb([g for g in table.column("geometry").to_pylist() if g is not None])
    types = sorted({shapely.get_type_id(g) for g in geoms})
    names = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint",
             5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection"}
    column: dict[str, Any] = {
        "encoding": "WKB",
        "geometry_types": [names[t] for t in types if t in names],
        "covering": {"bbox": {"xmin": ["bbox", "xmin"], "ymin": ["bbox", "ymin"],
                              "xmax": ["bbox", "xmax"], "ymax": ["bbox", "ymax"]}},
    }
    if len(geoms):
        bounds = shapely.total_bounds(geoms)
        column["bbox"] = [float(v) for v in bounds]
    # no "crs": GeoParquet's default, OGC:CRS84 (lon/lat), is what STAC geometries use
    return {"version": GEO_VERSION, "primary_column": "geometry", "columns": {"geometry": column}}


def _with_metadata(table: pa.Table, manifest: Mapping[str, Any] | None) -> pa.Table:
    meta = dict(table.schema.metadata or {})
    meta[b"geo"] = json.dumps(geo_metadata(table)).encode()
    if manifest is not None:
        meta[MANIFEST_KEY] = json.dumps(manifest, sort_keys=True).encode()
    return table.replace_schema_metadata(meta)


def write_file(table: pa.Table, path: str | os.PathLike, manifest: Mapping[str, Any] | None = None) -> None:
    """One GeoParquet file with every column (and the manifest in its metadata)."""
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(_with_metadata(table, manifest), tmp, compression="zstd")
    os.replace(tmp, path)


def write_partitioned(table: pa.Table, root: str | os.PathLike, manifest: Mapping[str, Any] | None = None) -> None:
    """Replace the dataset under ``root`` with ``table`` partitioned by year and month
    (``root/year=2020/month=8/part-0.parquet``; the partition columns live in the paths)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    root = Path(root)
    tmp = root.with_name(root.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    pairs = sorted({(r["year"], r["month"]) for r in table.select(list(PARTITIONS)).to_pylist()})
    for year, month in pairs:
        part = table.filter(pc.and_(pc.equal(table["year"], year), pc.equal(table["month"], month)))
        part = part.drop_columns(list(PARTITIONS))
        folder = tmp / f"year={year}" / f"month={month}"
        folder.mkdir(parents=True)
        pq.write_table(_with_metadata(part, manifest), folder / "part-0.parquet", compression="zstd")
    if root.exists():
        shutil.rmtree(root)
    os.replace(tmp, root)


def _conform(table: pa.Table) -> pa.Table:
    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names
               else pa.nulls(table.num_rows, f.type) for f in SCHEMA]
    out = pa.Table.from_arrays(columns, schema=SCHEMA)
    return out.sort_by(SORT_KEYS) if out.num_rows else out


def read(path: str | os.PathLike) -> tuple[pa.Table, dict[str, Any] | None]:
    """(index table, manifest) from a GeoParquet file or a partitioned dataset folder."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    path = Path(path)
    if path.is_dir():
        files = sorted(path.rglob("*.parquet"))
        if not files:
            return SCHEMA.empty_table(), None
        dataset = ds.dataset(str(path), format="parquet",
                             partitioning=ds.partitioning(_PARTITION_SCHEMA, flavor="hive"))
        table = dataset.to_table()
        meta = pq.read_schema(files[0]).metadata or {}
    else:
        table = pq.read_table(path)
        meta = table.schema.metadata or {}
    manifest = json.loads(meta[MANIFEST_KEY]) if MANIFEST_KEY in meta else None
    return _conform(table), manifest
