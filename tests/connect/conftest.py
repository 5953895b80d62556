"""One Terracotta database (written by the real ``terracotta`` package) served over
HTTP by real servers in their own processes: ``leafmap-tiles serve`` and Terracotta's
own ``terracotta serve``.  Keys ``(kind, name, band)``: a DEM, a land-cover raster
with ``categories`` metadata, and the four bands of a Landsat composite (RGB from
the last key)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
import requests

DATA = Path(__file__).resolve().parents[1] / "data"
BIN = Path(sys.executable).parent
# the eight classes of spDataLarge's nlcd.tif (values 1-8)
CATEGORIES = {"water": 1, "developed": 2, "barren": 3, "forest": 4, "shrubland": 5, "herbaceous": 6,
              "cultivated": 7, "wetlands": 8}


@pytest.fixture(scope="session")
def tc_db(tmp_path_factory) -> str:
    import rasterio
    import terracotta

    root = tmp_path_factory.mktemp("connect")
    db = str(root / "tc.sqlite")
    driver = terracotta.get_driver(db, provider="sqlite")
    driver.create(["kind", "name", "band"], key_descriptions={"kind": "kind of data", "band": "band"})
    with driver.connect():
        driver.insert(("dem", "rmnp", "elevation"), str(DATA / "rmnp-dem.tif"))
        md = driver.compute_metadata(str(DATA / "nlcd.tif"), extra_metadata={"categories": CATEGORIES})
        driver.insert(("landcover", "nlcd", "class"), str(DATA / "nlcd.tif"), metadata=md)
        with rasterio.open(DATA / "landsat_annual" / "1990.tif") as src:
            profile = src.profile.copy()
            profile.update(count=1)
            profile.pop("photometric", None)
            for i, band in enumerate(("b1", "b2", "b3", "b4"), start=1):
                out = root / f"landsat_1990_{band}.tif"
                with rasterio.open(out, "w", **profile) as dst:
                    dst.write(src.read(i), 1)
                driver.insert(("landsat", "1990", band), str(out))
    return db


def _wait(url: str, proc, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited: {log.read_text()[-2000:]}")
        try:
            if requests.get(url + "/keys", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout} s: {log.read_text()[-2000:]}")


def _start(cmd, tmp: Path, name: str):
    """Start ``cmd`` in a process group of its own (``terracotta serve`` forks worker
    processes, which must end with it: see :func:`_stop`)."""
    log = tmp / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TC_")}
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return proc, log


def _stop(proc) -> None:
    """End the server and every process of the group it was started in."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the group's other members (worker processes)
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="session")
def our_server(tc_db, tmp_path_factory):
    port = free_port()
    proc, log = _start([str(BIN / "leafmap-tiles"), "serve", "-d", tc_db, "--port", str(port)],
                       tmp_path_factory.mktemp("ours"), "ours")
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, proc, log)
        yield url
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def terracotta_server(tc_db, tmp_path_factory):
    exe = BIN / "terracotta"
    if not exe.exists():
        pytest.skip("terracotta is not installed in the test venv")
    port = free_port()
    tmp = tmp_path_factory.mktemp("tc")
    proc, log = _start([str(exe), "serve", "-d", tc_db, "--port", str(port)], tmp, "terracotta")
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, proc, log)
        yield url
    finally:
        _stop(proc)


@pytest.fixture(params=["ours", "terracotta"])
def server_url(request):
    return request.getfixturevalue("our_server" if request.param == "ours" else "terracotta_server")
