"""The session server's tile route over real HTTP (uvicorn on 127.0.0.1, in this
process so that a render can be held on a gate): a tile whose client disconnected
before its render started is never rendered; a render past the deadline answers 503
JSON and the server keeps serving; one busy source leaves a thread for another.

No timing is asserted: the tests wait for events (with generous timeouts that only
bound a hang), never for a render to be fast.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from tests.conftest import data

TOKEN, KEY = "t" * 24, "k" * 32


class Served:
    def __init__(self, **kwargs) -> None:
        import uvicorn

        from leafmap_tiles.server.app import create_app

        self.app = create_app(TOKEN, KEY, workers=1, **kwargs)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started)
        self.base = f"http://127.0.0.1:{self.port}"

    def register(self, path) -> str:
        r = requests.post(f"{self.base}/{TOKEN}/sources", json={"path": path},
                          headers={"X-Leafmap-Tiles-Key": KEY}, timeout=120)
        assert r.status_code == 200, r.text
        return r.json()["id"]

    def tile_path(self, sid, z=10, x=200, y=380) -> str:
        return f"/{TOKEN}/tiles/{sid}/{z}/{x}/{y}.png"

    def stats(self) -> dict:
        return requests.get(f"{self.base}/health", timeout=30).json()["renders"]["local"]

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def wait_for(cond, timeout=60.0):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached (hang)")
        time.sleep(0.02)


def run_scenario(scenario) -> None:
    """Run the coroutine function ``scenario`` with asyncio in a thread of its own (a
    session-wide Playwright may keep an event loop running in this thread, where
    asyncio.run() refuses to start); its exception is raised here."""
    import asyncio

    errors: list[BaseException] = []

    def runner():
        try:
            asyncio.run(scenario())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=runner)
    t.start()
    t.join(120)
    assert not t.is_alive(), "scenario hung"
    if errors:
        raise errors[0]


@pytest.fixture
def gated(monkeypatch):
    """A served app whose engine.tile blocks while the gate is closed, recording calls."""
    srv = Served()
    engine = srv.app.state.engine
    real_tile = engine.tile
    gate = threading.Event()
    calls: list[tuple] = []

    def tile(path, style, z, x, y, fmt="PNG"):
        calls.append((path, z, x, y))
        if (z, x, y) == (10, 200, 380):
            gate.wait(120)
        return real_tile(path, style, z, x, y, fmt)

    monkeypatch.setattr(engine, "tile", tile)
    yield srv, gate, calls
    gate.set()
    srv.close()


def _raw_get(port: int, path: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return s


def test_tile_abandoned_by_its_client_is_never_rendered(gated):
    srv, gate, calls = gated
    sid = srv.register(data("naip/m_4709963_se_14_1_20200831.tif"))
    # 1) a tile that holds the source's only render thread
    holder = _raw_get(srv.port, srv.tile_path(sid))
    wait_for(lambda: len(calls) == 1)
    # 2) another tile of the same source, queued behind it; its client goes away
    gone = _raw_get(srv.port, srv.tile_path(sid, 10, 201, 380))
    wait_for(lambda: srv.stats()["queued"] == 1)
    gone.close()
    wait_for(lambda: srv.stats()["abandoned"] == 1)
    gate.set()
    holder.recv(1)
    holder.close()
    # 3) the server still answers, and the abandoned tile was never rendered
    r = requests.get(srv.base + srv.tile_path(sid, 10, 202, 380), timeout=60)
    assert r.status_code == 200 and r.content[:4] == b"\x89PNG"
    assert (10, 201, 380) not in [c[1:] for c in calls]
    assert [c[1:] for c in calls] == [(10, 200, 380), (10, 202, 380)]
    st = srv.stats()
    assert st["abandoned"] == 1 and st["queued"] == 0


def test_render_past_the_deadline_answers_503_json_and_server_keeps_serving(monkeypatch):
    # 5 s: the renders that must succeed (other tiles) stay far below it even on a
    # loaded machine; the stuck one is held for up to 120 s
    srv = Served(deadline=5.0)
    try:
        engine = srv.app.state.engine
        real_tile = engine.tile
        gate = threading.Event()

        def tile(path, style, z, x, y, fmt="PNG"):
            if (z, x, y) == (10, 200, 380):
                gate.wait(120)  # a render stuck in a slow read
            return real_tile(path, style, z, x, y, fmt)

        monkeypatch.setattr(engine, "tile", tile)
        sid = srv.register(data("naip/m_4709963_se_14_1_20200831.tif"))
        r = requests.get(srv.base + srv.tile_path(sid), timeout=60)
        assert r.status_code == 503
        body = r.json()
        assert body["error"] == "RenderDeadlineError" and "5 s" in body["message"]
        assert r.headers["retry-after"] == "1"
        # another source renders although the stuck render still holds a thread
        other = srv.register(data("landsat_annual/1985.tif"))
        r2 = requests.get(srv.base + srv.tile_path(other, 9, 151, 267), timeout=60)
        assert r2.status_code == 200 and r2.content[:4] == b"\x89PNG"
        gate.set()
        wait_for(lambda: srv.stats()["running"] == 0)
        assert srv.stats()["late"] == 1
        # counted per source, for the kernel's layers to redraw (GET /{token}/late)
        late = requests.get(f"{srv.base}/{TOKEN}/late", timeout=30)
        assert late.status_code == 200 and late.json() == {sid: 1}
        assert requests.get(f"{srv.base}/{'x' * 24}/late", timeout=30).status_code == 403
        r3 = requests.get(srv.base + srv.tile_path(sid, 10, 201, 380), timeout=60)
        assert r3.status_code == 200
    finally:
        srv.close()


def test_busy_source_leaves_a_thread_for_another(gated):
    """Two renders of source A hold threads (A may use `workers` = 1 of the 2); a
    tile of source B is rendered meanwhile."""
    srv, gate, calls = gated
    a = srv.register(data("naip/m_4709963_se_14_1_20200831.tif"))
    b = srv.register(data("landsat_annual/1985.tif"))
    held = _raw_get(srv.port, srv.tile_path(a))
    wait_for(lambda: len(calls) == 1)
    queued = _raw_get(srv.port, srv.tile_path(a, 10, 201, 380))
    wait_for(lambda: srv.stats()["queued"] == 1)
    r = requests.get(srv.base + srv.tile_path(b, 9, 151, 267), timeout=60)
    assert r.status_code == 200 and r.content[:4] == b"\x89PNG"
    assert srv.stats()["queued"] == 1  # A's second tile still waits for A's thread
    gate.set()
    for s in (held, queued):
        s.recv(1)
        s.close()


def test_background_sources_render_after_the_others():
    """Jobs of sources marked background (a slider's hidden frames) wait while jobs of
    other sources are queued, whatever their order of arrival."""
    import asyncio

    from leafmap_tiles.server.scheduler import Scheduler

    order: list[str] = []
    gates = {k: threading.Event() for k in ("g1", "g2", "g3")}

    def job(key):
        if key in gates:
            gates[key].wait(60)
        order.append(key)
        return key

    async def scenario():
        sched = Scheduler(workers=1, deadline=None)
        sched.set_background({"a"})
        held = [asyncio.ensure_future(sched.run(k, job, k)) for k in ("g1", "g2", "g3")]
        await asyncio.get_running_loop().run_in_executor(None, wait_for, lambda: sched.stats()["running"] == 3)
        late = [asyncio.ensure_future(sched.run("a", job, "a")), asyncio.ensure_future(sched.run("b", job, "b"))]
        await asyncio.get_running_loop().run_in_executor(None, wait_for, lambda: sched.stats()["queued"] == 2)
        gates["g1"].set()
        await asyncio.gather(*late)
        for g in gates.values():
            g.set()
        await asyncio.gather(*held)
        sched.close()

    run_scenario(scenario)
    assert order.index("b") < order.index("a"), order


def test_background_job_waits_for_every_tile_and_a_free_thread():
    """Work submitted with submit_background (a decimated level built ahead) starts only
    when no tile is queued and a thread is left for tiles; its errors are counted, not
    raised; after close() it is ignored."""
    import asyncio

    from leafmap_tiles.server.scheduler import Scheduler

    order: list[str] = []
    gate = threading.Event()

    def job(key):
        if key == "held":
            gate.wait(60)
        order.append(key)
        return key

    def failing():
        order.append("failing")
        raise RuntimeError("a broken build")

    async def scenario():
        sched = Scheduler(workers=1, deadline=None)
        held = asyncio.ensure_future(sched.run("t", job, "held"))
        await asyncio.get_running_loop().run_in_executor(None, wait_for, lambda: sched.stats()["running"] == 1)
        sched.submit_background(("levels", "x"), job, "background")
        sched.submit_background(("levels", "y"), failing)
        tiles = [asyncio.ensure_future(sched.run(k, job, k)) for k in ("t1", "t2")]
        await asyncio.gather(*tiles)  # other sources' tiles get the spare thread at once
        # "held" keeps the one tile thread (workers=1) busy: the background jobs wait
        await asyncio.sleep(0.3)
        assert order == ["t1", "t2"], order
        gate.set()
        await held
        await asyncio.get_running_loop().run_in_executor(None, wait_for, lambda: len(order) == 5)
        assert sched.stats()["failed"] == 1
        sched.close()
        sched.submit_background(("levels", "z"), job, "after-close")  # ignored, no error

    run_scenario(scenario)
    assert order[:3] == ["t1", "t2", "held"], order
    assert set(order[3:]) == {"background", "failing"}, order
