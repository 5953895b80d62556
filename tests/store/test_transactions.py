"""Insert/delete are transactions; two processes ingesting into one database lose nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from leafmap_tiles import store
from leafmap_tiles.errors import InvalidSourceError, SourceNotFoundError


def snapshot(ks):
    datasets = ks.get_datasets()
    return datasets, {k: ks.get_metadata(k) for k in datasets}


@pytest.fixture
def two(store_url, data):
    ks = store.open(store_url)
    ks.create(["name"])
    ks.insert(["a"], data / "cog_rgba.tif")
    ks.insert(["b"], data / "nlcd.tif")
    return ks


def test_bad_file_leaves_database_unchanged(two, tmp_path):
    before = snapshot(two)
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"II*\x00 this is not really a tiff")
    with pytest.raises(InvalidSourceError):
        two.insert(["a"], junk)
    with pytest.raises(SourceNotFoundError):
        two.insert(["c"], tmp_path / "missing.tif")
    assert snapshot(two) == before


def test_error_inside_transaction_rolls_back(two, data, monkeypatch):
    """The old row of an overwritten dataset survives an error after it was deleted."""
    import sqlalchemy

    before = snapshot(two)
    real_execute = sqlalchemy.engine.Connection.execute

    def failing_execute(self, statement, *args, **kwargs):
        if getattr(statement, "is_insert", False) and statement.table.name == "metadata":
            raise RuntimeError("simulated failure while writing metadata")
        return real_execute(self, statement, *args, **kwargs)

    monkeypatch.setattr(sqlalchemy.engine.Connection, "execute", failing_execute)
    with pytest.raises(RuntimeError, match="simulated"):
        two.insert(["a"], data / "cog_int16.tif")
    with pytest.raises(RuntimeError, match="simulated"):
        two.insert(["new"], data / "cog_int16.tif")
    monkeypatch.undo()
    assert snapshot(two) == before


CRASH = textwrap.dedent(
    """
    import os, sys
    import sqlalchemy
    from leafmap_tiles import store
    real_execute = sqlalchemy.engine.Connection.execute
    def execute(self, statement, *args, **kwargs):
        result = real_execute(self, statement, *args, **kwargs)
        if getattr(statement, "is_insert", False) and statement.table.name == "datasets":
            os._exit(17)  # the process dies inside the transaction
        return result
    sqlalchemy.engine.Connection.execute = execute
    ks = store.open(sys.argv[1])
    ks.insert([sys.argv[2]], sys.argv[3])
    """
)


def test_crash_inside_transaction_leaves_database_unchanged(two, store_url, data):
    before = snapshot(two)
    for name in ("a", "c"):  # overwrite an existing dataset, add a new one
        proc = subprocess.run([sys.executable, "-c", CRASH, store_url, name, str(data / "cog_int16.tif")])
        assert proc.returncode == 17
    fresh = store.open(store_url)
    assert snapshot(fresh) == before
    fresh.insert(["c"], data / "cog_int16.tif")  # the database is writable again
    assert set(fresh.get_datasets()) == {("a",), ("b",), ("c",)}


INGEST = textwrap.dedent(
    """
    import os, sys, time
    from leafmap_tiles import store
    url, pattern, go = sys.argv[1:4]
    while not os.path.exists(go):
        time.sleep(0.005)
    result = store.open(url).ingest(pattern)
    print(len(result.inserted))
    """
)


def test_two_processes_ingest_into_one_database(store_url, data, tmp_path):
    src = data / "landsat_annual" / "1985.tif"
    dirs = {}
    for group in ("a", "b"):
        d = tmp_path / f"dir{group}"
        d.mkdir()
        for i in range(12):
            os.symlink(src, d / f"{group}-{i}.tif")
        for i in range(4):  # the same keys in both folders: both processes write them
            os.symlink(src, d / f"s-{i}.tif")
        dirs[group] = d
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", INGEST, store_url, str(dirs[g] / "{grp}-{n}.tif"), str(go)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for g in ("a", "b")
    ]
    time.sleep(0.5)  # let both start up and wait on the go file
    go.touch()
    outputs = [p.communicate() for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        assert out.strip() == "16"
    ks = store.open(store_url)
    datasets = ks.get_datasets()
    expected = {("a", str(i)) for i in range(12)} | {("b", str(i)) for i in range(12)} | {("s", str(i)) for i in range(4)}
    assert set(datasets) == expected
    for keys in expected:
        assert ks.get_metadata(keys)["range"] == (1.0, 255.0)
    assert datasets[("a", "3")] == str(dirs["a"] / "a-3.tif")
    assert datasets[("s", "0")] in (str(dirs["a"] / "s-0.tif"), str(dirs["b"] / "s-0.tif"))
