"""Faults of the files and hosts behind both servers (issue 19):

- a truncated file swapped in under a running server and restored: 500 JSON naming the
  source/dataset (never its path), one log line per failure (rate limited under a
  storm, no traceback), the same connection keeps working, and the restored file's
  tiles are the original ones again;
- a local HTTP host (:class:`FaultyHost`) that hangs, trickles, refuses, then
  recovers: timeouts are ``SourceTimeoutError``/504 and refusals
  ``SourceUnreachableError``/502, never "corrupt file"; while a host is down its
  tiles answer at once; once it is healthy the same URL works again.

No timing is asserted: loops wait for a state change, with generous bounds.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time

import pytest
from starlette.testclient import TestClient

from leafmap_tiles.errors import InvalidSourceError, SourceTimeoutError, SourceUnreachableError, StyleError

from .faulty_host import FaultyHost
from .servers import DATA, KeepAlive, Served, json_body

TILE = (9, 175, 98)  # inside cog.tif (Greenland)


def _swap(path, data: bytes) -> None:
    """Replace ``path`` atomically (a new inode, as a rewrite by another program)."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _truncated(path) -> bytes:
    data = open(path, "rb").read()
    return data[: len(data) // 3]


# --------------------------------------------------------------------------- truncated files


def test_serve_truncated_file_swapped_in_and_restored(tmp_path):
    from leafmap_tiles import store

    path = tmp_path / "cog.tif"
    shutil.copy(DATA / "cog.tif", path)
    original = path.read_bytes()
    ks = store.open(str(tmp_path / "db.sqlite"))
    ks.create(["name"])
    ks.insert(["greenland"], str(path))
    served = Served("-d", str(tmp_path / "db.sqlite"))
    z, x, y = TILE
    url = f"/singleband/greenland/{z}/{x}/{y}.png?colormap=viridis"
    conn = KeepAlive(served.port)
    try:
        status, hdrs, good = conn.request("GET", url)
        assert status == 200 and hdrs["content-type"] == "image/png"
        _swap(path, _truncated(path))
        for _ in range(5):
            status, hdrs, data = conn.request("GET", url)
            assert status == 500, data[:200]
            body = json_body(data)
            assert body["error"] == "UnreadableDataset" and "dataset greenland" in body["message"]
            assert str(tmp_path) not in body["message"] and "cog.tif" not in body["message"]
            status, _, _ = conn.request("GET", "/keys")
            assert status == 200
        _swap(path, original)
        status, _, restored = conn.request("GET", url)
        assert status == 200 and restored == good
    finally:
        conn.close()
        log = served.close()
    lines = [line for line in log.splitlines() if "UnreadableDataset" in line]
    assert len(lines) == 5, log[-2000:]  # one line per failure
    assert "Traceback" not in log and str(tmp_path) not in log.split("UnreadableDataset")[-1]


def test_serve_truncated_preview_and_metadata_classified(tmp_path, caplog):
    """Every route that reads the file (tiles, preview, lazily computed metadata)
    answers 500 UnreadableDataset, also when GDAL fails while reading band metadata
    (colour interpretation) rather than pixels."""
    from leafmap_tiles import store
    from leafmap_tiles.server.terracotta_api import create_terracotta_app

    good = tmp_path / "a_1.tif"
    shutil.copy(DATA / "cog.tif", good)
    bad = tmp_path / "a_2.tif"
    bad.write_bytes(_truncated(DATA / "cog.tif"))
    tiny = tmp_path / "a_3.tif"
    tiny.write_bytes((DATA / "cog.tif").read_bytes()[:600])  # cut inside the header
    ks = store.open(str(tmp_path / "db.sqlite"))
    ks.create(["name", "n"])
    ks.insert(["a", "1"], str(good))
    ks.insert(["a", "2"], str(bad), skip_metadata=True)
    ks.insert(["a", "3"], str(tiny), skip_metadata=True)
    z, x, y = TILE
    with TestClient(create_terracotta_app(ks), raise_server_exceptions=False) as c:
        # a/2 keeps its header and overviews (a COG stores full resolution last): native tiles fail
        urls = [f"/singleband/a/2/{z}/{x}/{y}.png", f"/compute/a/{z}/{x}/{y}.png?expression=v1*2&v1=2&stretch_range=[0,1]"]
        # a/3 is cut inside its header: everything that opens it fails
        urls += ["/metadata/a/3", f"/singleband/a/3/{z}/{x}/{y}.png", "/singleband/a/3/preview.png",
                 f"/compute/a/{z}/{x}/{y}.png?expression=v1*2&v1=3&stretch_range=[0,1]"]
        for url in urls:
            if True:
                r = c.get(url)
                assert r.status_code == 500, (url, r.status_code, r.text[:200])
                assert r.json()["error"] == "UnreadableDataset", (url, r.json())
                assert str(tmp_path) not in r.text
        assert c.get(f"/singleband/a/1/{z}/{x}/{y}.png").status_code == 200


def test_failure_storm_is_logged_rate_limited(tmp_path, caplog):
    from leafmap_tiles import store
    from leafmap_tiles.server.terracotta_api import create_terracotta_app

    bad = tmp_path / "a_2.tif"
    bad.write_bytes(_truncated(DATA / "cog.tif"))
    ks = store.open(str(tmp_path / "db.sqlite"))
    ks.create(["name", "n"])
    ks.insert(["a", "2"], str(bad), skip_metadata=True)
    caplog.set_level(logging.WARNING, logger="leafmap_tiles")
    z, x, y = TILE
    with TestClient(create_terracotta_app(ks), raise_server_exceptions=False) as c:
        for _ in range(3):
            assert c.get(f"/singleband/a/2/{z}/{x}/{y}.png").status_code == 500
        first = [r for r in caplog.records if r.name.startswith("leafmap_tiles.server")]
        assert len(first) == 3 and all("\n" not in r.getMessage() for r in first)
        for _ in range(200):
            assert c.get(f"/singleband/a/2/{z}/{x}/{y}.png").status_code == 500
    lines = [r for r in caplog.records if r.name.startswith("leafmap_tiles.server")]
    assert 3 < len(lines) <= 20 + 1, len(lines)  # at most 20 lines per 10 s
    assert not any(r.exc_info for r in lines)


def test_session_truncated_file_swapped_in_and_restored(tmp_path):
    from leafmap_tiles.client.server import TileServer

    path = tmp_path / "cog.tif"
    shutil.copy(DATA / "cog.tif", path)
    original = path.read_bytes()
    z, x, y = TILE
    with TileServer() as ts:
        sid = ts.register(str(path), {"colormap": "viridis"})["id"]
        tile = f"/{ts.token}/tiles/{sid}/{z}/{x}/{y}.png?colormap=viridis"
        conn = KeepAlive(ts.port)
        try:
            status, _, good = conn.request("GET", tile)
            assert status == 200
            _swap(path, _truncated(path))
            for route in (tile, f"/{ts.token}/info/{sid}", f"/{ts.token}/point/{sid}?lon=-56.8&lat=73.45"):
                status, _, data = conn.request("GET", route)
                assert status == 500, (route, status, data[:200])
                body = json_body(data)
                assert body["error"] == "InvalidSourceError" and f"source {sid}" in body["message"]
                assert str(tmp_path) not in body["message"] and "cog.tif" not in body["message"]
            with pytest.raises(InvalidSourceError, match="truncated or corrupt"):
                ts.point(sid, -56.8, 73.45)  # the kernel gets the specific error
            _swap(path, original)
            status, _, restored = conn.request("GET", tile)
            assert status == 200 and restored == good
        finally:
            conn.close()


# --------------------------------------------------------------------------- misbehaving hosts


@pytest.fixture
def host(tmp_path):
    for name in ("cog.tif", "cog_rgb.tif"):
        shutil.copy(DATA / name, tmp_path / name)
    h = FaultyHost(str(tmp_path), trickle_delay=0.5)
    yield h
    h.close()


@pytest.fixture
def short_timeouts(monkeypatch):
    """GDAL timeouts of the server processes started by the test (their own env)."""
    monkeypatch.setenv("GDAL_HTTP_TIMEOUT", "3")
    monkeypatch.setenv("GDAL_HTTP_CONNECTTIMEOUT", "2")


def _until(fn, want, attempts: int = 60, pause: float = 1.0, stop=None):
    """Call ``fn`` until it returns ``want`` (or ``stop(value)`` is true); the last value."""
    got = None
    for _ in range(attempts):
        got = fn()
        if got == want or (stop is not None and stop(got)):
            return got
        time.sleep(pause)
    return got


def _tiles(n: int, z: int = 12):
    """``n`` tiles inside cog.tif at zoom ``z`` (full resolution there), far enough
    apart that each reads blocks of the file that no earlier one read."""
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    out = []
    for i in range(n):
        lon = -60.0 + 6.5 * ((i * 7) % n) / n
        lat = 72.7 + 1.5 * ((i * 3) % n) / n
        t = tms.tile(lon, lat, z)
        if (t.z, t.x, t.y) not in out:
            out.append((t.z, t.x, t.y))
    return out


def _uncached(monkeypatch, host) -> None:
    """The server processes keep no bytes of ``host`` (GDAL's block cache of 1 MB, no
    /vsicurl/ cache): each new tile asks the host."""
    monkeypatch.setenv("CPL_VSIL_CURL_NON_CACHED", f"/vsicurl/http://127.0.0.1:{host.port}/")
    monkeypatch.setenv("VSI_CACHE", "FALSE")
    monkeypatch.setenv("GDAL_CACHEMAX", "1")


def test_session_url_that_timed_out_works_once_its_host_is_back(host, short_timeouts):
    """issue 19, item 4: GDAL cached the failure, so the URL failed with "not a raster
    format" long after its host was healthy."""
    from leafmap_tiles.client.server import TileServer

    url = host.url("cog.tif")
    with TileServer() as ts:
        host.mode = "hang"
        with pytest.raises(SourceTimeoutError):
            ts.register(url)
        host.mode = "ok"
        reg = ts.register(url)
        assert reg["info"]["width"] == 2658
        z, x, y = TILE
        assert ts.tile(reg["id"], z, x, y)[:4] == b"\x89PNG"


def test_session_remote_hang_trickle_refuse_then_recover(host, short_timeouts, monkeypatch):
    from leafmap_tiles.client.server import TileServer

    _uncached(monkeypatch, host)
    url = host.url("cog.tif")
    with TileServer() as ts:
        sid = ts.register(url)["id"]
        tiles = iter(_tiles(40))
        conn = KeepAlive(ts.port)

        def get(tile=None):
            z, x, y = tile or next(tiles)
            status, _, data = conn.request("GET", f"/{ts.token}/tiles/{sid}/{z}/{x}/{y}.png")
            return status, (json.loads(data) if status != 200 else None)

        def first_failure():
            """The answer to the first tile that needed the host (blocks read before
            may still be in the block cache of the thread's dataset)."""
            for _ in range(20):
                status, body = get()
                if status != 200:
                    return status, body
            raise AssertionError("20 tiles answered without asking the host")

        try:
            assert get()[0] == 200
            # a host sending a byte every 0.5 s: a timeout (504), not a corrupt file
            host.mode = "trickle"
            status, body = first_failure()
            assert (status, body["error"]) == (504, "SourceTimeoutError"), body
            assert url not in body["message"] and "127.0.0.1" not in body["message"]
            # while it is down, its tiles answer at once with the remembered error
            status, body = get()
            assert (status, body["error"]) == (504, "SourceTimeoutError") and "next retry" in body["message"]
            # a hanging host: still a timeout, once the back-off lets a request through
            host.mode = "hang"
            time.sleep(2.0)  # past the first back-off (1 s)
            status, body = first_failure()
            assert (status, body["error"]) == (504, "SourceTimeoutError"), body
            # refused connections: 502 once the back-off lets a request through
            host.mode = "refuse"
            assert _until(lambda: (get()[1] or {}).get("error"), "SourceUnreachableError") == "SourceUnreachableError"
            # healthy again: the same source serves tiles again (after its back-off)
            host.mode = "ok"
            assert _until(lambda: get()[0], 200) == 200
            assert all(get()[0] == 200 for _ in range(5))
        finally:
            conn.close()


def test_session_registration_classifies_refused_and_trickling_hosts(host, short_timeouts):
    from leafmap_tiles.client.server import TileServer

    url = host.url("cog_rgb.tif")
    with TileServer() as ts:
        host.mode = "refuse"
        with pytest.raises(SourceUnreachableError):
            ts.register(url)
        host.mode = "trickle"
        with pytest.raises(SourceTimeoutError):
            ts.register(url)
        host.mode = "ok"
        reg = ts.register(url)
        assert reg["info"]["count"] == 3


def test_serve_remote_dataset_hang_then_recover(host, short_timeouts, tmp_path, monkeypatch):
    from leafmap_tiles import store

    _uncached(monkeypatch, host)
    url = host.url("cog.tif")
    ks = store.open(str(tmp_path / "db.sqlite"))
    ks.create(["name"])
    ks.insert(["remote"], url)  # metadata read while the host is healthy
    served = Served("-d", str(tmp_path / "db.sqlite"))
    tiles = iter(_tiles(40))
    conn = KeepAlive(served.port)

    def get():
        z, x, y = next(tiles)
        status, _, data = conn.request("GET", f"/singleband/remote/{z}/{x}/{y}.png")
        return status, (json.loads(data) if status != 200 else None)

    try:
        assert get()[0] == 200
        host.mode = "hang"
        seen = []

        def failing():
            status, body = get()
            seen.append((status, body and body["error"]))
            return status, body

        # serve's render deadline (5 s) may answer the first tiles 503 while GDAL still
        # waits (2 reads x 3 s here); once a read timed out, tiles answer 504 at once
        status, body = _until(failing, None, attempts=40, pause=0.5, stop=lambda r: r[0] == 504)
        assert (status, body["error"]) == (504, "SourceTimeoutError"), seen
        assert set(seen) <= {(200, None), (503, "RenderDeadlineError"), (504, "SourceTimeoutError")}, seen
        assert "dataset remote" in body["message"] and "127.0.0.1" not in body["message"]
        host.mode = "refuse"
        assert _until(lambda: get()[0], 502) == 502
        host.mode = "ok"
        assert _until(lambda: get()[0], 200) == 200
    finally:
        conn.close()
        served.close()


# --------------------------------------------------------------------------- client refusals


def test_layer_with_too_long_tile_urls_is_refused_before_the_map_changes(m):
    """A style that would make tile URLs longer than browsers load is refused before
    anything changes.  A {value: colour} colormap of thousands of classes is not such a
    style any more: it is registered with the server (issue 13) and its URL is short."""
    import requests

    before = list(m.layers)
    registered = list(m.server.source_ids) if m.server is not None else []
    long_expression = "+".join(["b1"] * 3000)  # 8,999 characters
    with pytest.raises(StyleError, match="tile URLs would be .* characters long"):
        m.add_raster(str(DATA / "nlcd.tif"), expression=long_expression)
    assert list(m.layers) == before
    assert (list(m.server.source_ids) if m.server is not None else []) == registered
    # 3,000 classes: a registered colormap, a short URL, tiles that load
    lyr = m.add_raster(str(DATA / "nlcd.tif"), colormap={i: "#ff0000" for i in range(3000)})
    assert len(lyr.url) < 2000
    z = int(m.zoom)
    import morecantile

    t = morecantile.tms.get("WebMercatorQuad").tile(m.center[1], m.center[0], z)
    r = requests.get(lyr.url.format(z=t.z, x=t.x, y=t.y), timeout=60)
    assert r.status_code == 200 and r.content[:4] == b"\x89PNG"


def test_a_file_that_is_not_a_raster_is_named_in_the_kernel_error(m, tmp_path):
    """Error bodies to the browser carry no paths, but a registration is the kernel's own
    request: the user is told which file cannot be read (e.g. one of a slider's folder)."""
    from leafmap_tiles.errors import InvalidSourceError

    bad = tmp_path / "2000.tif"
    bad.write_text("not a raster")
    before = list(m.layers)
    with pytest.raises(InvalidSourceError, match="2000.tif"):
        m.add_raster(str(bad))
    assert list(m.layers) == before
