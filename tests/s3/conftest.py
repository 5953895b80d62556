"""A real S3-compatible server for the object-storage tests: moto's standalone
server (``scripts/setup_s3.sh`` makes its venv) on 127.0.0.1 with IAM
authentication on, so a wrong key or secret really gets S3's 403."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
S3_VENV = Path(os.environ.get("LEAFMAP_TILES_S3_VENV", REPO / ".venv-s3"))
S3_ENV_NAMES = ("AWS_S3_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_HTTPS", "AWS_VIRTUAL_HOSTING",
                "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_REGION",
                "AWS_DEFAULT_REGION", "AWS_NO_SIGN_REQUEST")


@dataclass
class S3Server:
    endpoint: str            # host:port
    access_key_id: str
    secret_access_key: str
    proc: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=self.access_key_id,
                            aws_secret_access_key=self.secret_access_key)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    py = S3_VENV / "bin" / "python"
    if not py.exists():
        pytest.skip(f"moto's S3 server venv {S3_VENV} is absent: run `bash scripts/setup_s3.sh`")
    pytest.importorskip("boto3")
    log = tmp_path_factory.mktemp("s3") / "moto.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GDAL_"))}
    with open(log, "w") as err:
        proc = subprocess.Popen([str(py), str(Path(__file__).with_name("s3server.py")), "0"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    line = proc.stdout.readline()
    if not line:
        proc.wait(10)
        raise RuntimeError(f"moto's server did not start: {log.read_text()[-2000:]}")
    info = json.loads(line)
    server = S3Server(info["endpoint"], info["access_key_id"], info["secret_access_key"], proc)
    try:
        yield server
    finally:
        proc.stdin.close()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def clean_aws_env(monkeypatch, tmp_path):
    """No AWS setting of the machine leaks into a test (and no AWS file of $HOME)."""
    for name in S3_ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    return monkeypatch


@pytest.fixture
def s3_env(s3_server, clean_aws_env):
    """The environment a GDAL user sets for a local S3 endpoint."""
    mp = clean_aws_env
    mp.setenv("AWS_S3_ENDPOINT", s3_server.endpoint)
    mp.setenv("AWS_HTTPS", "NO")
    mp.setenv("AWS_VIRTUAL_HOSTING", "FALSE")
    mp.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    mp.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    mp.setenv("AWS_REGION", "us-east-1")
    return mp


@pytest.fixture
def fresh_server():
    """The kernel's shared tile server started anew inside the test (so that it
    inherits the test's environment), closed at the end."""
    from leafmap_tiles import client

    old = client.get_server(start=False)
    if old is not None:
        old.close()
    yield
    srv = client.get_server(start=False)
    if srv is not None:
        srv.close()


_n = [0]


@pytest.fixture
def bucket(s3_server):
    """A new bucket (name) on the S3 server."""
    _n[0] += 1
    name = f"test-{os.getpid()}-{_n[0]}"
    s3_server.client().create_bucket(Bucket=name)
    return name
