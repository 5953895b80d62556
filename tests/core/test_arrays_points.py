"""Arrays, xarray, rasterio datasets and the point route."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine

from tests.conftest import data


def _ndvi_array():
    with rasterio.open(data("landsat7_window.tif")) as ds:
        b3, b4 = ds.read([3, 4]).astype("float32")
        transform, crs = ds.transform, ds.crs
    ndvi = (b4 - b3) / (b4 + b3)
    ndvi = np.clip(ndvi, -0.2, 0.9).astype("float32")
    ndvi[100:140, 200:260] = np.nan  # holes
    return ndvi, transform, crs


def test_float32_ndvi_array_round_trips_through_point(m):
    ndvi, transform, crs = _ndvi_array()
    layer = m.add_raster(ndvi, crs=crs, transform=transform, colormap="RdYlGn", vmin=-0.2, vmax=0.9)
    assert layer.info["dtype"] == "float32"
    for (r, c) in [(10, 10), (300, 400), (120, 230), (500, 20)]:
        lon, lat = transform * (c + 0.5, r + 0.5)
        pt = m.server.point(layer.source_id, lon, lat)
        expected = ndvi[r, c]
        if np.isnan(expected):
            assert pt["values"] == [None]
        else:
            assert pt["values"][0] == float(expected)  # exact float32 value
    # outside the raster
    pt = m.server.point(layer.source_id, 0.0, 0.0)
    assert pt["inside"] is False and pt["values"] == [None]


def test_int_array_keeps_dtype_and_nodata(m):
    arr = np.arange(256 * 256, dtype="int16").reshape(256, 256)
    arr[:10] = -9999
    t = Affine(0.001, 0, 10.0, 0, -0.001, 50.0)
    layer = m.add_raster(arr, crs="EPSG:4326", transform=t, nodata=-9999)
    assert layer.info["dtype"] == "int16" and layer.info["nodata"] == -9999
    pt = m.server.point(layer.source_id, 10.0005, 49.9995)
    assert pt["values"] == [None]
    pt = m.server.point(layer.source_id, 10.0105, 49.9795)
    assert pt["values"] == [int(arr[20, 10])]


def test_xarray_and_rasterio_dataset(m):
    rioxarray = pytest.importorskip("rioxarray")
    da = rioxarray.open_rasterio(data("cog_nodata_nan.tif")).squeeze("band", drop=True)
    layer = m.add_raster(da, colormap="Greys")
    assert layer.info["dtype"] == "float32"
    with rasterio.open(data("rmnp-dem.tif")) as ds:
        lyr = m.add_raster(ds, colormap="terrain")
        assert lyr.info["crs"] == "EPSG:4326"


def test_point_nodata_is_null_for_file(m):
    layer = m.add_raster(data("cog_int16.tif"))
    with rasterio.open(data("cog_int16.tif")) as ds:
        arr = ds.read(1, out_shape=(ds.height // 8, ds.width // 8))
        rows, cols = np.where(arr == -32768)
        r, c = rows[0] * 8 + 4, cols[0] * 8 + 4
        assert ds.read(1, window=((r, r + 1), (c, c + 1)))[0, 0] == -32768
        x, y = ds.xy(r, c)
        from rasterio.warp import transform as wt

        lon, lat = (v[0] for v in wt(ds.crs, "EPSG:4326", [x], [y]))
    pt = m.server.point(layer.source_id, lon, lat)
    assert pt["inside"] and pt["values"] == [None]


def test_point_on_any_world_copy_and_on_a_0_to_360_raster(m):
    """A click on another copy of the world (the map repeats it east and west) reads the
    same place; a geographic raster stored from 0 to 360 degrees east answers at
    negative longitudes (values: the array's own, read by hand)."""
    arr = np.arange(200 * 100, dtype="int16").reshape(100, 200)  # value = row * 200 + col
    t = Affine(0.1, 0, 170.0, 0, -0.1, 5.0)  # 170 E .. 190 E (= -170), 5 N .. -5 S
    layer = m.add_raster(arr, crs="EPSG:4326", transform=t)
    inside = [(175.05, 0.05, arr[49, 50]), (-175.05, 0.05, arr[49, 149])]  # -175.05 = 184.95 E
    for lon, lat, expected in inside:
        for copy in (-720.0, -360.0, 0.0, 360.0):
            pt = layer.point(lon + copy, lat)
            assert pt["inside"] is True and pt["values"] == [int(expected)], (lon + copy, pt)
    assert layer.point(-100.0, 0.05)["inside"] is False


def test_inspector_click_two_worlds_away_shows_the_values(m):
    layer = m.add_raster(data("landsat7_window.tif"))
    with rasterio.open(data("landsat7_window.tif")) as ds:
        lon, lat = ds.transform * (50.5, 40.5)
        expected = [int(v) for v in ds.read(window=((40, 41), (50, 51))).reshape(-1)]
    here = m.inspector.click(lon, lat)
    far = m.inspector.click(lon - 720.0, lat)
    row = [r for r in far["layers"] if r["layer"] is layer][0]
    assert row["inside"] and [v for _, v in row["values"]][: len(expected)] == expected, row
    assert [r["values"] for r in here["layers"]] == [r["values"] for r in far["layers"]]
