"""Replicas on one PostgreSQL key store behind nginx (docs/deploy.md, issue 18).

Two ``leafmap-tiles serve --processes 2`` replicas (the documented command) on a
PostgreSQL store written by ``leafmap-tiles ingest``, and nginx in front with the
documented configuration (round robin, ``proxy_next_upstream``).  Real processes on
127.0.0.1; the load is 32 concurrent keep-alive clients (``requests`` sessions).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from .conftest import DATA, DATASETS, Nginx, free_port, ingest, serve

pytestmark = pytest.mark.postgres

CLIENTS = 32
PNG = b"\x89PNG\r\n\x1a\n"


def tile_urls(per_dataset: int = 40) -> list[str]:
    """Tile paths with data of each dataset of :data:`DATASETS` (the pixel at the
    tile's centre is valid), from one zoom below the native zoom, two styles each."""
    import morecantile
    import rasterio
    from rasterio.warp import transform, transform_bounds

    tms = morecantile.tms.get("WebMercatorQuad")
    out = []
    for key, file in DATASETS.items():
        chosen = []
        with rasterio.open(DATA / file) as ds:
            w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
            mask = ds.read_masks(1)
            native = tms.zoom_for_res(ds.res[0])  # the files are in UTM (metres)
            for z in range(native - 1, native + 4):
                for t in tms.tiles(w, s, e, n, [z]):
                    b = tms.bounds(t)
                    xs, ys = transform("EPSG:4326", ds.crs, [(b.left + b.right) / 2], [(b.bottom + b.top) / 2])
                    row, col = ds.index(xs[0], ys[0])
                    if 0 <= row < ds.height and 0 <= col < ds.width and mask[row, col]:
                        chosen.append(t)
                if len(chosen) >= per_dataset // 2:
                    break
        for t in chosen[: per_dataset // 2]:
            base = f"/singleband/{key}/{t.z}/{t.x}/{t.y}.png"
            out += [base, base + '?colormap=viridis&stretch_range=["p5","p95"]']
    return out


@pytest.fixture(scope="module")
def cluster(pg_store, tmp_path_factory):
    """Two replicas of 2 processes each, and nginx in front of them."""
    tmp = tmp_path_factory.mktemp("cluster")
    started = []
    try:
        for name in ("a", "b"):
            started.append(serve(pg_store, free_port(), processes=2, log=tmp / f"serve_{name}.log"))
        ngx = Nginx(tmp, [r.port for r in started])
        started.append(ngx)
        yield {"url": pg_store, "a": started[0], "b": started[1], "nginx": ngx, "tmp": tmp}
    finally:
        for p in reversed(started):
            p.stop()


def get(session: requests.Session, url: str) -> requests.Response:
    return session.get(url, timeout=120)


def run_load(base: str, urls: list[str], n: int, clients: int = CLIENTS, on_progress=None) -> dict:
    """GET ``n`` URLs (cycling through ``urls``) from ``clients`` keep-alive sessions;
    every failure (exception, non-200, not a PNG) is recorded."""
    local = threading.local()
    lock = threading.Lock()
    errors: list[str] = []
    digests: dict[str, set] = {}
    done = [0]

    def one(i: int) -> None:
        sess = getattr(local, "s", None)
        if sess is None:
            sess = local.s = requests.Session()
        url = urls[i % len(urls)]
        try:
            r = get(sess, base + url)
            ok = r.status_code == 200 and r.content.startswith(PNG)
            why = f"HTTP {r.status_code} {r.text[:200]!r}"
        except requests.RequestException as exc:
            ok, why = False, f"{type(exc).__name__}: {exc}"
        with lock:
            done[0] += 1
            if not ok:
                errors.append(f"{url}: {why}")
            else:
                digests.setdefault(url, set()).add(hashlib.sha1(r.content).hexdigest())
        if on_progress is not None:
            on_progress(done[0])

    with ThreadPoolExecutor(max_workers=clients) as ex:
        list(ex.map(one, range(n)))
    return {"errors": errors, "digests": digests, "done": done[0]}


def upstream_counts(ngx: Nginx, skip: int = 0) -> Counter:
    """Requests nginx passed to each upstream address (last attempt of each request)."""
    out: Counter = Counter()
    for status, addrs, _, uri in ngx.access()[skip:]:
        if uri.startswith("/singleband/"):
            out[addrs.split(",")[-1].strip()] += 1
    return out


# ------------------------------------------------------------------- tests


def test_a_dataset_ingested_while_serving_is_served_by_the_other_replica_at_once(cluster, tmp_path):
    a, b = cluster["a"], cluster["b"]
    new = "nodatanan"
    assert requests.get(f"{a.base}/metadata/{new}", timeout=30).status_code == 404
    assert requests.get(f"{b.base}/metadata/{new}", timeout=30).status_code == 404
    folder = tmp_path / "new"
    folder.mkdir()
    os.symlink(DATA / "cog_nodata_nan.tif", folder / f"{new}.tif")
    # metadata left to the first request: replica a computes it and writes it to the store
    ingest(str(folder / "{name}.tif"), cluster["url"], "--skip-metadata")
    from leafmap_tiles import store

    ks = store.open(cluster["url"])
    try:
        assert ks._db_metadata_row({"name": new}) is None
        ra = requests.get(f"{a.base}/metadata/{new}", timeout=60)
        assert ra.status_code == 200, ra.text
        assert ks._db_metadata_row({"name": new}) is not None  # stored by replica a
    finally:
        ks.dispose()
    rb = requests.get(f"{b.base}/metadata/{new}", timeout=60)
    assert rb.status_code == 200, rb.text
    assert rb.json() == ra.json()
    md = ra.json()
    assert md["keys"] == {"name": new}
    assert 0 < md["valid_percentage"] < 100  # the file's NaN pixels are nodata
    # the same tile, from each replica and through nginx, byte for byte
    import morecantile

    w, s, e, n = md["bounds"]
    t = morecantile.tms.get("WebMercatorQuad").tile((w + e) / 2, (s + n) / 2, 9)
    path = f"/singleband/{new}/{t.z}/{t.x}/{t.y}.png?colormap=viridis"
    bodies = [requests.get(base + path, timeout=60) for base in (a.base, b.base, cluster["nginx"].base)]
    assert [r.status_code for r in bodies] == [200, 200, 200]
    assert bodies[0].content.startswith(PNG)
    assert bodies[0].content == bodies[1].content == bodies[2].content
    # /datasets lists it on both replicas
    for base in (a.base, b.base):
        names = [d["name"] for d in requests.get(base + "/datasets", timeout=30).json()["datasets"]]
        assert new in names


def test_5000_tiles_at_32_clients_through_nginx_no_errors(cluster):
    ngx = cluster["nginx"]
    urls = tile_urls()
    assert len(urls) >= 100
    skip = len(ngx.access())
    res = run_load(ngx.base, urls, 5000)
    assert res["errors"] == [], res["errors"][:5]
    assert res["done"] == 5000
    # same URL, same bytes, whichever replica and worker answered
    assert {u: len(d) for u, d in res["digests"].items() if len(d) != 1} == {}
    assert len(res["digests"]) == len(urls)
    counts = upstream_counts(ngx, skip)
    a, b = f"127.0.0.1:{cluster['a'].port}", f"127.0.0.1:{cluster['b'].port}"
    assert set(counts) == {a, b}
    # round robin: each replica got a fair share
    assert min(counts[a], counts[b]) > 0.3 * sum(counts.values()), counts
    # the tiles have data: not all fully transparent
    from PIL import Image
    import io
    import numpy as np

    opaque = 0
    for u in urls[::7]:
        im = np.asarray(Image.open(io.BytesIO(requests.get(ngx.base + u, timeout=60).content)).convert("RGBA"))
        opaque += bool(im[..., 3].any())
    assert opaque == len(urls[::7])


def test_killing_a_replica_under_load_loses_no_request(cluster):
    """Replica a's whole process group is SIGKILLed after 600 of 3,000 requests; nginx
    retries what it had in flight on replica b, and sends everything after to b."""
    ngx, a, b = cluster["nginx"], cluster["a"], cluster["b"]
    urls = tile_urls()
    skip = len(ngx.access())
    killed = threading.Event()
    lock = threading.Lock()

    def on_progress(done: int) -> None:
        if done >= 600 and not killed.is_set():
            with lock:
                if not killed.is_set():
                    killed.set()
                    a.kill()

    res = run_load(ngx.base, urls, 3000, on_progress=on_progress)
    assert killed.is_set()
    assert a.proc.poll() is not None and a.pids() == []
    assert res["errors"] == [], res["errors"][:5]
    assert res["done"] == 3000
    assert {u: len(d) for u, d in res["digests"].items() if len(d) != 1} == {}
    lines = ngx.access()[skip:]
    addr_a = f"127.0.0.1:{a.port}"
    # some requests were tried on a and then retried on b (a's failure, then b's 200)
    retried = [line for line in lines if "," in line[1] and line[1].split(",")[0].strip() == addr_a]
    assert retried, "no request was in flight on the killed replica"
    assert all(line[0] == "200" for line in lines)
    # after the kill b answers everything (the last 1,000 requests never end at a)
    tail = Counter(line[1].split(",")[-1].strip() for line in lines[-1000:])
    assert set(tail) == {f"127.0.0.1:{b.port}"}, tail
