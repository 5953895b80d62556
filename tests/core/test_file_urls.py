"""A ``file://`` URL is the local file it names (docs/architecture.md, rule 2): through
a real Map and server process, the layer of ``file:///abs/path.tif`` is the layer of
``/abs/path.tif`` (before, the kernel looked for ``cwd/file:/abs/path.tif``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from leafmap_tiles.errors import SourceNotFoundError
from tests.conftest import data
from tests.core.helpers import assert_same_tile, decode, reference_tile
from tests.core.test_add_raster import centre_tile, fetch


def test_add_raster_of_a_file_url(m, tmp_path, monkeypatch):
    src = tmp_path / "my scene #1.tif"  # as_uri() escapes the space and the '#'
    shutil.copy(data("cog.tif"), src)
    other = tmp_path / "cwd"
    other.mkdir()
    monkeypatch.chdir(other)  # the URL must not be read relative to the current directory
    url = src.as_uri()
    assert url.startswith("file:///") and "%20" in url and "%23" in url
    by_url = m.add_raster(url, colormap="viridis", layer_name="url")
    by_path = m.add_raster(str(src), colormap="viridis", layer_name="path")
    assert by_url.info["path"] == by_path.info["path"] == str(src)  # the file itself
    assert by_url.info["bounds"] == by_path.info["bounds"]
    z, x, y = centre_tile(m, by_url)
    got = decode(fetch(by_url, z, x, y))
    assert (got[..., 3] > 0).any()
    ref = reference_tile(str(src), z, x, y, vmin=by_url.stretch["vmin"], vmax=by_url.stretch["vmax"],
                         colormap="viridis")
    assert_same_tile(got, ref)
    assert np.array_equal(got, decode(fetch(by_path, z, x, y)))
    assert m.add_raster(url).name == "my scene #1"  # the file's name, not its escaped URL
    lon, lat = (by_url.info["bounds"][0] + by_url.info["bounds"][2]) / 2, \
        (by_url.info["bounds"][1] + by_url.info["bounds"][3]) / 2
    a, b = by_url.point(lon, lat), by_path.point(lon, lat)
    assert a["inside"] and a["values"] == b["values"] and a["values"][0] is not None


def test_file_urls_elsewhere(m, tmp_path, monkeypatch):
    """localhost form, a missing file named by its path, a time slider, a key store."""
    from leafmap_tiles import store

    monkeypatch.chdir(tmp_path)
    cog = Path(data("cog.tif"))
    layer = m.add_raster("file://localhost" + str(cog), layer_name="localhost")
    assert layer.info["bounds"] == m.add_raster(str(cog), layer_name="plain").info["bounds"]
    before = list(m.layers)
    with pytest.raises(SourceNotFoundError, match="not found: /nonexistent/a.tif"):
        m.add_raster("file:///nonexistent/a.tif")
    assert list(m.layers) == before
    folder = tmp_path / "frames"
    folder.mkdir()
    for day in ("20200601", "20200701"):
        shutil.copy(cog, folder / f"a_{day}.tif")
    slider = m.add_time_slider(folder.as_uri(), colormap="viridis")  # a folder named by its URL
    assert len(slider.labels) == 2
    db = tmp_path / "store.sqlite"
    ks = store.open(db.as_uri())
    ks.ingest((folder / "a_{date}.tif").as_uri())
    assert sorted(ks.get_datasets()) == [("20200601",), ("20200701",)] and db.is_file()
    assert not (tmp_path / "file:").exists()
