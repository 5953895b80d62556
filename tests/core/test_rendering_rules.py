"""Rendering matches what users' other tools show (issue 13): 8-bit RGB drawn as it
is (rio-tiler), GDAL's per-dataset nodata rule, colours as matplotlib's imshow gives
them (under/over/bad too), short tile URLs for any colormap, points that honour the
layer's nodata, other planets refused, footprints across the antimeridian, and a
failing constructor that surfaces its own error.

References: rio-tiler renderings of the same tiles, ``matplotlib`` colormaps applied
to the values rio-tiler reads, rasterio reads, and the values written into the small
test files made here."""

from __future__ import annotations

import gc
import shutil
import sys

import matplotlib
import morecantile
import numpy as np
import pytest
import rasterio
import requests
from matplotlib.colors import LinearSegmentedColormap, ListedColormap, Normalize
from rasterio.transform import from_origin

from leafmap_tiles.errors import InvalidSourceError, StyleError
from tests.conftest import data
from tests.core.helpers import decode, matplotlib_colours

TMS = morecantile.tms.get("WebMercatorQuad")


def fetch(layer, z, x, y) -> np.ndarray:
    url = layer.url.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
    r = requests.get(url, timeout=60)
    assert r.status_code == 200, r.text
    return decode(r.content)


def centre_tile(m):
    lat, lon = m.center
    t = TMS.tile(lon, lat, int(m.zoom))
    return t.z, t.x, t.y


def pixel_in_tile(lon, lat, z, x, y, size=256) -> tuple[int, int]:
    """(row, col) of the tile pixel holding (lon, lat)."""
    b = TMS.xy_bounds(x, y, z)
    mx, my = TMS.xy(lon, lat)
    return int((b.top - my) / (b.top - b.bottom) * size), int((mx - b.left) / (b.right - b.left) * size)


def rio_tile(path, z, x, y, indexes=None, nodata=None):
    from rio_tiler.io import Reader

    with Reader(path, options={} if nodata is None else {"nodata": nodata}) as r:
        return r.tile(x, y, z, indexes=indexes, resampling_method="nearest", reproject_method="nearest")


# ------------------------------------------------------------------ 1. 8-bit RGB


@pytest.mark.parametrize("name,indexes", [("cog_rgb.tif", None), ("cog_rgba.tif", None),
                                          ("bahamas_rgb.tif", None),
                                          ("naip/m_4709963_se_14_1_20180716.tif", [4, 1, 2])])
def test_8bit_rgb_is_drawn_as_it_is(m, name, indexes):
    """uint8 RGB(A) is not stretched: the tile equals rio-tiler's rendering of the
    raw values (QGIS, TiTiler and rio-tiler draw them so too)."""
    layer = m.add_raster(data(name), indexes=indexes)
    assert layer.stretch == {"vmin": [0.0] * 3, "vmax": [255.0] * 3}
    z, x, y = centre_tile(m)
    got = fetch(layer, z, x, y)
    img = rio_tile(data(name), z, x, y, indexes=indexes or (1, 2, 3))
    ref = decode(img.render(img_format="PNG"))
    assert (got[..., 3] > 0).sum() > 1000
    assert np.array_equal(got[..., 3] > 0, ref[..., 3] > 0)
    opaque = got[..., 3] > 0
    assert np.array_equal(got[opaque][:, :3], ref[opaque][:, :3])


def test_8bit_rgb_stretch_only_when_asked(m):
    from rio_tiler.io import Reader

    pct = m.add_raster(data("cog_rgb.tif"), stretch="percentile")
    with Reader(data("cog_rgb.tif")) as r:
        prev = r.preview(indexes=(1, 2, 3), max_size=1024)
    for b in range(3):
        vals = prev.array[b].compressed().astype("float64")
        p2, p98 = np.percentile(vals, [2, 98])
        assert pct.stretch["vmin"][b] == pytest.approx(p2)
        assert pct.stretch["vmax"][b] == pytest.approx(p98)
    given = m.add_raster(data("cog_rgb.tif"), vmin=10, vmax=200)
    assert given.stretch == {"vmin": [10.0] * 3, "vmax": [200.0] * 3}
    one_band = m.add_raster(data("cog_rgb.tif"), indexes=1)  # grey: still the percentile default
    assert one_band.stretch["vmin"][0] == pytest.approx(np.percentile(prev.array[0].compressed(), 2))
    minmax = m.add_raster(data("cog.tif"), stretch="minmax")
    assert minmax.stretch["vmin"][0] == minmax.band_statistics[0]["min"]
    assert minmax.stretch["vmax"][0] == minmax.band_statistics[0]["max"]
    with pytest.raises(StyleError, match="stretch='none' needs integer"):
        m.add_raster(data("cog_nodata_nan.tif"), stretch="none")
    with pytest.raises(StyleError, match="unknown stretch"):
        m.add_raster(data("cog.tif"), stretch="histogram")


# ------------------------------------------------------------------ 2. per-band nodata


@pytest.fixture
def two_pixels(tmp_path):
    """The issue's repro: pixel A (45, 45, 45) and pixel B (46, 45, 40), nodata 45."""
    path = tmp_path / "two.tif"
    arr = np.array([[[45, 46]], [[45, 45]], [[45, 40]]], dtype=np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=2, height=1, count=3, dtype="uint8",
                       crs="EPSG:4326", transform=from_origin(10.0, 50.0, 0.001, 0.001), nodata=45) as d:
        d.write(arr)
    return str(path)


A = (10.0005, 49.9995)
B = (10.0015, 49.9995)


def test_pixel_is_nodata_only_where_every_band_is(m, two_pixels):
    layer = m.add_raster(two_pixels, zoom_to_layer=False)
    t = TMS.tile(*B, 14)
    got = fetch(layer, t.z, t.x, t.y)
    ref = decode(rio_tile(two_pixels, t.z, t.x, t.y).render(img_format="PNG"))
    ra, ca = pixel_in_tile(*A, t.z, t.x, t.y)
    rb, cb = pixel_in_tile(*B, t.z, t.x, t.y)
    assert got[ra, ca, 3] == 0 and ref[ra, ca, 3] == 0
    assert tuple(got[rb, cb]) == (46, 45, 40, 255) == tuple(ref[rb, cb])
    opaque = ref[..., 3] > 0
    assert np.array_equal(got[..., 3] > 0, opaque) and np.array_equal(got[opaque], ref[opaque])
    # values per band, as rio-tiler's point (and rasterio's masked read) give them
    from rio_tiler.io import Reader

    with Reader(two_pixels) as r:
        pt = r.point(*B)
    want = [None if mk else int(v) for v, mk in zip(pt.array.data, np.ma.getmaskarray(pt.array))]
    assert want == [46, None, 40]
    assert layer.point(*B)["values"] == want
    assert m.server.point(layer.source_id, *A)["values"] == [None, None, None]


def test_terracotta_rgb_keeps_bands_equal_to_nodata(tmp_path):
    """/rgb of three single-band datasets: B is opaque with each band stretched
    (Terracotta's 1 + round(254 v / 255)): (47, 46, 41); A is transparent."""
    from starlette.testclient import TestClient

    from leafmap_tiles import store
    from leafmap_tiles.server.terracotta_api import create_terracotta_app

    # A and B as in the issue, and C = (50, 60, 70) so that every band has valid data
    # (a dataset without any is refused at ingest, by Terracotta too)
    bands = np.array([[[45, 46, 50]], [[45, 45, 60]], [[45, 40, 70]]], dtype=np.uint8)
    for i, band in enumerate(("r", "g", "b")):
        with rasterio.open(tmp_path / f"px_{band}.tif", "w", driver="GTiff", width=3, height=1, count=1,
                           dtype="uint8", crs="EPSG:4326", transform=from_origin(10.0, 50.0, 0.001, 0.001),
                           nodata=45) as d:
            d.write(bands[i], 1)
    ks = store.open(str(tmp_path / "tc.sqlite"))
    ks.ingest(str(tmp_path / "px_{band}.tif"))
    seen = {}
    with TestClient(create_terracotta_app(str(tmp_path / "tc.sqlite"))) as c:
        for name, (lon, lat) in (("A", A), ("B", B), ("C", (10.0025, 49.9995))):
            t = TMS.tile(lon, lat, 17)  # the dataset covers more than 1 % of it (Terracotta's rule)
            r = c.get(f"/rgb/{t.z}/{t.x}/{t.y}.png?r=r&g=g&b=b&r_range=[0,255]&g_range=[0,255]&b_range=[0,255]")
            assert r.status_code == 200, r.text
            row, col = pixel_in_tile(lon, lat, t.z, t.x, t.y)
            seen[name] = tuple(int(v) for v in decode(r.content)[row, col])
    assert seen["A"][3] == 0
    assert seen["B"] == (47, 46, 41, 255)
    assert seen["C"] == (51, 61, 71, 255)  # 1 + round(254 v / 255): 50.8, 60.8, 70.7


# ------------------------------------------------------------------ 3. colours as matplotlib


@pytest.fixture(scope="module")
def ramp(tmp_path_factory):
    """float64 values -10..110 on the exact pixel grid of tile 1/0/0 (EPSG:3857), so
    the tile's pixels are the file's pixels."""
    path = tmp_path_factory.mktemp("ramp") / "ramp.tif"
    b = TMS.xy_bounds(0, 0, 1)
    vals = np.linspace(-10.0, 110.0, 256 * 256).reshape(256, 256)
    tr = from_origin(b.left, b.top, (b.right - b.left) / 256, (b.top - b.bottom) / 256)
    with rasterio.open(path, "w", driver="GTiff", width=256, height=256, count=1, dtype="float64",
                       crs="EPSG:3857", transform=tr) as d:
        d.write(vals, 1)
    return str(path), vals


def test_every_named_colormap_matches_matplotlib(ramp):
    """All of matplotlib's colormaps (N = 256, the qualitative ones with 8..20
    colours, twilight with 510) over the whole range and beyond: within 1 DN of
    ``cmap(Normalize(0, 100)(v), bytes=True)`` (in fact equal)."""
    from leafmap_tiles.render import RenderEngine, parse_style

    path, vals = ramp
    engine = RenderEngine()
    info = engine.info(path)
    worst = {}
    for name in matplotlib.colormaps:
        style = parse_style({"colormap": name, "vmin": 0, "vmax": 100}, info)
        got = decode(engine.tile(path, style, 1, 0, 0))
        ref = np.asarray(matplotlib.colormaps[name](Normalize(0, 100)(vals), bytes=True))
        worst[name] = int(np.abs(got.astype(int) - ref.astype(int)).max())
    assert len(worst) > 150
    assert max(worst.values()) <= 1, {k: v for k, v in worst.items() if v > 1}


def test_issue_value_71_875_rdylgn_r(m):
    """The issue's number: 71.875 with RdYlGn_r, 0..100 is matplotlib's (251, 159, 90)."""
    arr = np.full((64, 64), 71.875, dtype="float64")
    layer = m.add_raster(arr, crs="EPSG:4326", transform=from_origin(5.0, 52.0, 0.01, 0.01),
                         colormap="RdYlGn_r", vmin=0, vmax=100)
    ref = tuple(int(v) for v in matplotlib.colormaps["RdYlGn_r"](0.71875, bytes=True))
    assert ref == (251, 159, 90, 255)
    got = fetch(layer, *centre_tile(m))
    assert {tuple(p) for p in got[got[..., 3] > 0]} == {ref}


@pytest.mark.parametrize("name,cmap", [("cog.tif", "viridis"), ("cog_nodata_nan.tif", "Blues"),
                                       ("cog_int16.tif", "tab10")])
def test_real_files_colour_as_matplotlib(m, name, cmap):
    layer = m.add_raster(data(name), colormap=cmap)
    z, x, y = centre_tile(m)
    got = fetch(layer, z, x, y)
    img = rio_tile(data(name), z, x, y, indexes=(1,))
    arr = img.array
    arr.mask = np.ma.getmaskarray(arr) | np.isnan(arr.data) if arr.dtype.kind == "f" else arr.mask
    ref = matplotlib_colours(arr, cmap, layer.stretch["vmin"][0], layer.stretch["vmax"][0])
    assert np.array_equal(got[..., 3] > 0, ref[..., 3] > 0)
    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1


# ------------------------------------------------------------------ 4./5. colormap objects


def test_colormap_objects_and_long_lists_give_short_urls(m, ramp):
    path, vals = ramp
    lin = LinearSegmentedColormap.from_list("mine", ["navy", "white", "darkred"])
    colours = [matplotlib.colors.to_hex(c) for c in matplotlib.colormaps["plasma"](np.linspace(0, 1, 256))]
    classes = {i: matplotlib.colors.to_hex(matplotlib.colormaps["hsv"](i / 300)) for i in range(300)}
    for cmap, ref_cmap in ((lin, lin), (colours, ListedColormap(colours))):
        layer = m.add_raster(path, colormap=cmap, vmin=0, vmax=100, zoom_to_layer=False)
        assert len(layer.url) < 2000, len(layer.url)
        assert layer.style["colormap"].startswith("cm:")
        got = fetch(layer, 1, 0, 0)
        ref = np.asarray(ref_cmap(Normalize(0, 100)(vals), bytes=True))
        assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1
    codes = np.arange(256 * 256).reshape(256, 256) % 300
    b = TMS.xy_bounds(0, 0, 1)
    tr = from_origin(b.left, b.top, (b.right - b.left) / 256, (b.top - b.bottom) / 256)
    layer = m.add_raster(codes.astype("uint16"), crs="EPSG:3857", transform=tr, colormap=classes,
                         zoom_to_layer=False)
    assert len(layer.url) < 2000
    got = fetch(layer, 1, 0, 0)
    want = np.array([[int(classes[c][i:i + 2], 16) for i in (1, 3, 5)] for c in range(300)])[codes]
    assert np.array_equal(got[..., :3], want) and (got[..., 3] == 255).all()


def test_registered_colormap_survives_a_server_restart(m, ramp):
    import os
    import signal
    import time

    path, _ = ramp
    layer = m.add_raster(path, colormap=LinearSegmentedColormap.from_list("x", ["red", "blue"]), vmin=0, vmax=100)
    before = fetch(layer, 1, 0, 0)
    srv = m.server
    restarts = srv.restarts
    os.kill(srv.pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while srv.restarts == restarts or not srv.alive():
        assert time.monotonic() < deadline, "server was not restarted"
        time.sleep(0.1)
    layer.refresh_url()
    assert np.array_equal(fetch(layer, 1, 0, 0), before)


def test_under_over_and_bad_colours_as_imshow(m, tmp_path):
    """set_under/set_over/set_bad as matplotlib.pyplot.imshow uses them: below vmin,
    above vmax, NaN inside the raster; outside the raster stays transparent."""
    b = TMS.xy_bounds(0, 0, 1)
    w, h = (b.right - b.left) / 256, (b.top - b.bottom) / 256
    vals = np.linspace(-20.0, 120.0, 256 * 128).reshape(128, 256)  # upper half of the tile only
    vals[40:50] = np.nan
    path = tmp_path / "uob.tif"
    with rasterio.open(path, "w", driver="GTiff", width=256, height=128, count=1, dtype="float64",
                       crs="EPSG:3857", transform=from_origin(b.left, b.top, w, h), nodata=float("nan")) as d:
        d.write(vals, 1)
    cmap = LinearSegmentedColormap.from_list("x", ["yellow", "purple"])
    cmap.set_under("grey")
    cmap.set_over("#00ff00")
    cmap.set_bad("red")
    layer = m.add_raster(str(path), colormap=cmap, vmin=0, vmax=100, zoom_to_layer=False)
    got = fetch(layer, 1, 0, 0)
    ref = np.asarray(cmap(Normalize(0, 100)(np.ma.masked_invalid(vals)), bytes=True))
    assert np.abs(got[:128].astype(int) - ref.astype(int)).max() <= 1
    assert tuple(got[0, 0]) == (128, 128, 128, 255)      # -20: under colour
    assert tuple(got[127, 255]) == (0, 255, 0, 255)      # 120: over colour
    assert tuple(got[45, 10]) == (255, 0, 0, 255)        # NaN inside the raster: bad colour
    assert (got[128:, :, 3] == 0).all()                  # outside the raster
    plain = m.add_raster(str(path), colormap="viridis", vmin=0, vmax=100, zoom_to_layer=False)
    got = fetch(plain, 1, 0, 0)
    viridis = matplotlib.colormaps["viridis"]
    assert tuple(got[0, 0]) == tuple(int(v) for v in viridis(0.0, bytes=True))   # default under: first colour
    assert got[45, 10, 3] == 0                                                 # default bad: transparent


# ------------------------------------------------------------------ 6. points and nodata=


def test_point_honours_the_layers_nodata(m, tmp_path):
    """bahamas_rgb.tif without its nodata tag: the 0 collar is real data unless the
    layer says nodata=0; then tiles and points both treat it as nodata."""
    path = tmp_path / "bahamas_untagged.tif"
    shutil.copy(data("bahamas_rgb.tif"), path)
    with rasterio.open(path, "r+", IGNORE_COG_LAYOUT_BREAK="YES") as d:
        d.nodata = None
    with rasterio.open(path) as d:
        assert d.nodata is None
        arr = d.read()
        collar_rc = tuple(np.argwhere((arr == 0).all(axis=0))[0])
        inner_rc = (d.height // 2, d.width // 2)
        from rasterio.warp import transform as warp_xy

        pts = [d.xy(*rc) for rc in (collar_rc, inner_rc)]
        lons, lats = warp_xy(d.crs, "EPSG:4326", [p[0] for p in pts], [p[1] for p in pts])
        inner_vals = [int(v) for v in arr[:, inner_rc[0], inner_rc[1]]]
    layer = m.add_raster(str(path), nodata=0)
    assert m.server.point(layer.source_id, lons[0], lats[0])["values"] == [None, None, None]
    assert layer.point(lons[0], lats[0])["values"] == [None, None, None]
    assert layer.point(lons[1], lats[1])["values"] == inner_vals
    untagged = m.add_raster(str(path))
    assert untagged.point(lons[0], lats[0])["values"] == [0, 0, 0]
    # what the tiles show there: transparent with nodata=0
    t = TMS.tile(lons[0], lats[0], 12)
    r, c = pixel_in_tile(lons[0], lats[0], t.z, t.x, t.y)
    assert fetch(layer, t.z, t.x, t.y)[r, c, 3] == 0
    assert fetch(untagged, t.z, t.x, t.y)[r, c, 3] == 255


# ------------------------------------------------------------------ 7. other planets


@pytest.mark.parametrize("crs_name", ["ESRI:104905", "ESRI:104903", "IAU_2015:49900"])
def test_raster_of_another_planet_is_refused(m, tmp_path, crs_name):
    import pyproj
    from rasterio.crs import CRS

    path = tmp_path / "planet.tif"
    crs = CRS.from_wkt(pyproj.CRS(crs_name).to_wkt())
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8", crs=crs,
                       transform=from_origin(10, 20, 0.5, 0.5)) as d:
        d.write(np.arange(64, dtype=np.uint8).reshape(1, 8, 8))
    layers, ids = list(m.layers), list(m.server.source_ids)
    with pytest.raises(InvalidSourceError, match="not the Earth"):
        m.add_raster(str(path))
    assert list(m.layers) == layers and list(m.server.source_ids) == ids


def test_other_earth_datums_are_accepted(m, tmp_path):
    path = tmp_path / "nad27.tif"
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8", crs="EPSG:4267",
                       transform=from_origin(-100, 40, 0.01, 0.01)) as d:
        d.write(np.arange(64, dtype=np.uint8).reshape(1, 8, 8))
    assert m.add_raster(str(path)).info["crs"] == "EPSG:4267"


# ------------------------------------------------------------------ 8. antimeridian


def write_wrapping_global(path):
    """1-degree global EPSG:4326 grid with data only at 170..180 E and 180..165 W,
    10..20 S."""
    arr = np.zeros((180, 360), dtype=np.uint8)
    arr[100:110, 350:360] = 7
    arr[100:110, 0:15] = 9
    with rasterio.open(path, "w", driver="GTiff", width=360, height=180, count=1, dtype="uint8",
                       crs="EPSG:4326", transform=from_origin(-180, 90, 1, 1), nodata=0) as d:
        d.write(arr, 1)
    return str(path)


def test_global_raster_with_data_across_180_zooms_to_the_data(m, tmp_path):
    layer = m.add_raster(write_wrapping_global(tmp_path / "wrap.tif"))
    assert layer.info["bounds"] == [170.0, -20.0, -165.0, -10.0]
    lat, lon = m.center
    assert lon == pytest.approx(-177.5)
    assert -20 < lat < -10


# ------------------------------------------------------------------ 11. failing constructors


def test_map_constructor_error_is_the_real_one(monkeypatch):
    from traitlets import TraitError

    from leafmap_tiles import Map
    from leafmap_tiles.map import map as map_module

    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(u))
    before = len(map_module._open_maps)
    with pytest.raises(TraitError, match="zoom"):
        Map(basemap=None, zoom="far")
    gc.collect()
    assert unraisable == []
    assert len(map_module._open_maps) == before


def test_time_slider_failing_to_build_its_widgets_leaves_nothing(m, monkeypatch):
    from leafmap_tiles.map import time_slider

    files = [data(f"landsat_annual/{y}.tif") for y in (1985, 1990)]
    m.add_raster(data("cog_rgb.tif"))
    layers, controls, ids = list(m.layers), list(m.controls), list(m.server.source_ids)

    def broken(*args, **kwargs):
        raise RuntimeError("the front end refused the control")

    monkeypatch.setattr(time_slider, "WidgetControl", broken)
    with pytest.raises(RuntimeError, match="the front end refused the control"):
        m.add_time_slider(files)
    assert list(m.layers) == layers and list(m.controls) == controls
    assert list(m.server.source_ids) == ids
    assert m.time_sliders == []


def test_global_raster_with_data_in_one_place_zooms_there(m, tmp_path):
    arr = np.zeros((180, 360), dtype=np.uint8)
    arr[40:50, 190:200] = 5  # 10..20 E, 40..50 N
    path = tmp_path / "small.tif"
    with rasterio.open(path, "w", driver="GTiff", width=360, height=180, count=1, dtype="uint8",
                       crs="EPSG:4326", transform=from_origin(-180, 90, 1, 1), nodata=0) as d:
        d.write(arr, 1)
    layer = m.add_raster(str(path))
    assert layer.info["bounds"] == [10.0, 40.0, 20.0, 50.0]
