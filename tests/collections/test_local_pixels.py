"""Collections of local files (collections.local_item / from_items): pixel reads
against rasterio, and a value checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from leafmap_tiles import collections
from tests.map.helpers import naip_files, pixel_lonlat


@pytest.fixture(scope="module")
def naip():
    return collections.from_items([collections.local_item(f) for f in naip_files()], name="naip")


def test_index_of_local_items(naip):
    assert len(naip) == 10 and naip.failures() == []
    assert naip.dates[0] == "2009-08-18" and naip.bands == ["data"]
    assert naip[0].header["width"] == 256 and naip[0].header["epsg"] == 26914


def test_sample_points_equals_rasterio(naip):
    files = naip_files()
    pixels = [(128, 128), (10, 200), (250, 3)]
    pts = [pixel_lonlat(files[0], r, c) for r, c in pixels]
    df = naip.sample_points(pts, band=4, progress=False)
    for k, f in enumerate(files):
        with rasterio.open(f) as ds:
            nir = ds.read(4)
            for j, (lon, lat) in enumerate(pts):
                x, y = rasterio.warp.transform("EPSG:4326", ds.crs, [lon], [lat])
                r, c = ds.index(x[0], y[0])
                v = df[(df["point"] == j)]["value"].iloc[k]
                if 0 <= r < ds.height and 0 <= c < ds.width and nir[r, c] != 0:
                    assert v == float(nir[r, c])
                else:
                    assert np.isnan(v)
    # by hand: 2009, pixel (128, 128) has NIR 96
    assert df[(df["point"] == 0)]["value"].iloc[0] == 96.0


def test_read_native_pixels(naip):
    files = naip_files()
    lon0, lat0 = pixel_lonlat(files[0], 100, 50)
    lon1, lat1 = pixel_lonlat(files[0], 140, 120)
    da = naip.read((lon0, lat1, lon1, lat0), band=4, progress=False)
    t = da.rio.transform()
    with rasterio.open(files[0]) as ds:
        row0, col0 = ds.index(t.c + 1, t.f - 1)
        nir = ds.read(4)[row0:row0 + da.sizes["y"], col0:col0 + da.sizes["x"]].astype(float)
    np.testing.assert_array_equal(da.isel(time=0).values, np.where(nir == 0, np.nan, nir))
    assert da.sizes["time"] == 10 and 35 <= da.sizes["y"] <= 45


def test_local_item_needs_a_date(tmp_path):
    import shutil

    f = tmp_path / "nodate.tif"
    shutil.copy(naip_files()[0], f)
    with pytest.raises(ValueError, match="datetime="):
        collections.local_item(f)
    assert collections.local_item(f, "2020-01-02").datetime.year == 2020


def test_window_and_pixel_reads_agree(naip, monkeypatch):
    from leafmap_tiles.collections import pixels

    files = naip_files()
    pts = [pixel_lonlat(files[0], r, c) for r, c in [(5, 5), (250, 250), (128, 128), (0, 255)]]
    window = naip.sample_points(pts, band=1, progress=False)
    monkeypatch.setattr(pixels, "WINDOW_READ_PIXELS", 1)  # one pixel per point
    single = naip.sample_points(pts, band=1, progress=False)
    np.testing.assert_array_equal(window["value"].to_numpy(), single["value"].to_numpy())
    assert np.isfinite(window["value"]).sum() >= 35


def test_read_of_a_bbox_far_from_the_items_says_so_before_reading(naip, monkeypatch):
    from leafmap_tiles.errors import NoOverlapError
    from leafmap_tiles.providers import access

    opened = []
    real_open = access.open_raster
    monkeypatch.setattr(access, "open_raster", lambda href, **kw: opened.append(href) or real_open(href, **kw))
    # Bavaria, ~7,700 km from the North Dakota NAIP tiles (it was a misleading size error)
    with pytest.raises(NoOverlapError, match=r"does not intersect any of the 10 'data' items") as err:
        naip.read((11.0, 48.0, 11.1, 48.1), band=4, progress=False)
    assert isinstance(err.value, ValueError) and opened == []
    # the extent named in the message is the files' own (rasterio's bounds in EPSG:4326)
    w, s, e, n = (float(v) for v in err.value.args[0].split("W,S,E,N = ")[1].split(" in")[0].split(", "))
    with rasterio.open(naip_files()[0]) as ds:
        b = rasterio.warp.transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
    assert w <= b[0] + 1e-5 and s <= b[1] + 1e-5 and e >= b[2] - 1e-5 and n >= b[3] - 1e-5
    assert e - w < 0.05 and n - s < 0.05
    # a bbox just touching the tiles' corner still reads (and opens files)
    lon, lat = pixel_lonlat(naip_files()[0], 2, 2)
    da = naip.read((lon - 0.01, lat - 0.0001, lon + 0.0001, lat + 0.01), band=4, progress=False)
    assert opened and np.isfinite(da.values).any()
