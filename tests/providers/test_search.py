"""Search against a real STAC API (stac-fastapi-static) on 127.0.0.1.

Expectations come from ``CATALOG`` in conftest.py (what the server holds)."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import urllib.request

import pytest

from terrascope_catalog import CATALOG, COLLECTION, SERVER_PAGE_SIZE

ORDERED = sorted(CATALOG, key=lambda s: (s.datetime, s.id))
ALL_DATES = sorted({s.date for s in CATALOG})
WEST = next(s for s in CATALOG if s.part == "west")
EAST = next(s for s in CATALOG if s.part == "east")
SHARED_DATE = WEST.date


def ids(items) -> list[str]:
    return [i.id for i in items]


def expected(pred=lambda s: True) -> list[str]:
    return [s.id for s in ORDERED if pred(s)]


def full_bbox(ndvi_assets) -> list[float]:
    full = next(s for s in CATALOG if s.part == "full")
    return ndvi_assets.info[full.id]["bbox"]


def test_catalog_is_what_the_tests_assume():
    assert len(ALL_DATES) >= 10
    assert WEST.date == EAST.date
    assert sum(s.cloud_cover is None for s in CATALOG) == 1
    assert len(CATALOG) > SERVER_PAGE_SIZE


def test_server_pages_its_results(stac_api):
    """The raw API gives SERVER_PAGE_SIZE items and a next link: a full search pages."""
    body = json.dumps({"collections": [COLLECTION]}).encode()
    req = urllib.request.Request(stac_api.url + "/search", data=body,
                                 headers={"Content-Type": "application/json"})
    page = json.loads(urllib.request.urlopen(req, timeout=30).read())
    assert len(page["features"]) == SERVER_PAGE_SIZE
    assert any(link["rel"] == "next" for link in page["links"])


def test_all_items_over_several_pages_sorted(terrascope_local):
    items = terrascope_local.search(COLLECTION, unique_dates=False)
    assert ids(items) == expected()
    assert len(items) == len(CATALOG) == 11
    stamps = [i.datetime for i in items]
    assert stamps == sorted(stamps)


def test_small_pages_read_to_the_end(stac_api_without_filter, clean_env):
    from leafmap_tiles.providers import stac

    stac_api_without_filter.seen.clear()
    items = stac.search(stac_api_without_filter.url, COLLECTION, unique_dates=False,
                        page_size=3)
    assert ids(items) == expected()
    searches = [s for s in stac_api_without_filter.seen if s[1].startswith("/search")]
    assert len(searches) == math.ceil(len(CATALOG) / 3) == 4


def test_unique_dates_keeps_one_item_per_date(terrascope_local):
    items = terrascope_local.search(COLLECTION)
    assert terrascope_local.get_item_dates(items) == ALL_DATES
    assert len(items) == 10
    shared = next(i for i in items if i.datetime.strftime("%Y-%m-%d") == SHARED_DATE)
    assert shared.id == WEST.id  # same datetime: the lower id comes first
    from leafmap_tiles.providers import stac

    assert sorted(ids(stac.same_date_items(shared))) == sorted([WEST.id, EAST.id])
    groups = stac.group_by_date(items)
    assert list(groups) == ALL_DATES
    assert sorted(ids(groups[SHARED_DATE])) == sorted([WEST.id, EAST.id])
    assert all(len(g) == 1 for d, g in groups.items() if d != SHARED_DATE)


def test_same_date_tiles_both_returned_without_unique_dates(terrascope_local):
    items = terrascope_local.search(COLLECTION, start=SHARED_DATE, end=SHARED_DATE,
                                    unique_dates=False)
    assert ids(items) == sorted([WEST.id, EAST.id])


def test_limit_applies_after_unique_dates(terrascope_local):
    items = terrascope_local.search(COLLECTION, limit=3)
    assert terrascope_local.get_item_dates(items) == ALL_DATES[:3]
    items = terrascope_local.search(COLLECTION, start="2016-01-01", limit=2)
    assert terrascope_local.get_item_dates(items) == ["2016-08-16", "2017-08-27"]
    items = terrascope_local.search(COLLECTION, start="2016-01-01", limit=2, unique_dates=False)
    assert ids(items) == sorted([WEST.id, EAST.id])
    assert terrascope_local.search(COLLECTION, limit=0) == []
    assert len(terrascope_local.search(COLLECTION, limit=100)) == 10


def test_bbox(terrascope_local, ndvi_assets):
    w, s, e, n = full_bbox(ndvi_assets)
    west_part = [w, s, w + (e - w) * 0.2, n]
    east_part = [e - (e - w) * 0.2, s, e, n]
    items = terrascope_local.search(COLLECTION, bbox=west_part, unique_dates=False)
    assert ids(items) == expected(lambda x: x.part != "east")
    items = terrascope_local.search(COLLECTION, bbox=east_part, unique_dates=False)
    assert ids(items) == expected(lambda x: x.part != "west")
    items = terrascope_local.search(COLLECTION, bbox=[w, s, e, n], unique_dates=False)
    assert ids(items) == expected()
    # Belgium (leafmap's example area) holds nothing here
    assert terrascope_local.search(COLLECTION, bbox=[5.0, 51.2, 5.1, 51.3]) == []


def test_date_only_end_includes_the_whole_day(terrascope_local):
    late = next(s for s in CATALOG if s.datetime.hour == 23)
    items = terrascope_local.search(COLLECTION, start=late.date, end=late.date)
    assert ids(items) == [late.id]
    items = terrascope_local.search(COLLECTION, start="2018-01-01", end=late.date)
    assert ids(items) == expected(lambda x: "2018-01-01" <= x.date <= late.date)
    assert ids(items)[-1] == late.id
    items = terrascope_local.search(COLLECTION, start=dt.date(2019, 9, 4), end=dt.date(2019, 9, 4))
    assert ids(items) == [late.id]


def test_naive_datetimes_are_utc(terrascope_local, monkeypatch):
    late = next(s for s in CATALOG if s.datetime.hour == 23)  # 2019-09-04 23:30 UTC
    monkeypatch.setenv("TZ", "America/Chicago")  # a local zone must not matter
    time.tzset()
    try:
        before = terrascope_local.search(COLLECTION, start="2019-01-01",
                                         end=dt.datetime(2019, 9, 4, 23, 0))
        after = terrascope_local.search(COLLECTION, start="2019-01-01",
                                        end=dt.datetime(2019, 9, 4, 23, 45))
        as_text = terrascope_local.search(COLLECTION, start="2019-09-04T23:15:00",
                                          end="2019-09-04T23:45:00")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert ids(before) == []
    assert ids(after) == [late.id]
    assert ids(as_text) == [late.id]
    # an aware datetime in another zone is converted: 19:00 at UTC-5 is 00:00 UTC
    utc_minus_5 = dt.timezone(dt.timedelta(hours=-5))
    items = terrascope_local.search(COLLECTION, start="2019-01-01",
                                    end=dt.datetime(2019, 9, 4, 19, 0, tzinfo=utc_minus_5))
    assert ids(items) == [late.id]


def test_open_ranges(terrascope_local):
    items = terrascope_local.search(COLLECTION, start="2017-01-01", unique_dates=False)
    assert ids(items) == expected(lambda x: x.date >= "2017-01-01")
    assert len(items) == 4
    items = terrascope_local.search(COLLECTION, end="2010-06-29", unique_dates=False)
    assert ids(items) == expected(lambda x: x.date <= "2010-06-29")
    assert len(items) == 2
    items = terrascope_local.search(COLLECTION, start=None, end=None, unique_dates=False)
    assert ids(items) == expected()


def _cloud_expected(limit: float) -> list[str]:
    return expected(lambda x: x.cloud_cover is not None and x.cloud_cover <= limit)


def test_cloud_filter_on_the_server(terrascope_local):
    items = terrascope_local.search(COLLECTION, max_cloud_cover=10, unique_dates=False)
    assert ids(items) == _cloud_expected(10)
    assert len(items) == 7
    got = {i.id: i.properties.get("eo:cloud_cover") for i in items}
    assert 10.0 in got.values()          # the limit is inclusive
    assert None not in got.values()      # the item without eo:cloud_cover is out
    assert "S2A_20200831T172233_14TNT_NDVI_V210" not in got  # 10.5
    items = terrascope_local.search(COLLECTION, max_cloud_cover=0, unique_dates=False)
    assert ids(items) == _cloud_expected(0) == ["S2B_20150926T172040_14TNT_NDVI_V210"]
    items = terrascope_local.search(COLLECTION, max_cloud_cover=100, unique_dates=False)
    assert ids(items) == _cloud_expected(100)
    assert len(items) == len(CATALOG) - 1


def test_cloud_filter_on_the_client_without_filter_extension(stac_api_without_filter, clean_env):
    from leafmap_tiles.providers import stac

    stac_api_without_filter.seen.clear()
    for limit in (10, 0, 100):
        items = stac.search(stac_api_without_filter.url, COLLECTION, max_cloud_cover=limit,
                            unique_dates=False)
        assert ids(items) == _cloud_expected(limit)
    assert len(stac.search(stac_api_without_filter.url, COLLECTION, max_cloud_cover=10,
                           unique_dates=False)) == 7
    # it really was the client: no request carried a filter
    for method, path, body in stac_api_without_filter.seen:
        assert "filter" not in path
        assert not body or "filter" not in json.loads(body)


def test_search_ndvi_defaults(terrascope_local, ndvi_assets):
    items = terrascope_local.search_ndvi(bbox=full_bbox(ndvi_assets), start="2014-01-01",
                                         end="2016-08-16")
    # max_cloud_cover=10 by default; one item per date
    assert terrascope_local.get_item_dates(items) == ["2014-07-20", "2015-09-26", "2016-08-16"]
    items = terrascope_local.search_ndvi(full_bbox(ndvi_assets), "2009-01-01", "2020-12-31",
                                         unique_dates=False)
    assert ids(items) == _cloud_expected(10)


def test_asset_urls_and_dates(terrascope_local, stac_api):
    items = terrascope_local.search(COLLECTION, unique_dates=False)
    spec_by_id = {s.id: s for s in CATALOG}
    urls = terrascope_local.get_asset_urls(items)
    assert urls == [stac_api.asset_server.url(spec_by_id[i.id]) for i in items]
    assert terrascope_local.get_asset_urls(items, asset_key="missing") == []
    assert terrascope_local.get_item_dates(items) == [spec_by_id[i.id].date for i in items]


def test_collections_and_cached_client(terrascope_local):
    assert terrascope_local.list_collections() == [COLLECTION]
    assert terrascope_local.get_stac_client() is terrascope_local.get_stac_client()


def test_render_params_from_items(terrascope_local):
    from leafmap_tiles.providers import stac

    items = terrascope_local.search(COLLECTION, unique_dates=False)
    styles = {s.id: s.raster_style for s in CATALOG}
    assert {styles[i.id] for i in items} == {"bands", "asset"}  # both layouts covered
    for item in items:
        assert stac.get_render_params(item, "NDVI") == {"scale": 0.004, "offset": -0.08,
                                                       "nodata": 255}


def test_time_layer_sources_mosaic_shared_date(terrascope_local, stac_api):
    from leafmap_tiles.providers import stac

    items = terrascope_local.search_ndvi(bbox=None, start=None, end=None)
    sources = stac.time_layer_sources(items, "NDVI")
    assert list(sources) == sorted({s.date for s in CATALOG
                                    if s.cloud_cover is not None and s.cloud_cover <= 10})
    assert sorted(sources[SHARED_DATE]["urls"]) == sorted(
        [stac_api.asset_server.url(WEST), stac_api.asset_server.url(EAST)])
    assert all(len(v["urls"]) == 1 for d, v in sources.items() if d != SHARED_DATE)
    assert sources[SHARED_DATE]["scale"] == 0.004
    assert sources[SHARED_DATE]["offset"] == -0.08
    assert sources[SHARED_DATE]["nodata"] == 255


def test_bad_arguments(terrascope_local):
    with pytest.raises(ValueError, match="end date"):
        terrascope_local.search(COLLECTION, end="31/05/2025")
    with pytest.raises(ValueError, match="after end"):
        terrascope_local.search(COLLECTION, start="2020-01-02", end="2020-01-01")
    with pytest.raises(ValueError, match="bbox"):
        terrascope_local.search(COLLECTION, bbox=[1, 2, 3])


def _by_cloud_desc(pred=lambda s: True) -> list[str]:
    """Ids by eo:cloud_cover, highest first, the item without it last; ties by datetime."""
    have = sorted((s for s in ORDERED if pred(s) and s.cloud_cover is not None),
                  key=lambda s: -s.cloud_cover)
    return [s.id for s in have] + [s.id for s in ORDERED if pred(s) and s.cloud_cover is None]


@pytest.mark.parametrize("api", ["stac_api", "stac_api_without_filter"])
def test_max_items_and_sortby(api, request, clean_env):
    """max_items caps the items (the first ones in the order asked for), and sortby
    orders them, whether or not the server sorts (issue 13, item 10)."""
    from leafmap_tiles.providers import stac

    url = request.getfixturevalue(api).url
    items = stac.search(url, COLLECTION, unique_dates=False, max_items=5)
    assert ids(items) == expected()[:5]
    items = stac.search(url, COLLECTION, unique_dates=False, sortby="-properties.eo:cloud_cover")
    assert ids(items) == _by_cloud_desc()
    assert [i.properties.get("eo:cloud_cover") for i in items][:3] == [62.3, 35.0, 10.5]
    items = stac.search(url, COLLECTION, unique_dates=False, max_items=3,
                        sortby=[{"field": "properties.eo:cloud_cover", "direction": "desc"}])
    assert ids(items) == _by_cloud_desc()[:3]
    items = stac.search(url, COLLECTION, unique_dates=False, sortby="-datetime", max_items=2)
    assert [i.datetime.year for i in items] == [2020, 2019]
    assert stac.search(url, COLLECTION, max_items=0) == []
    # limit counts after unique_dates, max_items before: 7 items read, the shared date once
    items = stac.search(url, COLLECTION, max_items=7)
    assert ids(items) == [i for i in expected()[:7] if i != EAST.id]
    with pytest.raises(ValueError, match="max_items"):
        stac.search(url, COLLECTION, max_items=-1)
    with pytest.raises(ValueError, match="sortby"):
        stac.search(url, COLLECTION, sortby=[{"field": "id", "direction": "sideways"}])


def test_terrascope_search_honours_max_items(terrascope_local):
    items = terrascope_local.search(COLLECTION, max_items=5, unique_dates=False)
    assert len(items) == 5 and ids(items) == expected()[:5]
