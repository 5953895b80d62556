"""Objects on S3 that change or go missing while the servers run, against moto's real
server: a replaced raster is read again within its TTL, a broken replacement
database is refused (the old copy keeps serving), a missing raster is a 404, and
`serve --processes N` leaves no database copy behind after SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import morecantile
import numpy as np
import pytest
import rasterio
import requests

from leafmap_tiles import store
from leafmap_tiles.errors import InvalidDatabaseError
from tests.conftest import data, free_port
from tests.core.helpers import decode
from tests.s3.test_s3 import fetch, get

TMS = morecantile.tms.get("WebMercatorQuad")


def _wait(predicate, what: str, timeout: float = 60.0, step: float = 0.3):
    """Poll ``predicate`` until it returns something other than None or False (the
    condition of a test, not a speed limit: a loaded machine only makes it take longer)."""
    end = time.monotonic() + timeout
    while True:
        got = predicate()
        if got is not None and got is not False:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)


def _inverted_copy(src: str, dst) -> str:
    """``dst``: the raster ``src`` with its valid values mirrored (``lo + hi - v``),
    same grid, nodata and profile: a new version of the same dataset."""
    with rasterio.open(src) as ds:
        profile = ds.profile
        arr = ds.read(1, masked=True)
    lo, hi = int(arr.min()), int(arr.max())
    out = np.where(arr.mask, arr.fill_value, lo + hi - arr.filled(lo)).astype(arr.dtype)
    with rasterio.open(dst, "w", **profile) as ds:
        ds.write(out, 1)
    return str(dst)


def _serve(db: str, *, processes: int = 1, env=None):
    port = free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "leafmap-tiles")
    proc = subprocess.Popen([exe, "serve", "-d", db, "--port", str(port), "--processes", str(processes),
                             "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    assert "Serving" in line, proc.stderr.read()
    base = f"http://127.0.0.1:{port}"
    _wait(lambda: _ok(base + "/keys"), "the server to answer")
    return proc, base


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=10).status_code == 200
    except requests.RequestException:
        return False


def _stop(proc, sig=signal.SIGTERM) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
    return out, err


def _dem_tile(md) -> tuple[int, int, int]:
    w, s, e, n = md["bounds"]
    t = TMS.tile((w + e) / 2, (s + n) / 2, 11)
    return t.z, t.x, t.y


@pytest.fixture
def dem_db(s3_server, s3_env, bucket, tmp_path):
    """A Terracotta database on S3 listing ``rmnp-dem.tif`` on S3 (key ``x/dem``) and a
    raster that is not there (``x/gone``); returns (url, local db path, bucket)."""
    cli = s3_server.client()
    cli.upload_file(data("rmnp-dem.tif"), bucket, "r/dem.tif")
    db = tmp_path / "tc.sqlite"
    ks = store.open(str(db))
    ks.create(["sensor", "band"])
    ks.insert({"sensor": "x", "band": "dem"}, data("rmnp-dem.tif"), override_path=f"s3://{bucket}/r/dem.tif")
    ks.insert({"sensor": "x", "band": "gone"}, data("rmnp-dem.tif"), override_path=f"s3://{bucket}/r/gone.tif")
    ks.dispose()
    cli.upload_file(str(db), bucket, "db.sqlite")
    return f"s3://{bucket}/db.sqlite", db, bucket


# ------------------------------------------------------------------ (c) a replaced raster


def test_replaced_s3_raster_is_read_again_in_the_session_server(s3_server, s3_env, bucket, fresh_server, tmp_path):
    from leafmap_tiles import Map

    s3_env.setenv("LEAFMAP_TILES_REMOTE_RASTER_TTL", "1")
    new = _inverted_copy(data("rmnp-dem.tif"), tmp_path / "dem_v2.tif")
    cli = s3_server.client()
    cli.upload_file(data("rmnp-dem.tif"), bucket, "dem.tif")
    style = {"colormap": "viridis", "vmin": 2400, "vmax": 3900}
    m = Map(basemap=None)
    try:
        remote = m.add_raster(f"s3://{bucket}/dem.tif", **style)
        t = TMS.tile(-105.7, 40.35, 11)  # inside rmnp-dem.tif
        z, x, y = m_tile = (t.z, t.x, t.y)
        old_ref = decode(fetch(m.add_raster(data("rmnp-dem.tif"), **style), *m_tile))
        new_ref = decode(fetch(m.add_raster(new, **style), *m_tile))
        assert not np.array_equal(old_ref, new_ref)
        assert np.array_equal(decode(fetch(remote, z, x, y)), old_ref)
        cli.upload_file(new, bucket, "dem.tif")  # same key, new content (new ETag)
        got = _wait(lambda: (lambda a: a if not np.array_equal(a, old_ref) else None)(
            decode(fetch(remote, z, x, y))), "the new object's tile")
        assert np.array_equal(got, new_ref)
    finally:
        m.close()


def test_replaced_s3_raster_is_read_again_by_serve(s3_server, dem_db, s3_env, tmp_path):
    url, _, bucket = dem_db
    new = _inverted_copy(data("rmnp-dem.tif"), tmp_path / "dem_v2.tif")
    env = dict(os.environ, LEAFMAP_TILES_REMOTE_RASTER_TTL="1")
    proc, base = _serve(url, env=env)
    try:
        md = requests.get(f"{base}/metadata/x/dem", timeout=30).json()
        z, x, y = _dem_tile(md)
        tile = f"{base}/singleband/x/dem/{z}/{x}/{y}.png?stretch_range=[2400,3900]"
        before = get(tile)
        assert before.status_code == 200
        old = decode(before.content)
        assert (old[..., 3] > 0).sum() > 1000
        s3_server.client().upload_file(new, bucket, "r/dem.tif")
        got = _wait(lambda: (lambda a: a if not np.array_equal(a, old) else None)(decode(get(tile).content)),
                    "serve to read the new object")
        # the same tile from a server of the new file (as a local raster)
        ks = store.open(str(tmp_path / "local.sqlite"))
        ks.create(["sensor", "band"])
        ks.insert({"sensor": "x", "band": "dem"}, new)
        ks.dispose()
        ref_proc, ref_base = _serve(str(tmp_path / "local.sqlite"))
        try:
            ref = decode(get(f"{ref_base}/singleband/x/dem/{z}/{x}/{y}.png?stretch_range=[2400,3900]").content)
        finally:
            _stop(ref_proc)
        assert np.array_equal(got, ref)
    finally:
        _stop(proc)


def test_remote_versions_ask_at_most_once_per_ttl(s3_server, s3_env, bucket):
    from leafmap_tiles.render.versions import RemoteVersions

    cli = s3_server.client()
    cli.upload_file(data("rmnp-dem.tif"), bucket, "v.tif")
    now = [100.0]
    versions = RemoteVersions(ttl=5, clock=lambda: now[0])
    first = versions.signature(f"s3://{bucket}/v.tif")
    etag = cli.head_object(Bucket=bucket, Key="v.tif")["ETag"]
    assert first[0] == etag and first[1] == str(os.path.getsize(data("rmnp-dem.tif")))
    cli.upload_file(data("nlcd.tif"), bucket, "v.tif")
    now[0] += 4  # within the TTL: not asked
    assert versions.signature(f"s3://{bucket}/v.tif") == first and versions.checks == 1
    now[0] += 2
    second = versions.signature(f"s3://{bucket}/v.tif")
    assert versions.checks == 2 and second[0] == cli.head_object(Bucket=bucket, Key="v.tif")["ETag"] != etag
    assert second[1] == str(os.path.getsize(data("nlcd.tif")))
    # a missing object: no version, never an exception (the read reports it)
    assert versions.signature(f"s3://{bucket}/none.tif") is None


# ------------------------------------------------------------------ (d) a missing raster


def test_missing_s3_raster_is_a_404_json_in_serve(dem_db, s3_env):
    url, _, _ = dem_db
    proc, base = _serve(url)
    try:
        md = requests.get(f"{base}/metadata/x/dem", timeout=30).json()
        z, x, y = _dem_tile(md)
        r = get(f"{base}/singleband/x/gone/{z}/{x}/{y}.png")
        assert r.status_code == 404, r.text
        body = r.json()
        assert set(body) == {"message", "error"} and body["error"] == "ObjectNotFoundError"
        assert "x/gone" in body["message"] and "s3://" not in body["message"]
        assert get(f"{base}/singleband/x/dem/{z}/{x}/{y}.png").status_code == 200  # the others still served
    finally:
        _stop(proc)


# ------------------------------------------------------------------ (b) a broken replacement database


@pytest.mark.parametrize("broken", ["garbage", "truncated", "foreign"])
def test_broken_replacement_database_keeps_the_old_copy(s3_server, dem_db, caplog, tmp_path, broken):
    from leafmap_tiles.store.remote import RemoteSQLiteStore

    url, local_db, bucket = dem_db
    bad = tmp_path / "bad.sqlite"
    if broken == "garbage":
        bad.write_bytes(b"this is not a database\n" * 100)
    elif broken == "truncated":  # an upload cut short
        raw = local_db.read_bytes()
        bad.write_bytes(raw[: len(raw) // 2])
    else:  # a valid SQLite file that is not a Terracotta database
        import sqlite3

        con = sqlite3.connect(bad)
        con.execute("CREATE TABLE other (a INTEGER)")
        con.commit()
        con.close()
    now = [0.0]
    ks = RemoteSQLiteStore(url, cache_ttl=10, clock=lambda: now[0])
    try:
        before = ks.get_datasets()
        assert len(before) == 2 and ks.downloads == 1
        s3_server.client().upload_file(str(bad), bucket, "db.sqlite")
        now[0] += 11
        with caplog.at_level(logging.WARNING, logger="leafmap_tiles.store"):
            assert ks.get_datasets() == before  # the old copy, not an error
        warned = [r.getMessage() for r in caplog.records if r.name == "leafmap_tiles.store"]
        assert any("not a valid Terracotta database" in w and "keeping" in w for w in warned), warned
        assert ks.downloads == 1
        now[0] += 11  # the same broken object is not downloaded again
        assert ks.get_datasets() == before
        assert ks.get_metadata(["x", "dem"])["range"] == store.open(str(local_db)).get_metadata(["x", "dem"])["range"]
        # a good upload replaces the copy
        good = store.open(str(local_db))
        good.delete({"sensor": "x", "band": "gone"})
        good.dispose()
        s3_server.client().upload_file(str(local_db), bucket, "db.sqlite")
        now[0] += 11
        assert list(ks.get_datasets()) == [("x", "dem")] and ks.downloads == 2
    finally:
        ks.close()


def test_broken_first_database_is_an_error(s3_server, s3_env, bucket, tmp_path):
    (tmp_path / "bad.sqlite").write_bytes(b"not sqlite")
    s3_server.client().upload_file(str(tmp_path / "bad.sqlite"), bucket, "bad.sqlite")
    ks = store.open(f"s3://{bucket}/bad.sqlite")
    try:
        with pytest.raises(InvalidDatabaseError, match="not a valid Terracotta database"):
            ks.get_keys()
    finally:
        ks.close()


def test_serve_keeps_serving_when_the_new_database_is_broken(s3_server, dem_db, tmp_path):
    url, local_db, bucket = dem_db
    env = dict(os.environ, LEAFMAP_TILES_REMOTE_DB_CACHE_TTL="1")
    proc, base = _serve(url, env=env)
    try:
        assert len(requests.get(f"{base}/datasets", timeout=30).json()["datasets"]) == 2
        (tmp_path / "bad.sqlite").write_bytes(local_db.read_bytes()[:4096])
        s3_server.client().upload_file(str(tmp_path / "bad.sqlite"), bucket, "db.sqlite")
        for _ in range(8):  # several TTLs pass: every answer is the old copy's
            time.sleep(0.5)
            r = requests.get(f"{base}/datasets", timeout=30)
            assert r.status_code == 200, r.text
            assert len(r.json()["datasets"]) == 2
        good = store.open(str(local_db))
        good.delete({"sensor": "x", "band": "gone"})
        good.dispose()
        s3_server.client().upload_file(str(local_db), bucket, "db.sqlite")
        _wait(lambda: len(requests.get(f"{base}/datasets", timeout=30).json()["datasets"]) == 1,
              "the good new database")
    finally:
        _, err = _stop(proc)
    assert "not a valid Terracotta database" in err and "keeping" in err


# ------------------------------------------------------------------ (a) no copy left after SIGTERM


def _copies(root) -> list[str]:
    return sorted(p for p in os.listdir(root) if p.startswith("leafmap_tiles"))


@pytest.mark.parametrize("processes", [1, 2])
def test_serve_leaves_no_database_copy_after_sigterm(dem_db, tmp_path, processes):
    url, _, _ = dem_db
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    proc, base = _serve(url, processes=processes, env=env)
    try:
        pids = set()

        def both_answered():  # every worker has its own copy once it answered a query
            with requests.Session() as s:  # a new connection: the kernel picks a worker
                pids.add(s.get(f"{base}/health", timeout=30).json()["pid"])
                assert s.get(f"{base}/datasets", timeout=30).status_code == 200
            return len(pids) >= processes

        _wait(both_answered, f"{processes} workers to answer", timeout=120, step=0.05)
        assert _copies(tmp), "the copies are made in TMPDIR"
    finally:
        _, err = _stop(proc)
    assert proc.returncode is not None
    assert _copies(tmp) == [], err
