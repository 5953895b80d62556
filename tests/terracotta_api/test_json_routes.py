"""/keys, /datasets, /metadata and /colormap JSON equal Terracotta's answers."""

from __future__ import annotations


import pytest


def both(client, tc_client, url, method="get", **kw):
    ours = getattr(client, method)(url, **kw)
    theirs = getattr(tc_client, method)(url, **kw)
    assert ours.status_code == theirs.status_code == 200, (url, ours.status_code, ours.text[:300], theirs.status_code)
    assert ours.headers["content-type"].startswith("application/json")
    return ours.json(), theirs.get_json()


def test_keys(client, tc_client):
    ours, theirs = both(client, tc_client, "/keys")
    assert ours == theirs
    assert ours == {"keys": [{"key": "group", "description": "kind of data"}, {"key": "item"},
                             {"key": "band", "description": "band name"}]}


@pytest.mark.parametrize("query", [
    "",
    "?group=landsat",
    "?group=landsat&item=1990",
    "?band=[b1,b3]",
    "?group=[dem,cog]&band=b1",
    "?group=[dem]",
    "?group=[]",
    "?limit=3",
    "?limit=3&page=2",
    "?limit=0",
    "?limit=2&page=100",
    "?order_by=[band,item]",
    "?order_by=[band,item]&ascending=false",
    "?ascending=0&limit=5",
    "?group=landsat&order_by=[band]&ascending=no&limit=4&page=1",
    "?item=nothing",
])
def test_datasets(client, tc_client, query):
    ours, theirs = both(client, tc_client, "/datasets" + query)
    assert ours == theirs
    if query in ("", "?limit=3"):
        assert len(ours["datasets"]) == (3 if "limit" in query else 14)


def test_datasets_order_by_plain_name(client, tc_client):
    """Documented as comma-separated key names: Terracotta fails on a plain name
    (it iterates over the characters); we answer as for the list syntax."""
    ours = client.get("/datasets?order_by=band,item&ascending=false").json()
    theirs = tc_client.get("/datasets?order_by=[band,item]&ascending=false").get_json()
    assert ours == theirs
    assert client.get("/datasets?order_by=band").json()["datasets"][0]["band"] == "b1"
    assert tc_client.get("/datasets?order_by=band").status_code == 400


@pytest.mark.parametrize("keys", ["dem/rmnp/b1", "s1/vv/b1", "landsat/1985/b4", "landcover/nlcd/b1", "cog/greenland16/b1"])
def test_metadata(client, tc_client, keys):
    ours, theirs = both(client, tc_client, f"/metadata/{keys}")
    assert ours == theirs
    assert ours["keys"] == dict(zip(("group", "item", "band"), keys.split("/")))
    assert len(ours["percentiles"]) == 99 and ours["range"][0] <= ours["percentiles"][0]
    cols, tcols = both(client, tc_client, f"/metadata/{keys}?columns=[\"range\",\"mean\"]")
    assert cols == tcols and set(cols) == {"range", "mean", "keys"}


def test_post_metadata(client, tc_client):
    body = {"keys": [["dem", "rmnp", "b1"], ["landsat", "1990", "b2"]]}
    ours, theirs = both(client, tc_client, "/metadata", method="post", json=body)
    assert ours == theirs and len(ours) == 2
    ours, theirs = both(client, tc_client, "/metadata?columns=[\"bounds\"]", method="post", json=body)
    assert ours == theirs and set(ours[1]) == {"bounds", "keys"}


@pytest.mark.parametrize("query", [
    "?stretch_range=[0,1]",
    "?stretch_range=[0,1]&colormap=viridis",
    "?stretch_range=[-3.5,100]&colormap=rdylgn&num_values=10",
    "?stretch_range=[10,0]&colormap=terrain_r&num_values=7",
    "?stretch_range=[5,5]&num_values=3",
])
def test_colormap(client, tc_client, query):
    ours, theirs = both(client, tc_client, "/colormap" + query)
    assert len(ours["colormap"]) == len(theirs["colormap"])
    for a, b in zip(ours["colormap"], theirs["colormap"]):
        assert a["value"] == pytest.approx(b["value"])
        assert max(abs(x - y) for x, y in zip(a["rgba"], b["rgba"])) <= 1, (a, b)


def test_swagger_and_apidoc(client):
    spec = client.get("/swagger.json").json()
    assert spec["openapi"].startswith("3.")
    for path in ("/keys", "/datasets", "/metadata/{keys}", "/colormap",
                 "/singleband/{keys}/{tile_z}/{tile_x}/{tile_y}.png", "/rgb/{keys}/{tile_z}/{tile_x}/{tile_y}.png",
                 "/compute/{keys}/{tile_z}/{tile_x}/{tile_y}.png"):
        assert path in spec["paths"]
    page = client.get("/apidoc")
    assert page.status_code == 200 and "swagger.json" in page.text
    assert "<script src=" not in page.text  # no external scripts


def test_cors_header(client):
    r = client.get("/keys", headers={"Origin": "http://example.org"})
    assert r.headers["access-control-allow-origin"] == "*"
