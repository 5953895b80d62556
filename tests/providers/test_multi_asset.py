"""STAC items whose bands are separate COGs (as Earth Search's Sentinel-2), read as
bands of one raster: NDVI from red + NIR assets, RGB from red/green/blue assets, a time
slider over such items.  Real servers: stac-fastapi-static and nginx (Basic auth).

The assets are cut from the NAIP rasters (conftest ``band_assets``): red/green/blue
at 5 m as they are, NIR at 10 m as uint16 DN with a STAC-only scale/offset and its
own nodata.  Expected values are computed here with numpy from those files."""

from __future__ import annotations

import io

import morecantile
import numpy as np
import pytest
import rasterio
from rasterio.warp import transform as warp_xy

from conftest import BANDS_COLLECTION, NIR_HOLE, NIR_NODATA, NIR_OFFSET, NIR_SCALE, naip_path
from terrascope_catalog import PASSWORD, USERNAME

TMS = morecantile.tms.get("WebMercatorQuad")
NDVI = "(nir-red)/(nir+red)"


def _rgba(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


@pytest.fixture
def items(bands_stac_api, clean_env):
    from leafmap_tiles.providers import stac

    found = stac.search(bands_stac_api.url, BANDS_COLLECTION, unique_dates=False)
    yield {i.id: i for i in found}
    stac.forget_client(bands_stac_api.url)


@pytest.fixture
def logged_in(bands_stac_api, items):
    from leafmap_tiles.providers import stac

    stac.set_credentials([bands_stac_api.asset_server.netloc], USERNAME, PASSWORD)
    yield items


@pytest.fixture
def m():
    from leafmap_tiles import Map

    mm = Map(basemap=None)
    yield mm
    mm.close()


def expected_ndvi(files: dict, row: int, col: int):
    """NDVI at 5 m pixel (row, col) of the red asset: NIR from its 10 m pixel
    (row // 2, col // 2), in physical units (DN * scale + offset); None for nodata."""
    with rasterio.open(files["red"]) as r, rasterio.open(files["nir"]) as n:
        red = float(r.read(1)[row, col])
        dn = int(n.read(1)[row // 2, col // 2])
        lon, lat = warp_xy(r.crs, "EPSG:4326", *[[v] for v in r.xy(row, col)])
    if dn == NIR_NODATA or red == 0:
        return (lon[0], lat[0]), None
    nir = dn * NIR_SCALE + NIR_OFFSET
    return (lon[0], lat[0]), (nir - red) / (nir + red)


PIXELS = [(5, 5), (40, 200), (128, 60), (201, 33), (250, 250)]


def test_ndvi_from_two_assets_matches_numpy(m, logged_in, band_assets):
    item = logged_in["NAIP_BANDS_20180716"]
    lyr = m.add_raster(item, assets=["red", "nir"], expression=NDVI, colormap="RdYlGn", vmin=-0.2, vmax=0.9)
    assert lyr.info["count"] == 2 and lyr.info["dtype"] == "float32"
    assert lyr.info["maxzoom"] == m.server.info(m.add_raster(str(band_assets.files[item.id]["red"])).source_id)["maxzoom"]
    files = band_assets.files[item.id]
    checked = 0
    for row, col in PIXELS:
        (lon, lat), want = expected_ndvi(files, row, col)
        got = lyr.point(lon, lat)["values"][0]
        if want is None:
            assert got is None
        else:
            assert got == pytest.approx(want, rel=1e-5), (row, col)
            checked += 1
    assert checked >= 4
    # the inspector names the expression as the user wrote it
    (lon, lat), want = expected_ndvi(files, 128, 60)
    row = m.inspector.click(lon, lat)["layers"]
    mine = next(r for r in row if r["layer"] is lyr)
    assert mine["values"][0][0] == NDVI and mine["values"][0][1] == pytest.approx(want, rel=1e-5)


def test_each_asset_keeps_its_own_nodata(m, logged_in, band_assets):
    item = logged_in["NAIP_BANDS_20180716"]
    m.add_raster(item, assets=["red", "nir"])
    files = band_assets.files[item.id]
    rows, cols = NIR_HOLE
    (lon, lat), want = expected_ndvi(files, rows.start * 2 + 1, cols.start * 2 + 1)  # inside the NIR hole
    assert want is None
    with rasterio.open(files["red"]) as r:
        red = int(r.read(1)[rows.start * 2 + 1, cols.start * 2 + 1])
    vals = {b: v for b, v in m.inspector.click(lon, lat)["layers"][0]["values"]}
    assert vals == {"red": red, "nir": None}  # red valid, NIR nodata: per asset
    ndvi = m.add_raster(item, assets=["red", "nir"], expression=NDVI)
    assert ndvi.point(lon, lat)["values"] == [None]


def test_unscale_false_keeps_stored_values(m, logged_in, band_assets):
    item = logged_in["NAIP_BANDS_20180716"]
    lyr = m.add_raster(item, assets=["red", "nir"], unscale=False)
    assert lyr.info["dtype"] == "float32"  # nodata differs (0 and 65535): one NaN nodata
    files = band_assets.files[item.id]
    with rasterio.open(files["red"]) as r, rasterio.open(files["nir"]) as n:
        red, dn = int(r.read(1)[100, 100]), int(n.read(1)[50, 50])
        lon, lat = warp_xy(r.crs, "EPSG:4326", *[[v] for v in r.xy(100, 100)])
    assert lyr.point(lon[0], lat[0])["values"] == [red, dn]


def test_rgb_assets_draw_the_tiles_of_the_original_file(m, logged_in, band_assets):
    item = logged_in["NAIP_BANDS_20180716"]
    lyr = m.add_raster(item, assets=["red", "green", "blue"])
    ref = m.add_raster(str(naip_path("20180716")), indexes=[1, 2, 3])
    assert lyr.stretch == ref.stretch == {"vmin": [0.0] * 3, "vmax": [255.0] * 3}
    w, s, e, n = lyr.info["bounds"]
    for z in (15, 17):
        t = TMS.tile((w + e) / 2, (s + n) / 2, z)
        a = _rgba(m.server.tile(lyr.source_id, t.z, t.x, t.y, lyr.style))
        b = _rgba(m.server.tile(ref.source_id, t.z, t.x, t.y, ref.style))
        assert (a[..., 3] > 0).sum() > 1000
        np.testing.assert_array_equal(a, b)


def test_no_credentials_fails_before_anything_registers(m, items):
    from leafmap_tiles.errors import AuthenticationError

    before = set(m.server.source_ids)
    with pytest.raises(AuthenticationError):
        m.add_raster(items["NAIP_BANDS_20180716"], assets=["red", "nir"], expression=NDVI)
    assert set(m.server.source_ids) == before
    assert [l for l in m.layers if getattr(l, "source_id", None)] == []


def test_bad_assets_and_names_raise_style_errors(m, logged_in):
    from leafmap_tiles.errors import StyleError

    item = logged_in["NAIP_BANDS_20180716"]
    with pytest.raises(StyleError, match="no asset 'swir16'"):
        m.add_raster(item, assets=["red", "swir16"])
    with pytest.raises(StyleError, match="'green'.*not one of the assets"):
        m.add_raster(item, assets=["red", "nir"], expression="(nir-green)/(nir+green)")
    with pytest.raises(StyleError, match="several assets"):
        m.add_raster(item)
    with pytest.raises(TypeError, match="apply to STAC items"):
        m.add_raster(str(naip_path("20180716")), assets=["red"])


def test_time_layers_and_slider_over_multi_asset_items(m, logged_in, band_assets):
    from leafmap_tiles.providers import stac

    items = list(logged_in.values())
    layers = stac.create_time_layers(items, assets=["red", "nir"], expression=NDVI, vmin=-0.2, vmax=0.9)
    try:
        assert list(layers) == ["2018-07-16", "2020-08-31"]
        mosaic = layers["2020-08-31"]
        assert isinstance(mosaic.info["path"], list) and len(mosaic.info["path"]) == 2
        for item_id in ("NAIP_BANDS_20200831_W", "NAIP_BANDS_20200831_E"):
            (lon, lat), want = expected_ndvi(band_assets.files[item_id], 120, 60)
            assert mosaic.point(lon, lat)["values"][0] == pytest.approx(want, rel=1e-5)
    finally:
        for layer in layers.values():
            layer.release()
    # the same through add_time_slider, straight from the items
    ts = m.add_time_slider(items, assets=["red", "nir"], expression=NDVI, colormap="RdYlGn", vmin=-0.2, vmax=0.9)
    assert ts.labels == ["2018-07-16", "2020-08-31"]
    (lon, lat), want = expected_ndvi(band_assets.files["NAIP_BANDS_20180716"], 128, 60)
    series = dict(ts.values_at(lon, lat))
    assert series["2018-07-16"] == pytest.approx(want, rel=1e-5)
    ids = [f.source_id for f in ts.layers]
    ts.close()
    assert not any(m.server.is_registered(i) for i in ids)  # frames made from items are released


def test_protected_asset_tiles_are_never_cached(m, logged_in):
    lyr = m.add_raster(logged_in["NAIP_BANDS_20180716"], assets=["red", "nir"], expression=NDVI)
    import requests

    w, s, e, n = lyr.info["bounds"]
    t = TMS.tile((w + e) / 2, (s + n) / 2, 16)
    url = lyr.url.replace("{z}", str(t.z)).replace("{x}", str(t.x)).replace("{y}", str(t.y))
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"


def test_add_stac_layer_with_an_item_url(m, logged_in, bands_stac_api):
    url = f"{bands_stac_api.url}/collections/{BANDS_COLLECTION}/items/NAIP_BANDS_20180716"
    lyr = m.add_stac_layer(url=url, assets=["red", "green", "blue"], name="naip rgb")
    ref = m.add_raster(logged_in["NAIP_BANDS_20180716"], assets=["red", "green", "blue"])
    assert lyr.name == "naip rgb" and lyr.metadata["stac"]["assets"] == ["red", "green", "blue"]
    w, s, e, n = lyr.info["bounds"]
    t = TMS.tile((w + e) / 2, (s + n) / 2, 16)
    assert m.server.tile(lyr.source_id, t.z, t.x, t.y, lyr.style) == m.server.tile(ref.source_id, t.z, t.x, t.y, ref.style)
    ndvi = m.add_stac_layer(item=logged_in["NAIP_BANDS_20180716"], assets=["red", "nir"], expression=NDVI,
                            rescale="-0.2,0.9", colormap_name="rdylgn")
    assert ndvi.style["colormap"] == "RdYlGn" and ndvi.stretch == {"vmin": [-0.2], "vmax": [0.9]}
