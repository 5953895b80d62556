"""Provider helpers that need no server: dates, STAC metadata, signatures."""

from __future__ import annotations

import datetime as dt
import inspect
import math

import pystac
import pytest

from leafmap_tiles.providers import earth_search, stac, terrascope
from terrascope_catalog import CATALOG, COLLECTION


def test_datetime_range():
    r = stac.datetime_range
    assert r("2025-05-01", "2025-06-01") == \
        "2025-05-01T00:00:00.000000Z/2025-06-01T23:59:59.999999Z"
    assert r("2025-05-01", None) == "2025-05-01T00:00:00.000000Z/.."
    assert r(None, "2025-06-01") == "../2025-06-01T23:59:59.999999Z"
    assert r(None, None) is None
    assert r(dt.date(2025, 5, 1), dt.date(2025, 5, 1)) == \
        "2025-05-01T00:00:00.000000Z/2025-05-01T23:59:59.999999Z"
    assert r(dt.datetime(2025, 5, 1, 10, 30), None) == "2025-05-01T10:30:00.000000Z/.."
    cest = dt.timezone(dt.timedelta(hours=2))
    assert r(None, dt.datetime(2025, 5, 1, 10, 30, tzinfo=cest)) == "../2025-05-01T08:30:00.000000Z"
    with pytest.raises(ValueError, match="after end"):
        r("2025-05-02", "2025-05-01")
    with pytest.raises(ValueError, match="start date"):
        r("May 1st", None)
    with pytest.raises(TypeError):
        r(20250501, None)


def test_datetime_range_text_with_zone():
    assert stac.datetime_range("2025-05-01T10:30:00Z", "2025-05-01T14:00:00+02:00") == \
        "2025-05-01T10:30:00.000000Z/2025-05-01T12:00:00.000000Z"


def _item(assets: dict, when=dt.datetime(2025, 5, 1, 10, tzinfo=dt.timezone.utc), id="a"):
    item = pystac.Item(id, None, None, when, {})
    for key, extra in assets.items():
        item.add_asset(key, pystac.Asset(f"https://example.org/{id}/{key}.tif",
                                         extra_fields=extra))
    return item


def test_render_params_layouts():
    v1 = _item({"NDVI": {"raster:bands": [{"scale": 0.004, "offset": -0.08, "nodata": 255}]}})
    v2 = _item({"NDVI": {"raster:scale": 0.004, "raster:offset": -0.08, "nodata": 255}})
    v2_bands = _item({"NDVI": {"bands": [{"raster:scale": 0.004, "raster:offset": -0.08,
                                          "nodata": 255}]}})
    for item in (v1, v2, v2_bands):
        assert stac.get_render_params(item, "NDVI") == {"scale": 0.004, "offset": -0.08,
                                                        "nodata": 255}
    bare = _item({"NDVI": {}})
    assert stac.get_render_params(bare, "NDVI") == {"scale": None, "offset": None,
                                                    "nodata": None}
    nan = _item({"B": {"nodata": "nan"}})
    assert math.isnan(stac.get_render_params(nan, "B")["nodata"])


def test_unique_dates_groups_survive_twice():
    utc = dt.timezone.utc
    a = _item({"NDVI": {}}, dt.datetime(2025, 5, 1, 10, tzinfo=utc), "a")
    b = _item({"NDVI": {}}, dt.datetime(2025, 5, 1, 10, tzinfo=utc), "b")
    c = _item({"NDVI": {}}, dt.datetime(2025, 5, 1, 23, 59, tzinfo=utc), "c")
    d = _item({"NDVI": {}}, dt.datetime(2025, 5, 2, 0, 0, tzinfo=utc), "d")
    kept = stac.unique_date_items([d, c, b, a])
    assert [i.id for i in kept] == ["a", "d"]
    assert [i.id for i in stac.same_date_items(kept[0])] == ["a", "b", "c"]
    again = stac.unique_date_items(kept)
    assert [i.id for i in stac.same_date_items(again[0])] == ["a", "b", "c"]
    groups = stac.group_by_date(kept)
    assert {k: [i.id for i in v] for k, v in groups.items()} == \
        {"2025-05-01": ["a", "b", "c"], "2025-05-02": ["d"]}
    sources = stac.time_layer_sources(kept, "NDVI")
    assert sources["2025-05-01"]["urls"] == [f"https://example.org/{x}/NDVI.tif" for x in "abc"]
    assert stac.get_item_dates(kept) == ["2025-05-01", "2025-05-02"]


def test_host_matching():
    m = stac.host_matches
    assert m("https://services.terrascope.be/download/x.tif", "services.terrascope.be")
    assert m("https://services.terrascope.be/x", "services.terrascope.be:443")
    assert not m("http://services.terrascope.be/x", "services.terrascope.be:443")
    assert m("https://SERVICES.terrascope.be:443/x", "Services.Terrascope.be")
    assert not m("https://services.terrascope.be.example.com/x", "services.terrascope.be")
    assert not m("https://user@example.com/services.terrascope.be", "services.terrascope.be")
    assert m("/vsicurl/http://127.0.0.1:8080/a.tif", "127.0.0.1:8080")
    assert not m("/vsicurl/http://127.0.0.1:8081/a.tif", "127.0.0.1:8080")
    assert not m("relative/path.tif", "services.terrascope.be")


def _params(func):
    return [(p.name, p.default) for p in inspect.signature(func).parameters.values()]


def test_terrascope_signatures_match_leafmap():
    E = inspect.Parameter.empty
    assert _params(terrascope.login) == [("username", None), ("password", None),
                                         ("auto_refresh", True), ("quiet", False)]
    assert _params(terrascope.logout) == []
    assert _params(terrascope.get_stac_client) == []
    assert _params(terrascope.list_collections) == []
    assert _params(terrascope.search) == [
        ("collection", E), ("bbox", None), ("start", None), ("end", None),
        ("max_cloud_cover", None), ("limit", None), ("unique_dates", True), ("kwargs", E)]
    assert _params(terrascope.search_ndvi) == [
        ("bbox", E), ("start", E), ("end", E), ("max_cloud_cover", 10.0), ("kwargs", E)]
    assert _params(terrascope.get_asset_urls) == [("items", E), ("asset_key", "NDVI")]
    assert _params(terrascope.get_item_dates) == [("items", E)]
    assert _params(terrascope.create_time_layers) == [
        ("items", E), ("asset_key", "NDVI"), ("colormap", "RdYlGn"), ("vmin", 0), ("vmax", 250)]
    assert _params(terrascope.cleanup_tile_servers) == []


def test_earth_search_preset(monkeypatch):
    monkeypatch.delenv("LEAFMAP_TILES_EARTH_SEARCH_URL", raising=False)
    assert earth_search.stac_url() == "https://earth-search.aws.element84.com/v1"
    assert earth_search.SENTINEL2_COLLECTION == "sentinel-2-l2a"
    assert dict(_params(earth_search.search))["collection"] == "sentinel-2-l2a"
    assert dict(_params(earth_search.get_asset_urls))["asset_key"] == "visual"


def test_earth_search_against_a_local_api(stac_api, monkeypatch, clean_env):
    monkeypatch.setenv("LEAFMAP_TILES_EARTH_SEARCH_URL", stac_api.url)
    items = earth_search.search(COLLECTION, max_cloud_cover=10, unique_dates=False)
    want = [s.id for s in sorted(CATALOG, key=lambda s: (s.datetime, s.id))
            if s.cloud_cover is not None and s.cloud_cover <= 10]
    assert [i.id for i in items] == want
    assert earth_search.list_collections() == [COLLECTION]
    assert earth_search.get_asset_urls(items, "NDVI") == [i.assets["NDVI"].href for i in items]
