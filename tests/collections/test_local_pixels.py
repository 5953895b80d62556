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


def test_each_band_gets_its_own_scale_and_offset():
    """cog_scale.tif: band 1 scale 0.0001 offset 1000, band 2 0.001 / 2000 (GDAL tags);
    band 2 was given band 1's (1000.4686 instead of 2004.686)."""
    from rasterio.warp import transform as warp_transform
    from rasterio.windows import from_bounds

    from tests.conftest import data

    path = data("cog_scale.tif")
    col = collections.from_items([collections.local_item(path, datetime="2021-01-01", asset="a")])
    with rasterio.open(path) as ds:
        assert ds.scales == (0.0001, 0.001) and ds.offsets == (1000.0, 2000.0)
        x, y = ds.xy(100, 100)
        (lon,), (lat,) = warp_transform(ds.crs, "EPSG:4326", [x], [y])
        raw = ds.read()
        b = rasterio.warp.transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
    for band in (1, 2):
        s, o = (0.0001, 1000.0) if band == 1 else (0.001, 2000.0)
        got = col.sample_points([(lon, lat)], asset="a", band=band, progress=False)["value"].iloc[0]
        assert got == float(raw[band - 1, 100, 100]) * s + o
    assert col.sample_points([(lon, lat)], asset="a", band=2, progress=False)["value"].iloc[0] == pytest.approx(2004.686)
    # read: the file's own pixels, each band with its scale/offset, nodata 0 missing
    bbox = (b[0] + 0.3, b[1] + 0.3, b[2] - 0.3, b[3] - 0.3)
    for band in (1, 2):
        s, o = (0.0001, 1000.0) if band == 1 else (0.001, 2000.0)
        da = col.read(bbox, asset="a", band=band, progress=False)
        t = da.rio.transform()
        with rasterio.open(path) as ds:
            win = from_bounds(t.c, t.f + t.e * da.sizes["y"], t.c + t.a * da.sizes["x"], t.f, transform=ds.transform)
            want = ds.read(band, window=win.round_offsets().round_lengths()).astype("float64")
        want = np.where(want == 0, np.nan, want * s + o)
        np.testing.assert_array_equal(da.isel(time=0).values, want)
        assert 1000 * band < np.nanmean(want) < 1000 * band + 20


def test_stac_raster_bands_give_each_band_its_own_scale(tmp_path):
    """raster:bands with one entry per band: band 2 uses the second entry."""
    import json

    from tests.conftest import data

    path = data("cog_scale.tif")
    item = collections.local_item(path, datetime="2021-01-01", asset="a")
    item.assets["a"].extra_fields["raster:bands"] = [{"scale": 2.0, "offset": 1.0}, {"scale": 3.0, "offset": -5.0}]
    col = collections.from_items([item])
    assert json.loads(col.table["asset_info"][0].as_py())["raster:bands"][1]["scale"] == 3.0
    with rasterio.open(path) as ds:
        x, y = ds.xy(40, 60)
        (lon,), (lat,) = rasterio.warp.transform(ds.crs, "EPSG:4326", [x], [y])
        raw = ds.read()[:, 40, 60].astype("float64")
    v1 = col.sample_points([(lon, lat)], asset="a", band=1, progress=False)["value"].iloc[0]
    v2 = col.sample_points([(lon, lat)], asset="a", band=2, progress=False)["value"].iloc[0]
    assert (v1, v2) == (raw[0] * 2.0 + 1.0, raw[1] * 3.0 - 5.0)


@pytest.mark.parametrize("bbox", [(179.5, 51.0, 180.5, 52.0), (-179.9, 51.0, -179.5, 52.0), (178.2, 51.0, 179.0, 51.5)])
def test_read_of_an_item_across_the_antimeridian(bbox):
    """cog_dateline.tif (EPSG:32660, 178E .. 178.5W): a bbox on either side of 180 (or
    across it, as 179.5 .. 180.5) was refused (NoOverlapError); the pixels are the file's."""
    from tests.conftest import data

    path = data("cog_dateline.tif")
    col = collections.from_items([collections.local_item(path, "2020-01-01", asset="d")])
    da = col.read(bbox, asset="d", progress=False)
    t = da.rio.transform()
    with rasterio.open(path) as ds:
        c0, r0 = ~ds.transform * (t.c, t.f)
        assert abs(c0 - round(c0)) < 1e-6 and abs(r0 - round(r0)) < 1e-6  # the file's own grid
        want = ds.read(1, window=((round(r0), round(r0) + da.sizes["y"]), (round(c0), round(c0) + da.sizes["x"])),
                       boundless=True, masked=True)
    want = np.asarray(want.astype("float64").filled(np.nan))
    assert da.sizes["y"] > 500 and da.sizes["x"] > 250
    np.testing.assert_array_equal(da.isel(time=0).values, want)
    assert np.isfinite(want).all()
    # a coarser grid reads the overview nearest it: rasterio's same overview, warped
    from rasterio.vrt import WarpedVRT

    coarse = col.read(bbox, asset="d", resolution=500, progress=False)
    grid = coarse.rio.transform()
    with rasterio.open(path, overview_level=0) as ov:  # 4x: 400 m, the largest not coarser than 500 m
        with WarpedVRT(ov, crs=ov.crs, transform=grid, width=coarse.sizes["x"], height=coarse.sizes["y"]) as vrt:
            ref = vrt.read(1, masked=True).astype("float64").filled(np.nan)
    np.testing.assert_array_equal(coarse.isel(time=0).values, ref)
    assert np.isfinite(ref).sum() > 0.9 * ref.size


def test_band_and_resolution_are_checked_before_reading(naip, monkeypatch):
    from leafmap_tiles.errors import CollectionError
    from leafmap_tiles.providers import access

    opened = []
    real_open = access.open_raster
    monkeypatch.setattr(access, "open_raster", lambda href, **kw: opened.append(href) or real_open(href, **kw))
    lon, lat = pixel_lonlat(naip_files()[0], 100, 100)
    bbox = (lon - 0.001, lat - 0.001, lon + 0.001, lat + 0.001)
    for band in (0, -1, True, 1.0, "1", None):
        with pytest.raises(CollectionError, match="band must be a 1-based band number"):
            naip.sample_points([(lon, lat)], band=band, progress=False)
        with pytest.raises(CollectionError, match="band must be a 1-based band number"):
            naip.read(bbox, band=band, progress=False)
    with pytest.raises(CollectionError, match=r"band 9 of a 4-band asset"):
        naip.sample_points([(lon, lat)], band=9, progress=False)
    opened.clear()
    for res in ("20", b"20", [20], True):
        with pytest.raises(CollectionError, match="resolution must be a number"):
            naip.read(bbox, resolution=res, progress=False)
    for res in (0, -1, float("nan"), float("inf")):
        with pytest.raises(CollectionError, match=r"positive number in the CRS's units \(metre for EPSG:26914\)"):
            naip.read(bbox, resolution=res, progress=False)
    assert opened == []
    assert naip.read(bbox, band=np.int64(4), resolution=np.float64(2.0), progress=False).sizes["time"] == 10


def test_resolution_message_names_degrees_for_a_geographic_grid(tmp_path):
    from rasterio.transform import from_origin

    from leafmap_tiles.errors import CollectionError

    path = tmp_path / "geo.tif"
    with rasterio.open(path, "w", driver="GTiff", width=20, height=10, count=1, dtype="uint8", crs="EPSG:4326",
                       transform=from_origin(10.0, 50.0, 0.01, 0.01)) as ds:
        ds.write(np.arange(200, dtype="uint8").reshape(1, 10, 20))
    col = collections.from_items([collections.local_item(path, "2020-01-01")])
    with pytest.raises(CollectionError, match=r"positive number in the CRS's units \(degrees for EPSG:4326\)"):
        col.read((10.0, 49.9, 10.2, 50.0), resolution=0, progress=False)
    with pytest.raises(CollectionError, match="resolution must be a number"):
        col.read((10.0, 49.9, 10.2, 50.0), resolution="20", progress=False)
    da = col.read((10.005, 49.905, 10.195, 49.995), progress=False)
    np.testing.assert_array_equal(da.isel(time=0).values, np.arange(200).reshape(10, 20).astype("float64"))
