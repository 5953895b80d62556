"""The tile-server child process: ownership, tokens, restart, cleanup."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import psutil
import requests

from leafmap_tiles.client import TileServer
from tests.conftest import data


def _port_free(port: int) -> bool:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_close_stops_child_and_frees_port():
    s = TileServer().start()
    pid, port = s.pid, s.port
    assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).ok
    assert psutil.Process(pid).cmdline()[-1] == "leafmap_tiles.server"
    s.close()
    assert _gone(pid)
    assert _port_free(port)
    s.close()  # idempotent


def test_server_binds_loopback_only():
    with TileServer() as s:
        conns = [c for c in psutil.Process(s.pid).net_connections() if c.status == psutil.CONN_LISTEN]
        assert conns and all(c.laddr.ip == "127.0.0.1" for c in conns)


def test_tokens_and_unregistered_ids(m):
    layer = m.add_raster(data("cog.tif"))
    srv = m.server
    good = layer.url.replace("{z}/{x}/{y}", "8/87/49")
    assert requests.get(good, timeout=30).status_code == 200
    no_token = good.replace(f"/{srv.token}/", "/")
    assert requests.get(no_token, timeout=10).status_code in (403, 404)
    wrong = good.replace(srv.token, "x" * len(srv.token))
    r = requests.get(wrong, timeout=10)
    assert r.status_code == 403 and r.json()["message"]
    unknown = good.replace(layer.source_id, "s000000000000")
    r = requests.get(unknown, timeout=10)
    assert r.status_code == 404 and "unknown source" in r.json()["message"]
    # registration needs the kernel's admin key: the browser (token only) cannot register a path
    r = requests.post(f"http://127.0.0.1:{srv.port}/{srv.token}/sources", json={"path": "/etc/passwd"}, timeout=10)
    assert r.status_code == 403
    # no route takes a path or URL: unknown parameters are rejected, not opened
    r = requests.get(good, params={"path": "/etc/passwd"}, timeout=10)
    assert r.status_code == 400 and "unknown style parameter" in r.json()["message"]
    r = requests.get(f"http://127.0.0.1:{srv.port}/{srv.token}/info/{layer.source_id}", timeout=10)
    assert "path" not in r.json()


def test_sigkill_child_then_existing_layer_works_again(m):
    layer = m.add_raster(data("cog.tif"), colormap="viridis")
    url = layer.url.replace("{z}/{x}/{y}", "8/87/49")
    before = requests.get(url, timeout=30).content
    srv = m.server
    old_pid, restarts = srv.pid, srv.restarts
    os.kill(old_pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while srv.restarts == restarts or not srv.alive():
        assert time.monotonic() < deadline, "server was not restarted"
        time.sleep(0.1)
    assert srv.pid != old_pid
    assert layer.url.replace("{z}/{x}/{y}", "8/87/49") == url  # same port, same id
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and r.content == before


KERNEL = textwrap.dedent(
    """
    import sys, time
    from leafmap_tiles.client import TileServer
    s = TileServer().start()
    print(s.pid, s.port, flush=True)
    time.sleep(600)
    """
)


def test_killing_the_kernel_leaves_no_child():
    kernel = subprocess.Popen([sys.executable, "-c", KERNEL], stdout=subprocess.PIPE, text=True)
    child_pid, port = (int(v) for v in kernel.stdout.readline().split())
    assert psutil.pid_exists(child_pid)
    kernel.send_signal(signal.SIGKILL)
    kernel.wait()
    deadline = time.monotonic() + 5
    while not _gone(child_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(child_pid), "tile server outlived its kernel by more than 5 s"
