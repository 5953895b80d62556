"""``leafmap-tiles serve``'s render threads (issue 18): tiles of local files on one
thread per core of the process's share of the machine (CPU-bound: more threads only
contend for the GIL, benchmarks/README.md), tiles of URLs on a pool of their own; a
dataset's path and metadata come from the cache without a thread hop while fresh."""

from __future__ import annotations

import os

import pytest
from starlette.testclient import TestClient

from leafmap_tiles import settings, store
from tests.conftest import data
from tests.terracotta_api.conftest import rgba


def test_local_threads_share_the_cores_among_the_processes():
    cores = os.cpu_count() or 2
    s = settings.Settings()
    assert settings.serve_local_workers(1, s) == cores
    assert settings.serve_local_workers(2, s) == max(1, cores // 2)
    assert settings.serve_local_workers(4 * cores, s) == 1
    assert settings.serve_local_workers(2, settings.Settings(workers=5)) == 5  # LEAFMAP_TILES_WORKERS wins
    assert settings.serve_workers(s) == max(4, 3 * cores)  # the pool of URLs' tiles, unchanged


@pytest.fixture
def mixed_db(tmp_path):
    """One local dataset and one whose path is a URL nobody answers (metadata taken from
    the local file, as ``ingest`` would have stored it)."""
    db = tmp_path / "pools.sqlite"
    ks = store.open(str(db))
    ks.create(["name"])
    ks.insert(["local"], data("rmnp-dem.tif"))
    ks.insert(["url"], data("rmnp-dem.tif"), override_path="http://127.0.0.1:9/rmnp-dem.tif")
    ks.dispose()
    return str(db)


def test_local_and_url_tiles_render_on_their_own_pools(mixed_db):
    from leafmap_tiles.server.terracotta_api import create_terracotta_app

    cores = os.cpu_count() or 2
    app = create_terracotta_app(mixed_db, processes=2)
    assert app.state.renders.workers == max(1, cores // 2)
    assert app.state.remote_renders.workers == max(4, 3 * cores)
    assert create_terracotta_app(mixed_db, workers=3).state.renders.workers == 3
    tile = "/singleband/{}/12/845/1545.png?stretch_range=[2500,3800]"
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get(tile.format("local"))
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert (rgba(r.content)[..., 3] > 0).mean() > 0.9  # a tile inside the raster
        health = c.get("/health").json()
        assert (health["renders"]["rendered"], health["remote_renders"]["rendered"]) == (1, 0)
        r = c.get(tile.format("url"))
        assert r.status_code == 502 and r.json()["error"] == "SourceUnreachableError", r.text
        assert "127.0.0.1" not in r.json()["message"]  # the dataset is named, never its URL
        health = c.get("/health").json()
        assert (health["renders"]["rendered"], health["remote_renders"]["rendered"]) == (1, 1)


def test_a_dataset_added_later_is_served_at_once_and_fresh_entries_skip_the_store(mixed_db):
    """The cache answers only what it holds (from under 10 s ago); a dataset it does not
    hold is asked of the store at once, so one ingested through another replica is
    served by the next request (tests/deploy check it across replicas)."""
    from leafmap_tiles.store.terracotta_handlers import DatasetCache

    ks = store.open(mixed_db)
    cache = DatasetCache(ks)
    assert cache.fresh(["local"]) is None
    path, md = cache.lookup(["local"])
    assert cache.fresh(["local"]) == (path, md)
    assert cache.fresh(["new"]) is None
    ks.insert(["new"], data("cog_int16.tif"))
    assert cache.fresh(["new"]) is None
    assert cache.lookup(["new"])[0] == data("cog_int16.tif")
    ks.dispose()
