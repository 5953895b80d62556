"""Terrascope login/logout and protected downloads (nginx with Basic auth)."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import numpy as np
import pytest
import rasterio

from terrascope_catalog import CATALOG, PASSWORD, USERNAME, encode_ndvi, naip_path
from leafmap_tiles.errors import AuthenticationError

SPEC = next(s for s in CATALOG if s.date == "2018-07-16")
GDAL_VARS = ("GDAL_HTTP_AUTH", "GDAL_HTTP_USERPWD", "GDAL_DISABLE_READDIR_ON_OPEN")


def expected_dn(spec):
    """The Terrascope DNs computed straight from the NAIP file (full extent items)."""
    with rasterio.open(naip_path(spec.naip_date)) as src:
        return encode_ndvi(src.read(1), src.read(4), src.read_masks(1) > 0)


def test_login_without_credentials_names_both_variables(terrascope_auth, capsys):
    with pytest.raises(ValueError) as err:
        terrascope_auth.login()
    assert "TERRASCOPE_USERNAME" in str(err.value)
    assert "TERRASCOPE_PASSWORD" in str(err.value)
    with pytest.raises(ValueError):
        terrascope_auth.login(username="only-a-name")
    assert not any(v in os.environ for v in GDAL_VARS)
    assert capsys.readouterr().out == ""


def test_login_from_environment_sets_gdal_variables(terrascope_auth, monkeypatch, capsys):
    monkeypatch.setenv("TERRASCOPE_USERNAME", USERNAME)
    monkeypatch.setenv("TERRASCOPE_PASSWORD", PASSWORD)
    terrascope_auth.login()
    assert capsys.readouterr().out == f"Authenticated as: {USERNAME}\n"
    assert os.environ["GDAL_HTTP_AUTH"] == "BASIC"
    assert os.environ["GDAL_HTTP_USERPWD"] == f"{USERNAME}:{PASSWORD}"
    assert os.environ["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"


def test_login_arguments_win_and_quiet_prints_nothing(terrascope_auth, monkeypatch, capsys):
    monkeypatch.setenv("TERRASCOPE_USERNAME", "someone-else")
    monkeypatch.setenv("TERRASCOPE_PASSWORD", "other")
    terrascope_auth.login(USERNAME, PASSWORD, auto_refresh=False, quiet=True)
    assert capsys.readouterr().out == ""
    assert os.environ["GDAL_HTTP_USERPWD"] == f"{USERNAME}:{PASSWORD}"


def test_logout_removes_variables_and_stale_token_files(terrascope_auth, clean_env, capsys):
    tokens = clean_env / ".terrascope_tokens.json"
    headers = clean_env / ".gdal_http_headers"
    tokens.write_text('{"access_token": "old"}')
    headers.write_text("Authorization: Bearer old\n")
    os.environ["GDAL_HTTP_HEADER_FILE"] = str(headers)
    terrascope_auth.login(USERNAME, PASSWORD)
    capsys.readouterr()
    terrascope_auth.logout()
    assert capsys.readouterr().out == "Logged out from Terrascope\n"
    for var in GDAL_VARS + ("GDAL_HTTP_HEADER_FILE",):
        assert var not in os.environ
    assert not tokens.exists()
    assert not headers.exists()
    terrascope_auth.logout()  # twice, with nothing left to remove: no error
    assert capsys.readouterr().out == "Logged out from Terrascope\n"


def test_protected_asset_needs_login(terrascope_auth, asset_server):
    from leafmap_tiles.providers import stac

    url = asset_server.url(SPEC)
    with pytest.raises(AuthenticationError) as err:
        with stac.open_raster(url):
            pass
    assert isinstance(err.value, PermissionError)
    assert "terrascope.login()" in str(err.value)
    assert "401" in str(err.value)

    terrascope_auth.login(USERNAME, PASSWORD, quiet=True)
    with stac.open_raster(url) as ds:  # same URL, same process: no cached 401
        assert (ds.count, ds.dtypes[0], ds.nodata) == (1, "uint8", 255)
        data = ds.read(1)
    assert np.array_equal(data, expected_dn(SPEC))
    # the user's own rasterio reads work through the environment variables
    with rasterio.open(url) as ds:
        assert np.array_equal(ds.read(1, window=((100, 110), (200, 210))),
                              expected_dn(SPEC)[100:110, 200:210])

    terrascope_auth.logout()
    with pytest.raises(AuthenticationError, match="log in"):
        with stac.open_raster(url):
            pass


def test_wrong_password_says_so(terrascope_auth, asset_server):
    from leafmap_tiles.providers import stac

    terrascope_auth.login(USERNAME, "wrong-password", quiet=True)
    with pytest.raises(AuthenticationError, match="check the username and password"):
        with stac.open_raster(asset_server.url(SPEC)):
            pass


def test_asset_values_decode_to_naip_ndvi(terrascope_local):
    """The served asset is NAIP NDVI in Terrascope's encoding: DN * 0.004 - 0.08."""
    from leafmap_tiles.providers import stac

    terrascope_local.login(USERNAME, PASSWORD, quiet=True)
    item = next(i for i in terrascope_local.search("terrascope-s2-ndvi-v2", unique_dates=False)
                if i.id == SPEC.id)
    p = stac.get_render_params(item, "NDVI")
    with stac.open_raster(item.assets["NDVI"].href) as ds:
        dn = ds.read(1)
    with rasterio.open(naip_path(SPEC.naip_date)) as src:
        red = src.read(1).astype(float)
        nir = src.read(4).astype(float)
    valid = dn != p["nodata"]
    assert valid.mean() > 0.9
    ndvi = dn[valid] * p["scale"] + p["offset"]
    with np.errstate(divide="ignore", invalid="ignore"):
        truth = ((nir - red) / (nir + red))[valid]
    inside = (truth > -0.08) & (truth < 0.92)  # outside, the encoding clips
    assert inside.mean() > 0.5
    assert np.abs(ndvi[inside] - truth[inside]).max() <= 0.002 + 1e-9
    # the overviews make it a COG that GDAL reads in ranges
    with stac.open_raster(item.assets["NDVI"].href) as ds:
        assert ds.overviews(1)
        assert ds.profile["tiled"]


def test_credentials_never_go_to_another_host(terrascope_auth, asset_server, recording_server):
    from leafmap_tiles.providers import stac

    terrascope_auth.login(USERNAME, PASSWORD, quiet=True)
    recording_server.clear()
    with stac.open_raster(recording_server.url(SPEC)) as ds:
        data = ds.read(1)
    assert np.array_equal(data, expected_dn(SPEC))
    records = recording_server.records
    assert records, "the other host was not asked at all"
    assert any(r["method"] == "GET" for r in records)
    assert [r["authorization"] for r in records] == [None] * len(records)
    # while the protected host does get them
    with stac.open_raster(asset_server.url(SPEC)) as ds:
        assert ds.read(1, window=((0, 1), (0, 1))).shape == (1, 1)


def test_stac_requests_carry_auth_only_for_scoped_hosts(clean_env):
    import requests

    from leafmap_tiles.providers import stac

    stac.set_credentials(["data.example.org:8443", "other.example.org"], "u", "p")
    signed = stac._request_modifier(requests.Request("GET", "https://data.example.org:8443/x"))
    assert signed.headers["Authorization"] == "Basic dTpw"
    for url in ("https://data.example.org/x", "https://data.example.org.evil.net:8443/x",
                "http://127.0.0.1:8443/x"):
        req = stac._request_modifier(requests.Request("GET", url))
        assert "Authorization" not in req.headers, url
    # a host given without a port matches any port of that host
    assert stac.credentials_for("http://other.example.org:8080/a.tif") == ("u", "p")
    assert stac.credentials_for("/vsicurl/https://other.example.org/a.tif") == ("u", "p")
    stac.clear_credentials(["other.example.org"])
    assert stac.credentials_for("https://other.example.org/a.tif") is None
    assert stac.credentials_for("https://data.example.org:8443/a.tif") == ("u", "p")


class FakeServer:
    def __init__(self):
        self.calls = []

    def set_credentials(self, hosts, username, password):
        self.calls.append(("set", list(hosts), username, password))

    def clear_credentials(self, hosts):
        self.calls.append(("clear", list(hosts)))


def fake_client(monkeypatch, server=None, pids=()):
    mod = types.ModuleType("leafmap_tiles.client")
    mod.get_server = lambda start=False: server
    mod.running_server_pids = lambda: list(pids)
    monkeypatch.setitem(sys.modules, "leafmap_tiles.client", mod)
    return mod


def test_login_and_logout_tell_the_tile_server(terrascope_auth, asset_server, monkeypatch):
    server = FakeServer()
    fake_client(monkeypatch, server)
    host = asset_server.netloc
    terrascope_auth.login(USERNAME, PASSWORD, quiet=True)
    assert server.calls == [("set", [host], USERNAME, PASSWORD)]
    terrascope_auth.logout()
    assert server.calls[-1] == ("clear", [host])


def test_login_without_tile_server_or_client(terrascope_auth, monkeypatch):
    fake_client(monkeypatch, None)
    terrascope_auth.login(USERNAME, PASSWORD, quiet=True)
    terrascope_auth.logout()
    monkeypatch.setitem(sys.modules, "leafmap_tiles.client", None)  # ImportError
    terrascope_auth.login(USERNAME, PASSWORD, quiet=True)
    terrascope_auth.logout()
    assert terrascope_auth.cleanup_tile_servers() == 0


def test_default_settings(monkeypatch):
    from leafmap_tiles.providers import terrascope

    monkeypatch.delenv("LEAFMAP_TILES_TERRASCOPE_STAC_URL", raising=False)
    monkeypatch.delenv("LEAFMAP_TILES_TERRASCOPE_HOSTS", raising=False)
    assert terrascope.stac_url() == "https://stac.terrascope.be"
    assert terrascope.download_hosts() == ["services.terrascope.be"]
    monkeypatch.setattr(terrascope, "STAC_URL", "http://127.0.0.1:1/stac/")
    assert terrascope.stac_url() == "http://127.0.0.1:1/stac"


def test_cleanup_stops_only_our_servers(monkeypatch):
    from leafmap_tiles.providers import terrascope

    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    ours = subprocess.Popen(sleeper + ["leafmap_tiles.server"])
    unrelated = subprocess.Popen(sleeper + ["localtileserver"])
    try:
        fake_client(monkeypatch, None, pids=[ours.pid])
        assert terrascope.cleanup_tile_servers() == 1
        assert ours.wait(10) is not None
        assert unrelated.poll() is None
        fake_client(monkeypatch, None, pids=[])
        assert terrascope.cleanup_tile_servers() == 0
        assert unrelated.poll() is None
    finally:
        for p in (ours, unrelated):
            if p.poll() is None:
                p.kill()
            p.wait(10)


def test_no_credentials_anywhere_after_logout(terrascope_auth, asset_server, recording_server):
    """rasterio.Env writes an option that is in os.environ back as a GDAL option when
    it exits; logout must remove that copy too, or GDAL keeps sending the old
    credentials to every host."""
    from leafmap_tiles.providers import stac

    terrascope_auth.login(USERNAME, PASSWORD, quiet=True)
    with stac.open_raster(asset_server.url(SPEC)) as ds:
        ds.read(1)
    with rasterio.Env(GDAL_HTTP_USERPWD=f"{USERNAME}:{PASSWORD}"):
        pass
    terrascope_auth.logout()
    recording_server.clear()
    other = next(s for s in CATALOG if s.date == "2017-08-27")
    with rasterio.open(recording_server.url(other)) as ds:  # the user's own read
        ds.read(1, window=((0, 8), (0, 8)))
    with stac.open_raster(recording_server.url(SPEC)) as ds:
        ds.read(1, window=((0, 8), (0, 8)))
    records = recording_server.records
    assert len(records) >= 4
    assert [r["authorization"] for r in records] == [None] * len(records)


def test_asset_server_needs_basic_auth_and_serves_ranges(asset_server, ndvi_assets):
    import base64
    import urllib.error
    import urllib.request

    url = asset_server.url(SPEC)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=10)
    assert err.value.code == 401
    token = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    req = urllib.request.Request(url, headers={"Authorization": f"Basic {token}",
                                               "Range": "bytes=100-199"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 206
        body = resp.read()
    assert body == ndvi_assets.path(SPEC).read_bytes()[100:200]
