"""The tile proxy in a real jupyter-server (leafmap_tiles/_jupyter/proxy.py), in front of
a real session tile server (uvicorn in this process, so a render can be held on a gate):
a tile the browser aborted is never rendered, requests are not queued in the Jupyter
server (jupyter-loopback's shared client forwards at most 10 at once), and tiles come
back byte-identical with their headers.

No timing is asserted: the tests wait for events (timeouts only bound a hang)."""

from __future__ import annotations

import socket

import pytest
import requests

from tests.conftest import data
from tests.core.test_render_scheduling import Served, wait_for
from tests.jupyter.test_route import JUPYTER_SERVER, Server

NAIP = "naip/m_4709963_se_14_1_20200831.tif"


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory):
    if not JUPYTER_SERVER.exists():
        pytest.skip(f"{JUPYTER_SERVER} not found (pip install -e '.[dev]')")
    s = Server(tmp_path_factory.mktemp("proxy"), "/")
    yield s
    s.stop()


@pytest.fixture
def gated(monkeypatch):
    """A served app whose zoom-10 tiles block while the gate is closed; records calls."""
    import threading

    srv = Served()
    engine = srv.app.state.engine
    real_tile = engine.tile
    gate = threading.Event()
    calls: list[tuple] = []

    def tile(path, style, z, x, y, fmt="PNG"):
        calls.append((z, x, y))
        if z == 10:
            gate.wait(120)
        return real_tile(path, style, z, x, y, fmt)

    monkeypatch.setattr(engine, "tile", tile)
    yield srv, gate, calls
    gate.set()
    srv.close()


def _proxied(jupyter, srv, path: str) -> str:
    return f"/leafmap-tiles-proxy/{srv.port}{path}"


def _raw_get(jupyter, target: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", jupyter.port))
    s.sendall((f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{jupyter.port}\r\n"
               f"Authorization: token {jupyter.info['token']}\r\n\r\n").encode())
    return s


def test_tile_aborted_by_the_browser_is_not_rendered(jupyter, gated):
    srv, gate, calls = gated
    sid = srv.register(data(NAIP))
    holder = _raw_get(jupyter, _proxied(jupyter, srv, srv.tile_path(sid)))
    wait_for(lambda: len(calls) == 1)  # holds the source's only render thread
    gone = _raw_get(jupyter, _proxied(jupyter, srv, srv.tile_path(sid, 10, 201, 380)))
    wait_for(lambda: srv.stats()["queued"] == 1)  # reached the tile server, queued there
    gone.close()  # the browser aborts it (a zoom or pan)
    wait_for(lambda: srv.stats()["abandoned"] == 1)
    gate.set()
    assert holder.recv(12).startswith(b"HTTP/1.1 200")
    holder.close()
    assert (10, 201, 380) not in calls


def test_more_than_ten_requests_reach_the_tile_server_at_once(jupyter, gated):
    srv, gate, calls = gated
    sid = srv.register(data(NAIP))
    socks = [_raw_get(jupyter, _proxied(jupyter, srv, srv.tile_path(sid, 10, 200 + i, 380))) for i in range(14)]
    try:
        # one renders (held), 13 wait in the tile server's queue, none in the Jupyter server
        wait_for(lambda: srv.stats()["queued"] == 13)
    finally:
        gate.set()
        for s in socks:
            s.close()


def test_tile_through_the_proxy_equals_the_direct_tile(jupyter):
    srv = Served()
    try:
        sid = srv.register(data(NAIP))
        import morecantile
        import rasterio
        from rasterio.warp import transform_bounds

        with rasterio.open(data(NAIP)) as ds:
            w, s_, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
        t = morecantile.tms.get("WebMercatorQuad").tile((w + e) / 2, (s_ + n) / 2, 16)
        path = srv.tile_path(sid, t.z, t.x, t.y) + "?indexes=4,1,2"
        direct = requests.get(srv.base + path, timeout=60)
        via = requests.get(f"http://127.0.0.1:{jupyter.port}" + _proxied(jupyter, srv, path),
                           headers={"Authorization": f"token {jupyter.info['token']}"}, timeout=60)
        assert direct.status_code == via.status_code == 200
        assert via.content == direct.content and via.content[:4] == b"\x89PNG"
        for h in ("content-type", "etag", "cache-control"):
            assert via.headers.get(h) == direct.headers.get(h), h
        # HEAD: headers, no body
        head = requests.head(f"http://127.0.0.1:{jupyter.port}" + _proxied(jupyter, srv, path),
                             headers={"Authorization": f"token {jupyter.info['token']}"}, timeout=60)
        assert head.status_code in (200, 405) and head.content == b""
        # an error of the tile server comes back as its JSON
        bad = requests.get(f"http://127.0.0.1:{jupyter.port}" + _proxied(jupyter, srv, srv.tile_path("nope")),
                           headers={"Authorization": f"token {jupyter.info['token']}"}, timeout=60)
        assert bad.status_code == 404 and "message" in bad.json()
        # nothing listening on the port: 502 from the proxy
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            free = s.getsockname()[1]
        dead = requests.get(f"http://127.0.0.1:{jupyter.port}/leafmap-tiles-proxy/{free}/x",
                            headers={"Authorization": f"token {jupyter.info['token']}"}, timeout=60)
        assert dead.status_code == 502
    finally:
        srv.close()
