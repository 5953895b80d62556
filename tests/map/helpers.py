"""NAIP series helpers: the bundled windows and an independent rasterio reading of
a pixel's NDVI, the reference for the map's values."""

from __future__ import annotations

import glob
import shutil
from pathlib import Path

import numpy as np
import rasterio
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window

NAIP_DIR = Path(__file__).resolve().parents[1] / "data" / "naip"
NDVI = "(b4-b1)/(b4+b1)"


def naip_files() -> list[str]:
    files = sorted(glob.glob(str(NAIP_DIR / "*.tif")))
    assert len(files) == 10
    return files


def click(m, lon: float, lat: float) -> None:
    """What the browser sends when the user clicks the map at (lon, lat)."""
    m._handle_leaflet_event(None, {"event": "interaction", "type": "click", "coordinates": [lat, lon]}, [])


def pixel_lonlat(path: str, row: int, col: int) -> tuple[float, float]:
    """(lon, lat) of the centre of pixel (row, col) of ``path``."""
    with rasterio.open(path) as ds:
        x, y = ds.xy(row, col)
        lons, lats = warp_transform(ds.crs, "EPSG:4326", [x], [y])
    return lons[0], lats[0]


def rasterio_ndvi(path: str, lon: float, lat: float):
    """NDVI of the pixel containing (lon, lat), read with rasterio alone: (b4 - b1) /
    (b4 + b1) in float64; None when a band is nodata or the point is outside."""
    with rasterio.open(path) as ds:
        xs, ys = warp_transform("EPSG:4326", ds.crs, [lon], [lat])
        row, col = ds.index(xs[0], ys[0])
        if not (0 <= row < ds.height and 0 <= col < ds.width):
            return None
        a = ds.read([1, 4], window=Window(col, row, 1, 1), masked=True)
    if np.ma.getmaskarray(a).any():
        return None
    b1, b4 = float(a[0, 0, 0]), float(a[1, 0, 0])
    if b4 + b1 == 0:
        return None
    return (b4 - b1) / (b4 + b1)


def copy_with_nodata_block(src: str, dst: str, rows: slice, cols: slice) -> None:
    """Copy ``src`` to ``dst`` with every band set to the nodata value (0) in a block."""
    shutil.copy(src, dst)
    with rasterio.open(dst, "r+") as ds:
        a = ds.read()
        a[:, rows, cols] = 0
        ds.write(a)
