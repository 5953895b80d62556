"""Databases written by us open in the real terracotta package, and the other way round."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import warnings

import numpy as np
import pytest

from leafmap_tiles import store

tc = pytest.importorskip("terracotta")

FILES = ["cog.tif", "cog_int16.tif", "cog_nodata_nan.tif", "cog_rgba.tif", "nlcd.tif", "rmnp-dem.tif"]


def _as_json(value):
    return json.loads(json.dumps(value))


def _terracotta_driver(url):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tc.get_driver(url)


def _fill(ks, data):
    ks.create(["name"], key_descriptions={"name": "file name"})
    for f in FILES:
        extra = {"categories": {"11": "open water"}} if f == "nlcd.tif" else None
        ks.insert([f.split(".")[0].replace("-", "")], data / f,
                  metadata=ks.compute_metadata(data / f, extra_metadata=extra))


def test_our_database_opens_in_terracotta(store_url, data):
    ks = store.open(store_url)
    _fill(ks, data)
    driver = _terracotta_driver(store_url)
    assert driver.key_names == ("name",)
    assert dict(driver.get_keys()) == {"name": "file name"}
    assert driver.get_datasets() == ks.get_datasets()
    assert len(driver.get_datasets()) == len(FILES)
    for keys in ks.get_datasets():
        theirs = driver.get_metadata(keys)
        ours = ks.get_metadata(keys)
        assert {k: (list(v) if isinstance(v, tuple) else v) for k, v in theirs.items()} == {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in ours.items()
        }
    assert driver.get_metadata(["nlcd"])["metadata"] == {"categories": {"11": "open water"}}
    assert driver.get_datasets({"name": ["cog", "nlcd"]}) == ks.get_datasets({"name": ["cog", "nlcd"]})


def test_terracotta_database_opens_in_ours(store_url, data):
    driver = _terracotta_driver(store_url)
    driver.create(["name"], key_descriptions={"name": "file name"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in FILES:
            driver.insert([f.split(".")[0].replace("-", "")], str(data / f))
    ks = store.open(store_url)
    assert ks.key_names == ("name",)
    assert ks.db_version == tc.__version__
    assert ks.get_datasets() == driver.get_datasets()
    for keys, path in ks.get_datasets().items():
        stored = ks.get_metadata(keys)
        computed = ks.compute_metadata(path)
        np.testing.assert_allclose(stored["percentiles"], np.float32(computed["percentiles"]), rtol=1e-6)
        for k in ("valid_percentage", "mean", "stdev"):
            assert stored[k] == pytest.approx(computed[k], rel=1e-6)
        assert stored["range"] == pytest.approx(computed["range"])
        assert stored["bounds"] == pytest.approx(computed["bounds"], rel=1e-12)
        assert stored["convex_hull"] == _as_json(computed["convex_hull"])
    ks.delete(["cog"])
    assert ("cog",) not in driver.get_datasets()


def test_terracotta_ingest_cli_opens_in_ours(tmp_path, year_dir):
    exe = shutil.which("terracotta", path=os.path.dirname(sys.executable))
    assert exe, "terracotta console script not installed next to this Python"
    db = tmp_path / "tc.sqlite"
    subprocess.run([exe, "ingest", str(year_dir / "{year}.tif"), "-o", str(db)], check=True, capture_output=True)
    ks = store.open(db)
    assert ks.get_datasets() == {
        ("1985",): str(year_dir / "1985.tif"),
        ("1990",): str(year_dir / "1990.tif"),
    }
    m = ks.get_metadata(["1985"])
    assert m["mean"] == pytest.approx(86.1701099988581, rel=1e-12)
    assert m["range"] == (1.0, 255.0)
    computed = ks.compute_metadata(year_dir / "1985.tif")
    assert m["convex_hull"] == _as_json(computed["convex_hull"])


def test_sqlite_layout_is_terracottas(tmp_path, data):
    """Same CREATE statements, version row, key rows and byte encodings as Terracotta."""
    ours_path, theirs_path = tmp_path / "ours.sqlite", tmp_path / "theirs.sqlite"
    ks = store.open(ours_path)
    ks.create(["sensor", "date"], key_descriptions={"date": "day"})
    path = data / "landsat_annual" / "1985.tif"
    ks.insert(["TM", "1985"], path)
    driver = _terracotta_driver(str(theirs_path))
    driver.create(["sensor", "date"], key_descriptions={"date": "day"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        driver.insert(["TM", "1985"], str(path))

    def dump(p):
        con = sqlite3.connect(p)
        try:
            return {
                "schema": con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall(),
                "version": con.execute("SELECT * FROM terracotta").fetchall(),
                "keys": con.execute("SELECT * FROM key_names ORDER BY idx").fetchall(),
                "datasets": con.execute("SELECT * FROM datasets").fetchall(),
                "meta": con.execute("SELECT * FROM metadata").fetchall(),
                "cols": con.execute("PRAGMA table_info(metadata)").fetchall(),
            }
        finally:
            con.close()

    ours, theirs = dump(ours_path), dump(theirs_path)
    for part in ("schema", "version", "keys", "datasets", "cols"):
        assert ours[part] == theirs[part], part
    assert ours["version"] == [("0.10.1",)]
    assert ours["keys"] == [("sensor", "", 0), ("date", "day", 1)]
    (row,), (their_row,) = ours["meta"], theirs["meta"]
    cols = [c[1] for c in ours["cols"]]
    mine, other = dict(zip(cols, row)), dict(zip(cols, their_row))
    # bounds (w, s, e, n) are written positionally into north, east, south, west
    assert mine["bounds_north"] == pytest.approx(-74.7224941537607)  # the west longitude
    assert mine["bounds_west"] == pytest.approx(-8.28210759346834)  # the north latitude
    assert isinstance(mine["percentiles"], bytes) and len(mine["percentiles"]) == 99 * 4
    assert mine["percentiles"] == other["percentiles"]  # little-endian float32, byte for byte
    assert mine["metadata"] == other["metadata"] == "{}"
    assert mine["convex_hull"] == other["convex_hull"]
    for c in ("bounds_north", "bounds_east", "bounds_south", "bounds_west", "min", "max", "mean", "stdev",
              "valid_percentage"):
        assert mine[c] == pytest.approx(other[c], rel=1e-12), c
