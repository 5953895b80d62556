"""Terracotta's driver API on both back ends (SQLite file, PostgreSQL server)."""

from __future__ import annotations

from collections import OrderedDict

import pytest

from leafmap_tiles import store
from leafmap_tiles.errors import DatasetNotFoundError, InvalidDatabaseError, InvalidKeyError, StoreError


@pytest.fixture
def filled(store_url, data):
    """A store with keys (sensor, date, band) and 6 datasets, all on one small real file."""
    ks = store.open(store_url)
    ks.create(["sensor", "date", "band"], key_descriptions={"date": "acquisition date"})
    path = str(data / "cog_rgb.tif")
    meta = ks.compute_metadata(path)
    for sensor, date, band in [
        ("S2", "20200601", "red"), ("S2", "20200601", "nir"), ("S2", "20200701", "red"),
        ("S2", "20200701", "nir"), ("L8", "20200601", "red"), ("L8", "20200701", "nir"),
    ]:
        ks.insert([sensor, date, band], path, override_path=f"/data/{sensor}_{date}_{band}.tif", metadata=meta)
    return ks


def test_keys(filled):
    assert filled.key_names == ("sensor", "date", "band")
    assert filled.get_keys() == OrderedDict([("sensor", ""), ("date", "acquisition date"), ("band", "")])
    assert filled.db_version == "0.10.1"


def test_get_datasets_filters(filled):
    assert len(filled.get_datasets()) == 6
    assert list(filled.get_datasets({"sensor": "L8"})) == [("L8", "20200601", "red"), ("L8", "20200701", "nir")]
    # list: OR within a key; several keys: AND
    got = filled.get_datasets({"sensor": ["S2", "L8"], "band": "nir", "date": ["20200701"]})
    assert list(got) == [("L8", "20200701", "nir"), ("S2", "20200701", "nir")]
    assert filled.get_datasets({"band": []}) == {}
    assert filled.get_datasets(["S2", "20200601"]) == {
        ("S2", "20200601", "nir"): "/data/S2_20200601_nir.tif",
        ("S2", "20200601", "red"): "/data/S2_20200601_red.tif",
    }
    with pytest.raises(InvalidKeyError):
        filled.get_datasets({"color": "red"})


def test_get_datasets_order_and_pages(filled):
    everything = list(filled.get_datasets())
    assert everything == sorted(everything)
    assert list(filled.get_datasets(ascending=False)) == sorted(everything, reverse=True)
    by_date = list(filled.get_datasets(order_by=["date", "band", "sensor"], limit=3))
    assert by_date == [("S2", "20200601", "nir"), ("L8", "20200601", "red"), ("S2", "20200601", "red")]
    pages = [list(filled.get_datasets(limit=4, page=p)) for p in range(3)]
    assert pages[0] + pages[1] == everything and pages[2] == []
    with pytest.raises(InvalidKeyError):
        filled.get_datasets(order_by=["nope"])
    with pytest.raises(StoreError):
        filled.get_datasets(limit=-1)


def test_metadata_and_delete(filled, data):
    m = filled.get_metadata(["S2", "20200601", "red"])
    assert m == filled.get_metadata({"band": "red", "sensor": "S2", "date": "20200601"})
    assert len(m["percentiles"]) == 99 and m["metadata"] == {}
    with pytest.raises(InvalidKeyError):
        filled.get_metadata(["S2", "20200601"])
    with pytest.raises(DatasetNotFoundError):
        filled.get_metadata(["S2", "19990101", "red"])
    filled.delete(["S2", "20200601", "red"])
    assert ("S2", "20200601", "red") not in filled.get_datasets()
    with pytest.raises(DatasetNotFoundError):
        filled.get_metadata(["S2", "20200601", "red"])
    with pytest.raises(DatasetNotFoundError):
        filled.delete(["S2", "20200601", "red"])
    assert len(filled.get_datasets()) == 5


def test_insert_overwrites_and_lazy_metadata(store_url, data):
    ks = store.open(store_url)
    ks.create(["name"])
    ks.insert(["a"], data / "cog_rgba.tif", metadata=ks.compute_metadata(data / "cog_rgba.tif", extra_metadata={"x": 1}))
    assert ks.get_metadata(["a"])["metadata"] == {"x": 1}
    # re-insert with another file and no metadata: old metadata must not survive
    ks.insert(["a"], data / "cog_int16.tif", skip_metadata=True)
    assert ks.get_datasets() == {("a",): str(data / "cog_int16.tif")}
    lazy = ks.get_metadata(["a"])  # computed now on a 1024x1024 sample
    assert lazy["metadata"] == {}
    # the int16 file's values on a 1024x1024 sample, not the rgba file's (0..255)
    assert lazy["range"] == (69.0, 201.0)
    assert ks.get_metadata(["a"]) == lazy  # stored


def test_key_validation(store_url):
    ks = store.open(store_url)
    for bad in (["a-b"], ["limit"], ["page", "x"], [], ["a", "a"], ["ok"] * 0 + ["has space"]):
        with pytest.raises(InvalidKeyError):
            ks.create(bad)
    with pytest.raises(InvalidKeyError):
        ks.create(["a"], key_descriptions={"b": "unknown key"})
    ks.create(["a", "b"])
    with pytest.raises(InvalidDatabaseError):
        ks.create(["a", "b"])
    ks.create(["a", "b"], exist_ok=True)
    with pytest.raises(InvalidDatabaseError, match="has keys"):
        ks.create(["b", "a"], exist_ok=True)
    with pytest.raises(InvalidKeyError):
        ks.insert(["x"], "/nowhere.tif", skip_metadata=True)
    with pytest.raises(InvalidKeyError):
        ks.insert({"a": "x", "c": "y"}, "/nowhere.tif", skip_metadata=True)
    with pytest.raises(InvalidKeyError):
        ks.insert(["x", ""], "/nowhere.tif", skip_metadata=True)


def test_missing_database(store_url):
    ks = store.open(store_url)
    with pytest.raises(InvalidDatabaseError):
        ks.get_datasets()


def test_connect_block(filled):
    with filled.connect():
        with filled.connect():
            assert len(filled.get_datasets()) == 6
        filled.delete(["L8", "20200601", "red"])
    assert len(filled.get_datasets()) == 5


def test_open_rejects_unknown_scheme():
    with pytest.raises(StoreError):
        store.open("ftp://host/tc.sqlite")
    with pytest.raises(StoreError):
        store.open("")
