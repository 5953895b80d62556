"""``leafmap-tiles serve`` as a real server process on 127.0.0.1: 2,000 tile and
metadata requests from 32 concurrent clients, 0 errors; ``-r PATTERN`` mode."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from .conftest import rgba


class Served:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "leafmap_tiles.cli", "serve", *args, "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self.proc.stdout.readline()
        if "http://" not in line:
            self.proc.kill()
            raise AssertionError(f"serve did not start: {line!r} {self.proc.stderr.read()}")
        self.line = line
        self.url = line.split("http://", 1)[1].split()[0]
        self.base = "http://" + self.url

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def served(tc_db):
    s = Served("-d", tc_db)
    yield s
    s.close()


def _urls() -> list[tuple[str, str, object]]:
    from leafmap_tiles.render.terracotta import _tile_index

    out: list[tuple[str, str, object]] = []
    targets = {
        "dem/rmnp/b1": (-105.6, 40.35),
        "cog/greenland/b1": (-56.5, 73.4),
        "s1/vv/b1": (-122.5, 37.7),
        "landcover/nlcd/b1": (-111.3, 41.9),
    }
    for keys, (lon, lat) in targets.items():
        for z in (8, 10, 12):
            x, y = _tile_index(lon, lat, z)
            for dx in (0, 1):
                out.append(("GET", f"/singleband/{keys}/{z}/{x + dx}/{y}.png", None))
                out.append(("GET", f"/singleband/{keys}/{z}/{x + dx}/{y}.png?colormap=viridis&stretch_range=[\"p5\",\"p95\"]", None))
        out.append(("GET", f"/metadata/{keys}", None))
    for z in (9, 11, 13):
        x, y = _tile_index(-74.44, -8.43, z)
        out.append(("GET", f"/rgb/landsat/1985/{z}/{x}/{y}.png?r=b3&g=b2&b=b1", None))
        expr = urllib.parse.quote("(v1*1.0-v2)/(v1+v2)")
        out.append(("GET", f"/compute/landsat/1990/{z}/{x}/{y}.png?v1=b4&v2=b3&expression={expr}&stretch_range=[-1,1]", None))
    out += [("GET", "/keys", None), ("GET", "/datasets?group=landsat&limit=5", None),
            ("POST", "/metadata", {"keys": [["dem", "rmnp", "b1"], ["landsat", "1985", "b2"]]})]
    return out


def test_2000_requests_32_clients_no_errors(served):
    urls = _urls()
    n = 2000
    local = threading.local()
    errors: list[str] = []
    digests: dict[str, set] = {}
    lock = threading.Lock()

    def one(i: int) -> None:
        sess = getattr(local, "s", None)
        if sess is None:
            sess = local.s = requests.Session()
        method, url, body = urls[i % len(urls)]
        try:
            r = sess.request(method, served.base + url, json=body, timeout=120)
        except Exception as exc:  # noqa: BLE001 - every failure is counted
            with lock:
                errors.append(f"{url}: {type(exc).__name__}: {exc}")
            return
        ok = r.status_code == 200
        if ok and (url.endswith(".png") or ".png?" in url):
            ok = ok and r.content[:8] == b"\x89PNG\r\n\x1a\n"
        elif ok:
            json.loads(r.content)
        with lock:
            if not ok:
                errors.append(f"{url}: HTTP {r.status_code} {r.text[:200]}")
            digests.setdefault(url, set()).add(hashlib.sha1(r.content).hexdigest())

    with ThreadPoolExecutor(max_workers=32) as ex:
        list(ex.map(one, range(n)))
    assert errors == [], errors[:5]
    assert sum(1 for _ in digests) == len({u for _, u, _ in urls})
    # same URL, same bytes, whichever worker thread answered
    varying = {u: len(d) for u, d in digests.items() if len(d) != 1}
    assert varying == {}
    # the tiles have data (not only transparent images)
    with_data = 0
    for _, url, _ in urls:
        if url.endswith(".png") or ".png?" in url:
            r = requests.get(served.base + url, timeout=60)
            with_data += bool(rgba(r.content)[..., 3].any())
            if "/rgb/" in url or "/compute/" in url:
                assert rgba(r.content)[..., 3].any(), url
    assert with_data >= 20  # of 54 tiles; the x+1 neighbours are partly outside the data


def test_serve_binds_loopback_by_default(served):
    assert served.url.startswith("127.0.0.1:")
    assert requests.get(served.base + "/keys", timeout=30).json()["keys"][0]["key"] == "group"


def test_serve_raster_pattern(tc_db):
    root = Path(tc_db).parent  # the split Landsat bands: <year>_<band>.tif
    s = Served("-r", str(root / "{year}_{band}.tif"), "--rgb-key", "band")
    try:
        keys = requests.get(s.base + "/keys", timeout=30).json()
        assert keys == {"keys": [{"key": "year"}, {"key": "band"}]}
        ds = requests.get(s.base + "/datasets", timeout=30).json()["datasets"]
        assert len(ds) == 8 and {"year": "1990", "band": "b4"} in ds
        md = requests.get(s.base + "/metadata/1985/b1", timeout=120).json()  # computed on first use
        assert len(md["percentiles"]) == 99
        r = requests.get(s.base + "/rgb/1985/preview.png?r=b3&g=b2&b=b1", timeout=120)
        assert r.status_code == 200 and rgba(r.content)[..., 3].any()
    finally:
        s.close()


def test_serve_errors_are_clear(tmp_path):
    r = subprocess.run([sys.executable, "-m", "leafmap_tiles.cli", "serve", "-d", str(tmp_path / "missing.sqlite")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "error" in r.stderr
    r = subprocess.run([sys.executable, "-m", "leafmap_tiles.cli", "serve"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "-d/--database" in r.stderr
    r = subprocess.run([sys.executable, "-m", "leafmap_tiles.cli", "serve", "-r", str(tmp_path / "{a}.tif")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "error" in r.stderr
