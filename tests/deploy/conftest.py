"""Fixtures for the deployment tests (docs/deploy.md): real ``leafmap-tiles serve``
replicas, uvicorn and gunicorn workers on one PostgreSQL key store, Debian's nginx in
front.

PostgreSQL comes from ``scripts/setup_postgres.sh`` ($LEAFMAP_TILES_TEST_PG), nginx from
``scripts/setup_nginx.sh`` ($LEAFMAP_TILES_NGINX); without them the tests are skipped
with the reason shown by ``pytest -rs``.  The commands and the nginx configuration are
read from ``docs/deploy.md`` itself (its fenced blocks), with only the addresses
replaced by the test's own ports on 127.0.0.1 and the temporary folders added.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import find_pg_url, free_port

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
DOCS = REPO / "docs" / "deploy.md"
BIN = Path(sys.executable).parent
NGINX = (os.environ.get("LEAFMAP_TILES_NGINX") or shutil.which("nginx")
         or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None))
#: the datasets of the shared store: key ``name`` -> file of tests/data
DATASETS = {"greenland": "cog.tif", "nlcd": "nlcd.tif", "int16": "cog_int16.tif"}


# ---------------------------------------------------------------- docs/deploy.md


def docs_blocks(lang: str) -> list[str]:
    """The fenced blocks of docs/deploy.md in language ``lang``, in order."""
    text = DOCS.read_text(encoding="utf-8")
    return [m.group(1) for m in re.finditer(r"```" + re.escape(lang) + r"\n(.*?)```", text, re.S)]


def docs_command(prefix: str) -> list[str]:
    """The one shell line of docs/deploy.md's ``bash`` blocks that starts with
    ``prefix`` (environment assignments first are allowed), split into words."""
    found = []
    for block in docs_blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            cmd = [w for w in words if not re.match(r"^[A-Z_]+=", w)]
            if cmd and " ".join(cmd).startswith(prefix):
                found.append(words)
    assert len(found) == 1, f"docs/deploy.md has {len(found)} commands starting with {prefix!r}"
    return found[0]


# ---------------------------------------------------------------- PostgreSQL


_PG_URL, _PG_SKIP = find_pg_url()


@pytest.fixture(scope="module")
def pg_store(tmp_path_factory):
    """URL of a new PostgreSQL key store (keys: ``name``) holding :data:`DATASETS`,
    written by ``leafmap-tiles ingest``; dropped afterwards."""
    if _PG_URL is None:
        pytest.skip(_PG_SKIP)
    import sqlalchemy as sqla

    name = f"lt_deploy_{uuid.uuid4().hex[:10]}"
    url = _PG_URL.rsplit("/", 1)[0] + "/" + name
    cwd = rasters_folder(tmp_path_factory.mktemp("pg"))
    argv = with_options(docs_command("leafmap-tiles ingest rasters/{name}.tif -o postgresql"), {"-o": url})
    run_documented(argv, cwd)
    yield url
    engine = sqla.create_engine(_PG_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://")
                                + "/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqla.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    engine.dispose()


def rasters_folder(cwd: Path) -> Path:
    """``cwd`` with ``rasters/<key>.tif`` for each of :data:`DATASETS` (the layout
    the documented ingest commands read)."""
    (cwd / "rasters").mkdir()
    for key, file in DATASETS.items():
        os.symlink(DATA / file, cwd / "rasters" / f"{key}.tif")
    return cwd


def run_documented(argv: list[str], cwd: Path) -> None:
    """Run a documented command (``leafmap-tiles ...``) to completion in ``cwd``."""
    argv = [str(BIN / argv[0])] + argv[1:]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=str(cwd))
    assert res.returncode == 0, f"{argv}: {res.stderr}"


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory) -> Path:
    """``tiles.sqlite`` made by the documented one-machine ingest command; the folder."""
    cwd = rasters_folder(tmp_path_factory.mktemp("one_machine"))
    run_documented(docs_command("leafmap-tiles ingest rasters/{name}.tif -o tiles.sqlite"), cwd)
    return cwd


def ingest(pattern: str, url: str, *extra: str) -> None:
    """``leafmap-tiles ingest PATTERN -o URL`` in its own process (as a user would)."""
    res = subprocess.run([str(BIN / "leafmap-tiles"), "ingest", pattern, "-o", url, "-q", *extra],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr


# ---------------------------------------------------------------- servers


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout} s: {last}")


class Proc:
    """A server started as its own process group (so that it can be killed whole,
    workers included); ``base`` is its ``http://127.0.0.1:PORT``."""

    def __init__(self, argv: list[str], port: int, env: dict | None = None, log: Path | None = None,
                 ready_path: str = "/keys", cwd: Path | None = None) -> None:
        self.argv, self.port = argv, port
        self.log = log
        out = open(log, "w") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True, cwd=str(cwd or REPO))
        self.base = f"http://127.0.0.1:{port}"
        try:
            wait_http(self.base + ready_path, self.proc)
        except RuntimeError as exc:
            self.stop()
            text = log.read_text() if log and log.exists() else ""
            raise RuntimeError(f"{exc}\n{text}") from None

    def pids(self) -> list[int]:
        """Pids of the process group (the supervisor and its workers)."""
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            return [root.pid] + [c.pid for c in root.children(recursive=True)]
        except psutil.Error:
            return []

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash of the machine would."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        try:  # what is left of the group (none expected)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait(10)


def serve(url: str, port: int, *, processes: int, log: Path | None = None) -> Proc:
    """The replica command of docs/deploy.md, on ``127.0.0.1:port`` and the test's store."""
    argv = with_options(docs_command("leafmap-tiles serve -d postgresql"),
                        {"-d": url, "--host": "127.0.0.1", "--port": str(port), "--processes": str(processes)})
    argv[0] = str(BIN / argv[0])
    # a longer render deadline than the default 5 s: the test machine is shared (load
    # averages of 15-20 on 2 cores were seen) and a 503 past the deadline is not what these
    # tests are about (tests/core/test_render_scheduling.py tests the deadline)
    env = dict(os.environ, LEAFMAP_TILES_TILE_DEADLINE="60")
    return Proc(argv, port, env=env, log=log)


def with_options(words: list[str], values: dict[str, str]) -> list[str]:
    """``words`` with the value after each option of ``values`` replaced (every option
    must be there: the test runs the documented command, not another one)."""
    out = list(words)
    for opt, value in values.items():
        assert opt in out, f"{opt} missing from the documented command {' '.join(words)}"
        out[out.index(opt) + 1] = value
    return out


NGINX_MAIN = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format up '$status|$upstream_addr|$upstream_status|$request_uri';
    access_log {tmp}/access.log up;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{site}
}}
"""


class Nginx(Proc):
    def __init__(self, tmp: Path, upstreams: list[int]) -> None:
        if NGINX is None:
            pytest.skip("nginx is not installed: run `bash scripts/setup_nginx.sh`")
        (site,) = docs_blocks("nginx")
        addresses = re.findall(r"server (10\.0\.0\.\d+:8000)", site)
        assert len(addresses) == len(upstreams) == 2, addresses
        for addr, port in zip(addresses, upstreams):
            site = site.replace(addr, f"127.0.0.1:{port}")
        port = free_port()
        site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
        self.tmp = tmp
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_MAIN.format(tmp=tmp, site=site))
        super().__init__([NGINX, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")], port,
                         log=tmp / "stderr.log")

    def access(self) -> list[list[str]]:
        """Access log lines: ``[status, upstream_addr(s), upstream_status(es), uri]``."""
        lines = (self.tmp / "access.log").read_text().splitlines()
        return [line.split("|", 3) for line in lines if line.strip()]

    def stop(self) -> None:  # one process (master_process off): SIGTERM is a fast shutdown
        super().stop()
