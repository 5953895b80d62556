"""Login/logout reach the kernel's real tile server: a protected asset fails before
login, renders after it without a restart, fails again after logout (no cached
tile), and the credentials never reach another host."""

from __future__ import annotations

import io

import morecantile
import numpy as np
import pytest

from leafmap_tiles.errors import AuthenticationError
from terrascope_catalog import CATALOG, PASSWORD, USERNAME

client = pytest.importorskip("leafmap_tiles.client")
SPEC = next(s for s in CATALOG if s.date == "2018-07-16")


@pytest.fixture
def tile_server():
    server = client.get_server(start=True).start()
    yield server
    server.close()


def centre_tile(ndvi_assets, zoom=15):
    w, s, e, n = ndvi_assets.info[SPEC.id]["bbox"]
    return morecantile.tms.get("WebMercatorQuad").tile((w + e) / 2, (s + n) / 2, zoom)


def opaque_pixels(png: bytes) -> int:
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    return int((img[..., 3] > 0).sum())


def test_protected_tile_before_login_after_login_after_logout(
        terrascope_auth, asset_server, ndvi_assets, tile_server):
    url = asset_server.url(SPEC)
    with pytest.raises(AuthenticationError, match="login"):
        tile_server.register(url, protected=True)

    terrascope_auth.login(USERNAME, PASSWORD, quiet=True)
    reg = tile_server.register(url, protected=True)
    t = centre_tile(ndvi_assets)
    png = tile_server.tile(reg["id"], t.z, t.x, t.y)
    assert opaque_pixels(png) == 256 * 256  # the whole tile is inside the raster
    pid = tile_server.pid

    terrascope_auth.logout()
    with pytest.raises(AuthenticationError):
        tile_server.tile(reg["id"], t.z, t.x, t.y)
    assert tile_server.pid == pid  # no restart in between


def test_tile_server_sends_no_credentials_to_another_host(
        terrascope_auth, asset_server, recording_server, ndvi_assets, tile_server):
    terrascope_auth.login(USERNAME, PASSWORD, quiet=True)
    recording_server.clear()
    reg = tile_server.register(recording_server.url(SPEC))
    t = centre_tile(ndvi_assets)
    assert opaque_pixels(tile_server.tile(reg["id"], t.z, t.x, t.y)) == 256 * 256
    records = recording_server.records
    assert any(r["method"] == "GET" for r in records)
    assert [r["authorization"] for r in records] == [None] * len(records)


def test_host_without_port_and_other_case_get_the_credentials(
        terrascope_auth, asset_server, ndvi_assets, tile_server, monkeypatch):
    """Credentials for a bare host name apply to any port, case-insensitively, in the
    tile server exactly as in the kernel (leafmap_tiles._hosts)."""
    monkeypatch.setenv("LEAFMAP_TILES_TERRASCOPE_HOSTS", "LOCALHOST")  # no port, other case
    terrascope_auth.login(USERNAME, PASSWORD, quiet=True)
    url = asset_server.url(SPEC).replace("//127.0.0.1:", "//LocalHost:")
    reg = tile_server.register(url)
    t = centre_tile(ndvi_assets)
    assert opaque_pixels(tile_server.tile(reg["id"], t.z, t.x, t.y)) == 256 * 256


def test_plain_add_raster_of_a_protected_url_is_never_cached(terrascope_auth, asset_server, ndvi_assets):
    import requests

    from leafmap_tiles import Map

    terrascope_auth.login(USERNAME, PASSWORD, quiet=True)
    m = Map(basemap=None)
    try:
        layer = m.add_raster(asset_server.url(SPEC))  # not through create_time_layers
        t = centre_tile(ndvi_assets)
        r = requests.get(layer.url.replace("{z}", str(t.z)).replace("{x}", str(t.x)).replace("{y}", str(t.y)),
                         timeout=60)
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    finally:
        m.close()
