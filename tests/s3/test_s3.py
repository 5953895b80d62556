"""Rasters and a Terracotta database on a real S3-compatible server (moto's, with
IAM authentication on), configured as GDAL and boto users do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import morecantile
import numpy as np
import pytest
import requests

from leafmap_tiles import s3, store
from leafmap_tiles.errors import (
    AuthenticationError,
    InvalidDatabaseError,
    ReadOnlyStoreError,
    S3AccessDeniedError,
    S3ConfigurationError,
    SourceNotFoundError,
)
from tests.conftest import data, free_port
from tests.core.helpers import decode

TMS = morecantile.tms.get("WebMercatorQuad")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def get(url: str) -> requests.Response:
    """GET, honouring a 503's Retry-After (a render past the deadline on a loaded machine)."""
    for _ in range(6):
        r = requests.get(url, timeout=60)
        if r.status_code != 503:
            break
        time.sleep(float(r.headers.get("Retry-After") or 1))
    return r


def fetch(layer, z, x, y) -> bytes:
    r = get(layer.url.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y)))
    assert r.status_code == 200, r.text
    return r.content


def centre(m):
    lat, lon = m.center
    t = TMS.tile(lon, lat, int(m.zoom))
    return t.z, t.x, t.y


# ------------------------------------------------------------------ settings (no server)


def test_settings_gdal_and_boto_spellings(clean_aws_env, tmp_path):
    env = {"AWS_S3_ENDPOINT": "127.0.0.1:9000", "AWS_HTTPS": "NO"}
    st = s3.settings(env)
    # an IP endpoint cannot host virtual buckets: path style without being told
    assert st.gdal == {"AWS_S3_ENDPOINT": "127.0.0.1:9000", "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE"}
    assert s3.settings({"AWS_S3_ENDPOINT": "minio.example.org"}).gdal == {
        "AWS_S3_ENDPOINT": "minio.example.org", "AWS_HTTPS": "YES", "AWS_VIRTUAL_HOSTING": "TRUE"}
    # boto's variables are handed to GDAL, which does not read them itself
    st = s3.settings({"AWS_ENDPOINT_URL": "http://localhost:9000"})
    assert st.gdal == {"AWS_S3_ENDPOINT": "localhost:9000", "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE"}
    assert st.describe() == "endpoint http://localhost:9000 (from AWS_ENDPOINT_URL)"
    assert s3.settings({"AWS_ENDPOINT_URL_S3": "https://s3.example.org", "AWS_ENDPOINT_URL": "http://x:1"}).gdal[
        "AWS_S3_ENDPOINT"] == "s3.example.org"
    # nothing set: AWS, and GDAL needs no option
    assert s3.settings({}).gdal == {} and s3.settings({}).endpoint is None
    with pytest.raises(S3ConfigurationError, match="YES or NO"):
        s3.settings({"AWS_S3_ENDPOINT": "h:1", "AWS_HTTPS": "maybe"})
    with pytest.raises(S3ConfigurationError, match="http"):
        s3.settings({"AWS_ENDPOINT_URL": "ftp://h:1"})


def test_settings_from_a_profile(clean_aws_env, tmp_path):
    (tmp_path / "config").write_text(
        "[profile local]\nregion = eu-west-1\ns3 =\n    endpoint_url = http://127.0.0.1:9999\n"
        "    addressing_style = path\n")
    (tmp_path / "credentials").write_text("[local]\naws_access_key_id = A\naws_secret_access_key = B\n")
    env = {"AWS_PROFILE": "local", "AWS_CONFIG_FILE": str(tmp_path / "config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials")}
    st = s3.settings(env)
    assert st.profile == "local" and st.region == "eu-west-1"
    assert st.gdal == {"AWS_S3_ENDPOINT": "127.0.0.1:9999", "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE",
                       "AWS_REGION": "eu-west-1",
                       # boto's name of the credentials file, in GDAL's spelling
                       "CPL_AWS_CREDENTIALS_FILE": str(tmp_path / "credentials")}
    with pytest.raises(S3ConfigurationError, match="no such profile"):
        s3.settings(dict(env, AWS_PROFILE="nope"))
    with pytest.raises(S3ConfigurationError, match="bucket/key"):
        s3.vsi_path("s3://bucket-only")


# ------------------------------------------------------------------ rasters


def test_add_raster_s3_tiles_equal_the_local_file(s3_server, s3_env, bucket, fresh_server):
    from leafmap_tiles import Map

    cli = s3_server.client()
    for name in ("cog.tif", "bahamas_rgb.tif"):
        cli.upload_file(data(name), bucket, f"rasters/{name}")
    m = Map(basemap=None)
    try:
        for name, kwargs in (("cog.tif", {"colormap": "viridis"}), ("bahamas_rgb.tif", {})):
            remote = m.add_raster(f"s3://{bucket}/rasters/{name}", **kwargs)
            z, x, y = centre(m)
            local = m.add_raster(data(name), **kwargs)
            assert remote.stretch == local.stretch  # percentiles read from the same overview
            got, ref = decode(fetch(remote, z, x, y)), decode(fetch(local, z, x, y))
            assert (got[..., 3] > 0).sum() > 1000, name
            assert np.array_equal(got, ref), name
            assert remote.bounds == local.bounds
    finally:
        m.close()


def test_add_raster_s3_with_an_aws_profile(s3_server, clean_aws_env, bucket, fresh_server, tmp_path):
    """Endpoint in ~/.aws/config the boto way, keys in ~/.aws/credentials, AWS_PROFILE."""
    from leafmap_tiles import Map

    s3_server.client().upload_file(data("cog.tif"), bucket, "cog.tif")
    (tmp_path / "config").write_text(
        f"[profile moto]\nregion = us-east-1\nendpoint_url = http://{s3_server.endpoint}\n")
    (tmp_path / "credentials").write_text(
        f"[moto]\naws_access_key_id = {s3_server.access_key_id}\n"
        f"aws_secret_access_key = {s3_server.secret_access_key}\n")
    clean_aws_env.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    clean_aws_env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    clean_aws_env.setenv("AWS_PROFILE", "moto")
    m = Map(basemap=None)
    try:
        layer = m.add_raster(f"s3://{bucket}/cog.tif", colormap="magma")
        got = decode(fetch(layer, *centre(m)))
        ref = decode(fetch(m.add_raster(data("cog.tif"), colormap="magma"), *centre(m)))
        assert (got[..., 3] > 0).sum() > 1000 and np.array_equal(got, ref)
    finally:
        m.close()


@pytest.mark.parametrize("which", ["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"])
def test_wrong_key_is_a_403_error_before_the_map_changes(s3_server, s3_env, bucket, fresh_server, which):
    from leafmap_tiles import Map

    s3_server.client().upload_file(data("cog.tif"), bucket, "cog.tif")
    s3_env.setenv(which, "AKIAWRONGWRONGWRONG0" if which == "AWS_ACCESS_KEY_ID" else "wrong-secret")
    m = Map(basemap=None)
    try:
        before = list(m.layers)
        with pytest.raises(S3AccessDeniedError, match="403") as info:
            m.add_raster(f"s3://{bucket}/cog.tif")
        assert isinstance(info.value, PermissionError) and isinstance(info.value, AuthenticationError)
        assert ("does not exist in our records" if which == "AWS_ACCESS_KEY_ID"
                else "signature") in str(info.value)
        assert list(m.layers) == before
    finally:
        m.close()


def test_missing_object_or_bucket_is_not_found(s3_server, s3_env, bucket, fresh_server):
    from leafmap_tiles import Map

    m = Map(basemap=None)
    try:
        with pytest.raises(SourceNotFoundError, match="404"):
            m.add_raster(f"s3://{bucket}/missing.tif")
        with pytest.raises(SourceNotFoundError, match="404"):
            m.add_raster("s3://no-such-bucket-here/cog.tif")
    finally:
        m.close()


def _record_server(root, records):
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "tests", "providers", "recording_server.py"),
                             str(root), str(records)], stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    return proc, port


def test_s3_keys_are_never_sent_to_another_host(s3_server, s3_env, bucket, fresh_server, tmp_path):
    """With S3 keys configured, an http(s) raster on another host gets no
    Authorization header (neither AWS's signature nor anything else)."""
    from leafmap_tiles import Map

    shutil.copy(data("cog.tif"), tmp_path / "cog.tif")
    records = tmp_path / "records.jsonl"
    proc, port = _record_server(tmp_path, records)
    m = Map(basemap=None)
    try:
        s3_server.client().upload_file(data("cog.tif"), bucket, "cog.tif")
        m.add_raster(f"s3://{bucket}/cog.tif")  # S3 in use in the same server
        layer = m.add_raster(f"http://127.0.0.1:{port}/cog.tif", colormap="viridis")
        assert (decode(fetch(layer, *centre(m)))[..., 3] > 0).any()
        rows = [json.loads(line) for line in records.read_text().splitlines()]
        assert any(r["method"] == "GET" for r in rows)
        assert [r["authorization"] for r in rows] == [None] * len(rows)
    finally:
        m.close()
        proc.terminate()
        proc.wait(10)


def test_provider_credentials_never_reach_the_s3_endpoint(s3_server, s3_env, bucket, fresh_server, tmp_path):
    """Basic credentials for every port of 127.0.0.1 (a provider's hosts) are not
    sent with S3 requests, which carry only the S3 key's SigV4 signature."""
    from leafmap_tiles import Map

    s3_server.client().upload_file(data("cog.tif"), bucket, "cog.tif")
    records = tmp_path / "s3_requests.jsonl"
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "tests", "s3", "recording_proxy.py"),
                             s3_server.endpoint, str(records)], stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    s3_env.setenv("AWS_S3_ENDPOINT", f"127.0.0.1:{port}")
    m = Map(basemap=None)
    try:
        m.server.set_credentials(["127.0.0.1"], "provider-user", "provider-password")
        layer = m.add_raster(f"s3://{bucket}/cog.tif", colormap="viridis")
        assert (decode(fetch(layer, *centre(m)))[..., 3] > 0).any()
        rows = [json.loads(line) for line in records.read_text().splitlines()]
        assert any(r["method"] == "GET" for r in rows)
        for r in rows:
            auth = r["authorization"] or ""
            assert auth.startswith("AWS4-HMAC-SHA256 Credential=" + s3_server.access_key_id + "/"), auth
    finally:
        m.server.clear_credentials(["127.0.0.1"])
        m.close()
        proc.terminate()
        proc.wait(10)


# ------------------------------------------------------------------ a Terracotta database on S3


@pytest.fixture
def s3_db(s3_server, s3_env, bucket, tmp_path):
    """A Terracotta database listing two rasters on S3 (metadata computed from the
    local copies, paths stored as s3:// URLs), uploaded as s3://bucket/db.sqlite."""
    cli = s3_server.client()
    db = tmp_path / "tc.sqlite"
    ks = store.open(str(db))
    ks.create(["sensor", "band"])
    for band, name in (("dem", "rmnp-dem.tif"), ("cover", "nlcd.tif")):
        cli.upload_file(data(name), bucket, f"r/{name}")
        ks.insert({"sensor": "x", "band": band}, data(name), override_path=f"s3://{bucket}/r/{name}")
    ks.dispose()
    cli.upload_file(str(db), bucket, "db.sqlite")
    return f"s3://{bucket}/db.sqlite", db, ks


def test_store_open_s3_database(s3_db, fresh_server):
    from leafmap_tiles import Map

    url, local_db, local = s3_db
    ks = store.open(url)
    try:
        assert type(ks).__name__ == "RemoteSQLiteStore"
        assert list(ks.get_keys()) == ["sensor", "band"]
        assert ks.get_datasets() == local.get_datasets()
        assert ks.get_metadata(["x", "dem"]) == local.get_metadata(["x", "dem"])
        assert ks.downloads == 1  # one copy for all those queries
        with open(ks.local_path, "rb") as a, open(local_db, "rb") as b:
            assert a.read() == b.read()
        with pytest.raises(ReadOnlyStoreError):
            ks.insert(["x", "y"], data("cog.tif"))
        with pytest.raises(ReadOnlyStoreError):
            ks.delete(["x", "dem"])
        m = Map(basemap=None)
        try:
            layer = m.add_dataset(ks, sensor="x", band="dem", colormap="terrain")
            ref = m.add_dataset(local, sensor="x", band="dem", colormap="terrain")
            assert layer.stretch == ref.stretch
            z, x, y = centre(m)
            got = decode(fetch(layer, z, x, y))
            assert (got[..., 3] > 0).sum() > 1000
            assert np.array_equal(got, decode(fetch(ref, z, x, y)))
            frames = m.dataset_layers(ks, sensor="x")
            assert sorted(frames) == ["cover", "dem"]
        finally:
            m.close()
    finally:
        ks.close()
    assert not os.path.exists(ks.local_path)


def test_s3_database_is_downloaded_again_when_it_changes(s3_server, s3_db):
    url, local_db, local = s3_db
    bucket = url.split("/")[2]
    now = [1000.0]
    from leafmap_tiles.store.remote import RemoteSQLiteStore

    ks = RemoteSQLiteStore(url, cache_ttl=60, clock=lambda: now[0])
    try:
        assert len(ks.get_datasets()) == 2 and ks.downloads == 1
        now[0] += 61  # past the TTL, object unchanged: checked, not downloaded
        assert len(ks.get_datasets()) == 2 and ks.downloads == 1

        local.insert({"sensor": "y", "band": "dem"}, data("rmnp-dem.tif"),
                     override_path=f"s3://{bucket}/r/rmnp-dem.tif")
        local.dispose()
        s3_server.client().upload_file(str(local_db), bucket, "db.sqlite")
        now[0] += 30  # within the TTL: the copy is used as it is
        assert len(ks.get_datasets()) == 2 and ks.downloads == 1
        now[0] += 31
        assert ("y", "dem") in ks.get_datasets() and ks.downloads == 2
        assert ks.refresh() is False  # unchanged since
        assert ks.refresh(force=True) is True and ks.downloads == 3
    finally:
        ks.close()


def test_s3_database_wrong_key_and_missing_object(s3_server, s3_db, s3_env):
    url, _, _ = s3_db
    bucket = url.split("/")[2]
    with pytest.raises(InvalidDatabaseError, match="no such object"):
        store.open(f"s3://{bucket}/nothing.sqlite").get_keys()
    s3_env.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    ks = store.open(url)
    with pytest.raises(S3AccessDeniedError, match="403"):
        ks.get_keys()
    ks.close()


def _serve(db_url: str, env=None):
    port = free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "leafmap-tiles")
    proc = subprocess.Popen([exe, "serve", "-d", db_url, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    return proc, port, line


def test_serve_an_s3_database_and_its_403(s3_server, s3_db, s3_env, tmp_path):
    url, local_db, _ = s3_db
    proc, port, line = _serve(url)
    try:
        assert "Serving" in line, proc.stderr.read()
        base = f"http://127.0.0.1:{port}"
        assert requests.get(f"{base}/keys", timeout=30).json() == {"keys": [{"key": "sensor"}, {"key": "band"}]}
        got = requests.get(f"{base}/datasets", timeout=30).json()["datasets"]
        assert sorted(d["band"] for d in got) == ["cover", "dem"]
        md = requests.get(f"{base}/metadata/x/dem", timeout=30).json()
        w, s, e, n = md["bounds"]
        t = TMS.tile((w + e) / 2, (s + n) / 2, 11)
        r = get(f"{base}/singleband/x/dem/{t.z}/{t.x}/{t.y}.png")
        assert r.status_code == 200 and (decode(r.content)[..., 3] > 0).any()
    finally:
        proc.terminate()
        proc.wait(20)

    # a server whose key is wrong: the database cannot even be read, a clear error at start
    env = dict(os.environ, AWS_SECRET_ACCESS_KEY="wrong")
    proc, port, line = _serve(url, env)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "S3 refused access (HTTP 403" in err

    # a local database whose rasters are on S3, served with a wrong key: JSON 403 per tile
    proc, port, line = _serve(str(local_db), env)
    try:
        assert "Serving" in line
        base = f"http://127.0.0.1:{port}"
        r = requests.get(f"{base}/singleband/x/dem/{t.z}/{t.x}/{t.y}.png", timeout=60)
        assert r.status_code == 403, r.text
        body = r.json()
        assert body["error"] == "S3AccessDeniedError" and "403" in body["message"]
        assert "s3://" not in body["message"] and "/vsis3/" not in body["message"]
    finally:
        proc.terminate()
        proc.wait(20)
