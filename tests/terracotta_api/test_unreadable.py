"""A dataset whose file is missing or corrupt: 500 with a message that names the
dataset, never the server's file path (found by trying `serve` as a user)."""

from __future__ import annotations

import shutil
import pytest

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


def test_a_failed_read_does_not_fail_the_next_good_one(tmp_path):
    """After a truncated file's read failed on a thread, GDAL kept that failure as the
    thread's last error and rasterio raised it again from the next dataset's
    ``colorinterp`` (any non-zero return): the next good tile answered 500 naming
    itself. Each failure now clears it (leafmap_tiles._gdal.reset_error)."""
    from leafmap_tiles.render import RenderEngine
    from leafmap_tiles.render import terracotta as tcr
    from tests.conftest import data

    good = data("landsat_annual/1985.tif")
    bad = tmp_path / "truncated.tif"
    raw = open(data("landsat_annual/1990.tif"), "rb").read()
    bad.write_bytes(raw[: len(raw) // 3])
    engine = RenderEngine()
    first = tcr.read_band1(engine, good, None, (256, 256))
    with pytest.raises(Exception):
        tcr.read_band1(engine, str(bad), None, (256, 256))
    again = tcr.read_band1(engine, good, None, (256, 256))
    assert (again.data == first.data).all() and (again.mask == first.mask).all()
