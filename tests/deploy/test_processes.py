"""One machine, several processes (docs/deploy.md): ``leafmap-tiles serve --processes 2``,
and the ASGI app factory under uvicorn's and gunicorn's workers."""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from .conftest import BIN, Proc, docs_command, free_port, with_options

TILE = "/singleband/greenland/8/87/49.png?colormap=viridis"


def workers(proc: Proc) -> list[int]:
    """Pids of uvicorn's worker processes under ``proc`` (spawned Python processes;
    multiprocessing's resource tracker is not one)."""
    import psutil

    out = []
    for c in psutil.Process(proc.proc.pid).children():
        try:
            if "spawn_main" in " ".join(c.cmdline()):
                out.append(c.pid)
        except psutil.Error:
            pass
    return out


def answering_pids(base: str, tries: int = 200, seconds: float = 60.0) -> set[int]:
    """Worker pids seen on ``/health`` over new connections (the kernel spreads new
    connections over the workers' sockets), until two are seen,
    ``tries`` requests or ``seconds`` (a worker may still be starting on a loaded machine)."""
    seen = set()
    deadline = time.monotonic() + seconds
    for i in range(10**6):
        if i >= tries and time.monotonic() > deadline:
            break
        r = requests.get(base + "/health", headers={"Connection": "close"}, timeout=30)
        assert r.status_code == 200
        seen.add(r.json()["pid"])
        if len(seen) >= 2:
            break
    return seen


@pytest.fixture
def two_processes(sqlite_store, tmp_path):
    port = free_port()
    argv = with_options(docs_command("leafmap-tiles serve -d tiles.sqlite"),
                        {"--host": "127.0.0.1", "--port": str(port)})
    assert argv[argv.index("--processes") + 1] == "2"
    p = Proc([str(BIN / argv[0])] + argv[1:], port, log=tmp_path / "serve.log", cwd=sqlite_store)
    yield p
    p.stop()


def test_processes_2_two_workers_answer_and_a_dead_worker_is_replaced(two_processes):
    p = two_processes
    pids = workers(p)
    assert len(pids) == 2
    assert answering_pids(p.base) == set(pids)
    linux = sys.platform.startswith("linux")
    if linux:  # the killed worker's socket (SO_REUSEPORT: one per worker)
        dead_socket = _socket_inodes(pids[0]) & _listening_inodes(p.port)
    first = requests.get(p.base + TILE, timeout=60)
    assert first.status_code == 200 and first.content.startswith(b"\x89PNG")
    os.kill(pids[0], signal.SIGKILL)
    # the supervisor replaces it (it checks its workers every 0.5 s) on the same socket;
    # meanwhile the other worker answers, and a connection the kernel put on the dead
    # worker's socket waits there for the replacement: every request is answered
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = requests.get(p.base + TILE, timeout=60)
        assert r.status_code == 200 and r.content == first.content
        now = workers(p)
        if len(now) == 2 and pids[0] not in now:
            break
        time.sleep(0.2)
    now = workers(p)
    assert len(now) == 2 and pids[0] not in now and pids[1] in now
    if linux:  # the replacement listens on it
        (replacement,) = set(now) - {pids[1]}
        assert _socket_inodes(replacement) & _listening_inodes(p.port) == dead_socket
    deadline = time.monotonic() + 60
    seen: set[int] = set()
    while time.monotonic() < deadline and seen != set(now):
        seen |= answering_pids(p.base, tries=20)
    assert seen == set(now)


def _listening_inodes(port: int) -> set[int]:
    """Inodes of the sockets listening on ``port`` (Linux's /proc/net/tcp*)."""
    out = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(name):
            continue
        with open(name) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    out.add(int(fields[9]))
    return out


def _socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets process ``pid`` holds open."""
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[len("socket:["):-1]))
    return out


def _burst(port: int, n: int) -> list[int]:
    """Worker pids answering ``/health`` on ``n`` connections all opened before the
    first request is sent (a browser's or a benchmark's burst of keep-alive clients)."""
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(n)]
    try:
        for c in conns:
            c.connect()  # the kernel has put each on a listening socket once connect returns
        out = []
        for c in conns:
            c.request("GET", "/health")
            r = c.getresponse()
            assert r.status == 200
            out.append(json.loads(r.read())["pid"])
        return out
    finally:
        for c in conns:
            c.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT spreads connections on Linux only")
def test_processes_2_each_worker_has_its_own_socket(two_processes):
    """Each worker listens on a socket of its own (SO_REUSEPORT on one port), so the
    kernel, not the workers' accept loops, spreads new connections: a burst of 16
    connections never lands on one worker only.  (With the one socket uvicorn's
    supervisor shares, uvloop's accept loop took whole bursts: 14 to 44 bursts of 100 all
    on one worker, benchmarks/README.md.  With a socket each, a burst lands on one worker
    by chance with probability 2^-15.)"""
    import collections

    p = two_processes
    pids = workers(p)
    listening = _listening_inodes(p.port)
    assert len(listening) == 2
    held = [_socket_inodes(pid) & listening for pid in pids]
    assert [len(h) for h in held] == [1, 1] and held[0] != held[1]
    assert _socket_inodes(p.proc.pid) & listening == listening  # the supervisor keeps both (for replacements)
    for _ in range(10):
        seen = _burst(p.port, 16)
        assert set(seen) == set(pids), collections.Counter(seen)


def test_bind_workers_one_socket_per_worker_on_one_port(monkeypatch):
    """``serve --processes N``'s sockets: N on one port (port 0: the port the first
    got); a port where another server's SO_REUSEPORT sockets listen is in use (the
    search goes on to the next port, never joining them); without SO_REUSEPORT's
    balancing one socket, which the workers share."""
    import socket

    from leafmap_tiles import cli

    if not cli._spreads_connections():
        pytest.skip("the kernel does not spread connections over SO_REUSEPORT sockets")
    first = cli._bind_workers("127.0.0.1", [0], 3)
    try:
        assert first is not None and len(first) == 3
        port = first[0].getsockname()[1]
        assert {s.getsockname()[1] for s in first} == {port}
        assert all(s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for s in first)
        assert cli._bind_workers("127.0.0.1", [port], 2) is None  # in use: refused
        assert cli._bind("127.0.0.1", [port]) is None
        other = cli._bind_workers("127.0.0.1", [port, 0], 2)  # the range search: the next one
        assert other is not None and len(other) == 2 and other[0].getsockname()[1] != port
        for s in other:
            s.close()
    finally:
        for s in first or []:
            s.close()
    monkeypatch.setattr(cli, "_spreads_connections", lambda: False)
    shared = cli._bind_workers("127.0.0.1", [0], 2)
    assert shared is not None and len(shared) == 1
    assert not shared[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    shared[0].close()


def test_sigterm_stops_every_process(two_processes):
    import psutil

    p = two_processes
    everyone = p.pids()
    assert len(everyone) >= 3  # supervisor, two workers (and multiprocessing's tracker)
    os.kill(p.proc.pid, signal.SIGTERM)
    assert p.proc.wait(30) == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(psutil.pid_exists(q) and psutil.Process(q).status() != "zombie"
                                               for q in everyone):
        time.sleep(0.1)
    assert not any(psutil.pid_exists(q) and psutil.Process(q).status() != "zombie" for q in everyone)
    with pytest.raises(requests.ConnectionError):
        requests.get(p.base + "/keys", timeout=5)


def test_workers_exit_when_the_supervisor_is_killed(two_processes):
    import psutil

    p = two_processes
    pids = workers(p)
    os.kill(p.proc.pid, signal.SIGKILL)  # not the group: the workers are left to notice
    p.proc.wait(30)
    deadline = time.monotonic() + 15
    alive = pids
    while time.monotonic() < deadline:
        alive = [q for q in pids if psutil.pid_exists(q) and psutil.Process(q).status() != "zombie"]
        if not alive:
            break
        time.sleep(0.1)
    assert alive == []


def _factory_server(kind: str, sqlite_store, tmp_path) -> Proc:
    port = free_port()
    if kind == "uvicorn":
        argv = with_options(docs_command("uvicorn --factory"), {"--host": "127.0.0.1", "--port": str(port)})
    else:
        argv = with_options(docs_command("gunicorn -k"), {"--bind": f"127.0.0.1:{port}"})
    env_words = [w for w in argv if "=" in w and w.split("=", 1)[0].isupper()]
    cmd = [w for w in argv if w not in env_words]
    env = dict(os.environ, **dict(w.split("=", 1) for w in env_words))
    assert env["LEAFMAP_TILES_DATABASE"] == "tiles.sqlite"
    cmd[0] = str(BIN / cmd[0])
    return Proc(cmd, port, env=env, log=tmp_path / f"{kind}.log", cwd=sqlite_store)


@pytest.mark.parametrize("kind", ["uvicorn", "gunicorn"])
def test_app_factory_under_uvicorn_and_gunicorn_workers(kind, sqlite_store, tmp_path):
    if kind == "gunicorn" and not (importlib.util.find_spec("gunicorn") and importlib.util.find_spec("uvicorn_worker")):
        pytest.skip("gunicorn and uvicorn-worker are not installed (pip install gunicorn uvicorn-worker)")
    ref = Proc([str(BIN / "leafmap-tiles"), "serve", "-d", "tiles.sqlite", "--port", str(port := free_port())],
               port, log=tmp_path / "ref.log", cwd=sqlite_store)
    try:
        expected = requests.get(ref.base + TILE, timeout=60)
        keys = requests.get(ref.base + "/datasets", timeout=60).json()
    finally:
        ref.stop()
    assert expected.status_code == 200
    srv = _factory_server(kind, sqlite_store, tmp_path)
    try:
        assert requests.get(srv.base + "/datasets", timeout=60).json() == keys
        for _ in range(4):
            r = requests.get(srv.base + TILE, headers={"Connection": "close"}, timeout=60)
            assert r.status_code == 200 and r.content == expected.content
        assert len(answering_pids(srv.base)) == 2  # --workers 2
        bad = requests.get(srv.base + "/singleband/nope/8/87/49.png", timeout=60)
        assert bad.status_code == 404 and bad.json()["error"] == "DatasetNotFoundError"
    finally:
        srv.stop()


def test_factory_without_a_database_is_a_clear_error(monkeypatch):
    from leafmap_tiles.errors import StoreError
    from leafmap_tiles.server.asgi import create_app

    monkeypatch.delenv("LEAFMAP_TILES_DATABASE", raising=False)
    with pytest.raises(StoreError, match="LEAFMAP_TILES_DATABASE"):
        create_app()


@pytest.mark.parametrize("args, env, message", [
    (["--processes", "0"], {}, "--processes must be at least 1"),
    (["--workers", "0"], {}, "--workers must be at least 1"),
    # a tryout's --processes 2000 spawned 2000 workers; 1000000 said "port in use?"
    (["--processes", "1000000"], {}, "per core of this machine"),
    # an address this machine does not have is said so, not "port in use?"
    (["--host", "10.255.255.1", "--processes", "2"], {}, "cannot bind 10.255.255.1:"),
    (["--host", "10.255.255.1"], {}, "cannot bind 10.255.255.1:"),
    # read by GDAL and glibc, which would take other text silently (docs/deploy.md's table)
    ([], {"GDAL_CACHEMAX": "abc"}, "GDAL_CACHEMAX='abc'"),
    ([], {"MALLOC_ARENA_MAX": "x"}, "MALLOC_ARENA_MAX='x'"),
])
def test_serve_bad_process_options(sqlite_store, args, env, message):
    res = subprocess.run([sys.executable, "-m", "leafmap_tiles.cli", "serve", "-d", "tiles.sqlite", "--port", "0",
                          *args], capture_output=True, text=True, timeout=60, cwd=str(sqlite_store),
                         env={**os.environ, **env})
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_serve_processes_with_a_missing_database_fails_before_starting_workers(tmp_path):
    res = subprocess.run([sys.executable, "-m", "leafmap_tiles.cli", "serve", "-d", str(tmp_path / "none.sqlite"),
                          "--port", "0", "--processes", "2"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "error:" in res.stderr and "Traceback" not in res.stderr
    assert "Serving" not in res.stdout


def test_serve_processes_with_a_raster_pattern(sqlite_store, tmp_path):
    """``-r PATTERN --processes 2``: ingested once by the supervisor into a temporary
    database that both workers serve, removed at exit."""
    import glob
    import tempfile

    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "leafmap_tiles_serve_*.sqlite")))
    port = free_port()
    p = Proc([str(BIN / "leafmap-tiles"), "serve", "-r", "rasters/{name}.tif", "--port", str(port),
              "--processes", "2"], port, log=tmp_path / "serve_r.log", cwd=sqlite_store)
    try:
        names = sorted(d["name"] for d in requests.get(p.base + "/datasets", timeout=60).json()["datasets"])
        assert names == ["greenland", "int16", "nlcd"]
        assert len(answering_pids(p.base)) == 2
        r = requests.get(p.base + TILE, timeout=60)
        assert r.status_code == 200 and r.content.startswith(b"\x89PNG")
        made = set(glob.glob(os.path.join(tempfile.gettempdir(), "leafmap_tiles_serve_*.sqlite"))) - before
        assert len(made) == 1
    finally:
        p.stop()
    assert not any(os.path.exists(f) for f in made)


def test_a_server_process_renders_without_xarray_pandas_or_pyarrow(sqlite_store):
    """rio-tiler's optional xarray reader (and with it pandas and pyarrow, ~110 MiB of
    RSS) is not imported in a server process; tiles render as before."""
    code = (
        "import sys\n"
        "from starlette.testclient import TestClient\n"
        "from leafmap_tiles.server.asgi import create_app\n"
        "c = TestClient(create_app('tiles.sqlite'))\n"
        f"r = c.get({TILE!r})\n"
        "assert r.status_code == 200 and r.content.startswith(b'\\x89PNG'), r.text\n"
        "print(sorted(m for m in ('xarray', 'pandas', 'pyarrow', 'rioxarray') if sys.modules.get(m)))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=str(sqlite_store), env={k: v for k, v in os.environ.items()
                                                     if k != "LEAFMAP_TILES_DATABASE"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_malloc_settings_apply_in_a_server_process():
    code = ("from leafmap_tiles.server import gdalenv\n"
            "print(gdalenv.limit_malloc_arenas())\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "True"  # glibc on this machine: both mallopt calls accepted
