"""A dataset whose file is missing or corrupt: 500 with a message that names the
dataset, never the server's file path (found by trying `serve` as a user)."""

from __future__ import annotations

import shutil

from starlette.testclient import TestClient

from leafmap_tiles import store
from leafmap_tiles.server.terracotta_api import create_terracotta_app
from tests.conftest import data


def test_missing_and_corrupt_files_answer_500_without_path(tmp_path):
    good = tmp_path / "a_1.tif"
    shutil.copy(data("cog.tif"), good)
    junk = tmp_path / "a_2.tif"
    junk.write_bytes(b"not a tiff at all")
    gone = tmp_path / "a_3.tif"
    shutil.copy(data("cog.tif"), gone)
    ks = store.open(str(tmp_path / "db.sqlite"))
    ks.create(["name", "n"])
    ks.insert(["a", "1"], str(good))
    ks.insert(["a", "2"], str(junk), skip_metadata=True)
    ks.insert(["a", "3"], str(gone), skip_metadata=True)
    gone.unlink()
    with TestClient(create_terracotta_app(ks), raise_server_exceptions=False) as c:
        assert c.get("/metadata/a/1").status_code == 200
        for n in ("2", "3"):
            for url in (f"/metadata/a/{n}", f"/singleband/a/{n}/8/87/49.png", f"/singleband/a/{n}/preview.png"):
                r = c.get(url)
                assert r.status_code == 500, (url, r.status_code)
                msg = r.json()["message"]
                assert f"a/{n}" in msg and str(tmp_path) not in msg
