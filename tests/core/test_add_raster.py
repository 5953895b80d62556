"""add_raster on real files: the tile at the raster's centre at the fitted zoom,
fetched over HTTP from the server, equals an independent rio-tiler rendering."""

from __future__ import annotations

import morecantile
import numpy as np
import pytest
import requests

from tests.conftest import data
from tests.core.helpers import assert_same_tile, decode, reference_tile

TMS = morecantile.tms.get("WebMercatorQuad")

CASES = [
    # file, add_raster kwargs, what it covers
    ("bahamas_rgb.tif", {}, "uint8 RGB, nodata 0"),
    ("cog.tif", {"colormap": "viridis"}, "uint16, no nodata tag"),
    ("cog_int16.tif", {"colormap": "RdYlGn"}, "int16, nodata -32768"),
    ("cog_nodata_nan.tif", {"colormap": "Blues"}, "float32 with NaN"),
    ("co_elevation_window.tif", {"colormap": "terrain"}, "float32, nodata -3.4e38, EPSG:4269"),
    ("nlcd.tif", {}, "palette TIFF (striped), nodata 255"),
    ("cog_cmap.tif", {}, "palette COG, EPSG:3857"),
    ("cog_rgba.tif", {}, "RGBA (alpha band)"),
    ("bremen_sea_ice_conc_2022_9_9.tif", {"colormap": "viridis_r", "vmin": 0, "vmax": 100}, "EPSG:3031"),
    ("cog_dateline.tif", {}, "crosses the antimeridian"),
    ("cog_gcps.tif", {"colormap": "magma"}, "GCP-only"),
    ("rmnp-dem.tif", {"colormap": "gist_earth"}, "EPSG:4326, uint16 nodata 65535"),
    ("landsat7_window.tif", {"indexes": [4, 3, 2], "vmin": [10, 10, 10], "vmax": [120, 110, 100]}, "7-band"),
]


def centre_tile(m, layer):
    lat, lon = m.center
    t = TMS.tile(lon, lat, int(m.zoom))
    return t.z, t.x, t.y


def fetch(layer, z, x, y) -> bytes:
    url = layer.url.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
    r = requests.get(url, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    return r.content


@pytest.mark.parametrize("name,kwargs,what", CASES, ids=[c[0] for c in CASES])
def test_centre_tile_matches_rio_tiler(m, name, kwargs, what):
    layer = m.add_raster(data(name), **kwargs)
    assert layer in m.layers
    z, x, y = centre_tile(m, layer)
    got = decode(fetch(layer, z, x, y))
    indexes = kwargs.get("indexes")
    if indexes is None and not layer.palette:
        indexes = [int(i) for i in layer.style["indexes"].split(",")] if "indexes" in layer.style else None
    ref = reference_tile(
        data(name), z, x, y,
        indexes=indexes,
        vmin=layer.stretch.get("vmin"), vmax=layer.stretch.get("vmax"),
        colormap=kwargs.get("colormap"), palette=layer.palette,
    )
    assert (got[..., 3] > 0).any(), f"centre tile of {name} ({what}) is empty"
    assert_same_tile(got, ref)


def test_stretch_defaults_are_2_98_percentiles_of_an_overview(m):
    """Default vmin/vmax: 2nd/98th percentiles of the valid pixels of a preview
    (longest side 1024 px), computed here independently with rasterio."""
    import rasterio

    layer = m.add_raster(data("cog.tif"))
    with rasterio.open(data("cog.tif")) as ds:
        # rio-tiler's preview picks the overview decimated to <= 1024 px
        scale = max(ds.width, ds.height) / 1024
        h, w = round(ds.height / scale), round(ds.width / scale)
        arr = ds.read(1, out_shape=(h, w), masked=True)
    vals = arr.compressed().astype("float64")
    p2, p98 = np.percentile(vals, [2, 98])
    assert layer.stretch["vmin"][0] == pytest.approx(p2, abs=1)
    assert layer.stretch["vmax"][0] == pytest.approx(p98, abs=max(1.0, 0.01 * p98))


def test_expression_is_evaluated_in_float(m):
    """NDVI of a uint8 4-band file: (b4-b1)/(b4+b1) must not wrap around in uint8."""
    layer = m.add_raster(data("landsat7_window.tif"), expression="(b4-b3)/(b4+b3)", colormap="RdYlGn", vmin=-0.5, vmax=0.8)
    lat, lon = m.center
    pt = m.server.point(layer.source_id, lon, lat, layer.style)
    import rasterio

    with rasterio.open(data("landsat7_window.tif")) as ds:
        r, c = ds.index(lon, lat)
        b3, b4 = (float(v) for v in ds.read([3, 4], window=((r, r + 1), (c, c + 1))).reshape(-1))
    assert pt["values"][0] == pytest.approx((b4 - b3) / (b4 + b3))


def test_palette_is_default_and_explicit_map_gives_exact_colours(m):
    layer = m.add_raster(data("nlcd.tif"))
    assert layer.palette is True
    classes = {11: "#476ba1", 21: "#ddc9c9", 41: "#68ab63", 42: "#1c6330", 81: "#dbd83c"}
    exp = m.add_raster(data("nlcd.tif"), colormap=classes, layer_name="classes")
    z, x, y = centre_tile(m, exp)
    got = decode(fetch(exp, z, x, y))
    from rio_tiler.io import Reader

    with Reader(data("nlcd.tif")) as r:
        img = r.tile(x, y, z, resampling_method="nearest", reproject_method="nearest")
    vals = img.array.data[0]
    valid = ~np.ma.getmaskarray(img.array)[0]
    from matplotlib.colors import to_rgb

    for v, colour in classes.items():
        sel = (vals == v) & valid
        if sel.any():
            expected = np.array([round(c * 255) for c in to_rgb(colour)])
            assert (got[sel][:, :3] == expected).all()
            assert (got[sel][:, 3] == 255).all()
    other = valid & ~np.isin(vals, list(classes))
    assert (got[other][:, 3] == 0).all()  # values not in the map are transparent
    # exact colours only: every opaque pixel has one of the class colours
    opaque = got[got[..., 3] > 0][:, :3]
    palette = {tuple(round(c * 255) for c in to_rgb(col)) for col in classes.values()}
    assert {tuple(p) for p in np.unique(opaque, axis=0)} <= palette


def test_tile_outside_data_is_transparent_and_bad_zxy_is_400(m):
    layer = m.add_raster(data("cog.tif"))
    png = fetch(layer, 3, 0, 0)  # far from Greenland
    assert (decode(png)[..., 3] == 0).all()
    base = layer.url.split("/{z}")[0]
    for bad in ("a/0/0", "3/9/0", "3/0/-1", "99/0/0"):
        r = requests.get(f"{base}/{bad}.png", timeout=10)
        assert r.status_code == 400, (bad, r.status_code)
        assert "message" in r.json()


def test_tile_size_512_and_formats(m):
    layer = m.add_raster(data("bahamas_rgb.tif"), tile_size=512)
    z, x, y = centre_tile(m, layer)
    img = decode(fetch(layer, z, x, y))
    assert img.shape == (512, 512, 4)
    base = layer.url.split("?")[0]
    for ext, magic in (("jpg", b"\xff\xd8"), ("webp", b"RIFF")):
        url = base.replace(".png", f".{ext}").replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
        r = requests.get(url, params=layer.style, timeout=30)
        assert r.status_code == 200 and r.content.startswith(magic)


def test_layer_names_unique_and_remove_releases_source(m):
    a = m.add_raster(data("cog.tif"))
    b = m.add_raster(data("cog.tif"))
    assert a.name != b.name
    url = a.url.replace("{z}/{x}/{y}", "8/87/49")
    assert requests.get(url, timeout=30).status_code == 200
    m.remove(a)
    r = requests.get(url, timeout=30)
    assert r.status_code == 404 and "unknown source" in r.json()["message"]


def test_add_tile_layer(m):
    lyr = m.add_tile_layer("https://example.com/{z}/{x}/{y}.png", name="XYZ", attribution="me", opacity=0.5)
    assert lyr in m.layers and lyr.opacity == 0.5
    with pytest.raises(ValueError, match="{z}"):
        m.add_tile_layer("https://example.com/tile.png")
