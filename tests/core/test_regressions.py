"""Problems found by trying the package as a new user (each was reproduced first)."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import rasterio
import requests
from affine import Affine

from leafmap_tiles.errors import StyleError
from tests.conftest import data
from tests.core.helpers import decode


def _write(path, value, width):
    with rasterio.open(path, "w", driver="GTiff", width=width, height=100, count=1, dtype="uint8",
                       crs="EPSG:4326", transform=Affine(0.01, 0, 10.0, 0, -0.01, 50.0)) as dst:
        dst.write(np.full((1, 100, width), value, dtype="uint8"))


def _tile_url(layer, z, x, y):
    return layer.url.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))


def test_file_rewritten_at_same_path_is_read_again(m, tmp_path):
    path = tmp_path / "result.tif"
    _write(path, 10, 100)
    a = m.add_raster(str(path))
    assert m.server.point(a.source_id, 10.3, 49.7)["values"] == [10]
    _write(path, 200, 200)
    b = m.add_raster(str(path))
    assert b.info["width"] == 200
    assert m.server.point(b.source_id, 10.3, 49.7)["values"] == [200]


def test_layer_removed_then_added_again_works(m):
    layer = m.add_raster(data("cog.tif"))
    url = _tile_url(layer, 8, 87, 49)
    before = requests.get(url, timeout=30).content
    m.remove(layer)
    assert requests.get(url, timeout=30).status_code == 404
    m.add(layer)
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and r.content == before


def test_layer_on_two_maps_survives_removal_from_one(m):
    from leafmap_tiles import Map

    layer = m.add_raster(data("cog.tif"))
    other = Map(basemap=None)
    try:
        other.add(layer)
        m.remove(layer)
        assert requests.get(_tile_url(layer, 8, 87, 49), timeout=30).status_code == 200
    finally:
        other.close()


def test_undefined_expression_pixels_are_transparent(m):
    a = np.zeros((2, 256, 256), dtype="uint8")
    a[0, :, 128:] = 50
    a[1, :, 128:] = 150
    t = Affine(0.001, 0, 10.0, 0, -0.001, 50.0)
    layer = m.add_raster(a, crs="EPSG:4326", transform=t, expression="(b2-b1)/(b2+b1)",
                         colormap="RdYlGn", vmin=-1, vmax=1)
    assert m.server.point(layer.source_id, 10.05, 49.9, layer.style)["values"] == [None]  # 0/0
    assert m.server.point(layer.source_id, 10.2, 49.9, layer.style)["values"] == [pytest.approx(0.5)]


def test_constant_band_is_not_black(m):
    a = np.zeros((256, 256), dtype="uint8")
    a[:, 128:] = 255
    layer = m.add_raster(a, crs="EPSG:4326", transform=Affine(0.001, 0, 10.0, 0, -0.001, 50.0), nodata=0)
    assert layer.stretch == {"vmin": [254.0], "vmax": [255.0]}


def test_antimeridian_raster_gets_its_native_max_zoom(m):
    layer = m.add_raster(data("cog_dateline.tif"))
    # 100 m pixels: Web Mercator zoom 10 (~153 m/px at the equator, ~95 m/px at 52 N)
    assert layer.info["maxzoom"] == 10


@pytest.mark.parametrize("bad", [[1.5], ["a"], [True], []])
def test_indexes_must_be_integers(m, bad):
    before = list(m.layers)
    with pytest.raises(StyleError, match="indexes"):
        m.add_raster(data("cog_rgba.tif"), indexes=bad)
    assert list(m.layers) == before


def test_numpy_indexes_and_bad_names_rejected_before_registration(m):
    layer = m.add_raster(data("cog_rgba.tif"), indexes=np.array([3, 2, 1]))
    assert layer.style["indexes"] == "3,2,1"
    n = len(m.server.source_ids)
    with pytest.raises(TypeError, match="layer_name"):
        m.add_raster(data("cog.tif"), layer_name=123)
    with pytest.raises(StyleError, match="vmin"):
        m.add_raster(data("cog.tif"), vmin="low", vmax=3)
    assert len(m.server.source_ids) == n


def test_dataarray_with_lat_lon_dims_is_placed_right(m):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("rioxarray")
    arr = np.arange(200 * 300, dtype="float32").reshape(200, 300)
    da = xr.DataArray(arr, dims=("lat", "lon"),
                      coords={"lat": np.linspace(49.975, 40.025, 200), "lon": np.linspace(0.025, 14.975, 300)})
    layer = m.add_raster(da.rio.write_crs("EPSG:4326"))
    w, s, e, n = layer.info["bounds"]
    assert (w, s, e, n) == pytest.approx((0.0, 40.0, 15.0, 50.0), abs=1e-6)


def test_array_in_rows_cols_bands_order_is_refused(m):
    with pytest.raises(ValueError, match="bands, rows, cols"):
        m.add_raster(np.zeros((100, 100, 3), dtype="uint8"), crs="EPSG:4326",
                     transform=Affine(0.01, 0, 0, 0, -0.01, 0))


def test_server_started_from_a_thread_survives_the_thread():
    from leafmap_tiles.client import TileServer

    s = TileServer()
    t = threading.Thread(target=s.start)
    t.start()
    t.join()
    pid = s.pid
    import time

    time.sleep(1.5)  # the watchdog polls every 0.5 s
    try:
        assert s.alive() and s.pid == pid and s.restarts == 0
    finally:
        s.close()


def test_array_temp_file_removed_with_its_layer(m):
    layer = m.add_raster(np.ones((64, 64), dtype="float32"), crs="EPSG:4326",
                         transform=Affine(0.01, 0, 0, 0, -0.01, 0))
    path = layer.info["path"]
    assert os.path.exists(path)
    m.remove(layer)
    assert not os.path.exists(path)


def test_tiles_revalidate_and_change_with_the_file(m, tmp_path):
    """Tile URLs carry the file's version: a long max-age while the file is unchanged
    (issue 12); after a rewrite at the same path that URL is revalidated (no-cache)
    and serves the new bytes, and ``layer.refresh()`` gives the layer a new URL.  A URL
    without the version is revalidated as before (no-cache + ETag: 304 while unchanged)."""
    path = tmp_path / "result.tif"
    _write(path, 10, 100)
    layer = m.add_raster(str(path), vmin=0, vmax=255)
    import morecantile

    t = morecantile.tms.get("WebMercatorQuad").tile(10.5, 49.5, 8)
    url = _tile_url(layer, t.z, t.x, t.y)
    assert "v=" in url and layer.version
    first = requests.get(url, timeout=30)
    assert (decode(first.content)[..., 3] > 0).any()
    assert first.status_code == 200 and first.headers["cache-control"] == "public, max-age=31536000, immutable"
    bare = url.replace(f"&v={layer.version}", "").replace(f"?v={layer.version}", "?")
    plain = requests.get(bare, timeout=30)
    assert plain.status_code == 200 and plain.headers["cache-control"] == "no-cache"
    assert plain.content == first.content
    again = requests.get(bare, headers={"If-None-Match": plain.headers["etag"]}, timeout=30)
    assert again.status_code == 304
    _write(path, 200, 100)
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 1_000_000))
    changed = requests.get(bare, headers={"If-None-Match": plain.headers["etag"]}, timeout=30)
    assert changed.status_code == 200 and changed.content != first.content
    stale = requests.get(url, timeout=30)  # the old version's URL: not cacheable any more
    assert stale.headers["cache-control"] == "no-cache" and stale.content == changed.content
    old_url = layer.url
    assert layer.refresh() is True and layer.url != old_url
    fresh = requests.get(_tile_url(layer, t.z, t.x, t.y), timeout=30)
    assert fresh.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert fresh.content == changed.content
    assert layer.refresh() is False  # unchanged since


def test_layers_ask_only_for_tiles_in_their_footprint(m):
    from leafmap_tiles.map.layers import leaflet_bounds

    layer = m.add_raster(data("cog.tif"))
    w, s, e, n = layer.info["bounds"]
    assert layer.bounds == [[s, w], [n, e]]
    # across the antimeridian (west > east): the latitude band over all longitudes
    dateline = m.add_raster(data("cog_dateline.tif"))
    dw, ds, de, dn = dateline.info["bounds"]
    assert dw > de
    assert dateline.bounds == [[ds, -180.0], [dn, 180.0]]
    assert leaflet_bounds(None) is None and leaflet_bounds([0, 1, 2]) is None
    assert leaflet_bounds([float("nan"), 0, 1, 1]) is None


def test_native_zoom_of_polar_and_antimeridian_rasters():
    """The native (max) zoom: rio-tiler's, unless the raster's centre pixel is finer in
    Web Mercator (across the antimeridian rio-tiler's is too low: cog_dateline 4 -> 10).
    A polar stereographic raster centred on the South Pole keeps rio-tiler's 4 (its
    centre pixel measured at the pole gave zoom 1: 16x blown-up tiles in the browser)."""
    import warnings

    from rio_tiler.io import Reader

    from leafmap_tiles.render import RenderEngine

    engine = RenderEngine()
    expected = {"bremen_sea_ice_conc_2022_9_9.tif": 4, "cog_dateline.tif": 10, "cog.tif": 9}
    for name, zoom in expected.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Reader(data(name)) as r:
                assert engine.info(data(name)).maxzoom == zoom >= r.maxzoom, name
