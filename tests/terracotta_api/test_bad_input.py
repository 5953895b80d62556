"""Bad input: 400 with a JSON message (Terracotta answers some with 500); unknown
dataset: 404."""

from __future__ import annotations

import pytest

BAD = [
    "/datasets?limit=-1",
    "/datasets?limit=abc",
    "/datasets?page=-2",
    "/datasets?ascending=maybe",
    "/datasets?color=red",
    "/datasets?order_by=[nokey]",
    "/metadata/dem/rmnp",
    "/metadata/dem/rmnp/b1/extra",
    "/metadata/dem/rmnp/b1?columns=[]",
    "/metadata/dem/rmnp/b1?columns=[\"nope\"]",
    "/metadata/dem/rmnp/b1?columns=[\"range\"",
    "/colormap",
    "/colormap?stretch_range=[0]",
    "/colormap?stretch_range=[0,1]&colormap=nocmap",
    "/colormap?stretch_range=[0,1]&num_values=-3",
    "/singleband/dem/rmnp/b1/8/52/96.png?stretch_range=[0,",
    "/singleband/dem/rmnp/b1/8/52/96.png?stretch_range=[\"x5\",1]",
    "/singleband/dem/rmnp/b1/8/52/96.png?stretch_range=[\"p101\",1]",
    "/singleband/dem/rmnp/b1/8/52/96.png?stretch_range=[1,2,3]",
    "/singleband/dem/rmnp/b1/8/52/96.png?colormap=NotAColormap",
    "/singleband/dem/rmnp/b1/8/52/96.png?colormap=explicit",
    "/singleband/dem/rmnp/b1/8/52/96.png?explicit_color_map={\"1\":[1,2,3]}",
    "/singleband/dem/rmnp/b1/8/52/96.png?colormap=explicit&explicit_color_map={\"a\":[1,2,3]}",
    "/singleband/dem/rmnp/b1/8/52/96.png?colormap=explicit&explicit_color_map={\"1\":[1,2]}",
    "/singleband/dem/rmnp/b1/8/52/96.png?colormap=explicit&explicit_color_map={\"1\":\"#zzzzzz\"}",
    "/singleband/dem/rmnp/b1/8/52/96.png?colormap=explicit&explicit_color_map={\"1\":[300,0,0]}",
    "/singleband/dem/rmnp/b1/8/52/96.png?tile_size=[256]",
    "/singleband/dem/rmnp/b1/8/52/96.png?tile_size=[100000,100000]",
    "/singleband/dem/rmnp/b1/8/512/96.png",
    "/singleband/dem/rmnp/b1/preview.png?tile_size=[\"a\",1]",
    "/singleband/dem/rmnp/8/52/96.png",
    "/rgb/landsat/1985/8/82/134.png?r=b3&g=b2",
    "/rgb/landsat/8/82/134.png?r=b3&g=b2&b=b1",
    "/rgb/landsat/1985/8/82/134.png?r=b3&g=b2&b=b1&r_range=[200,10]",
    "/rgb/landsat/1985/8/82/134.png?r=b3&g=b2&b=b1&g_range=[\"p5\"]",
    "/compute/landsat/1985/8/82/134.png?v1=b4&stretch_range=[0,1]",
    "/compute/landsat/1985/8/82/134.png?v1=b4&expression=v1",
    "/compute/landsat/1985/8/82/134.png?v1=b4&expression=v1&stretch_range=[1,0]",
    "/compute/landsat/1985/8/82/134.png?v1=b4&expression=v1&stretch_range=[null,1]",
    "/compute/landsat/1985/8/82/134.png?v1=b4&expression=v1+v2&stretch_range=[0,1]",
    "/compute/landsat/1985/8/82/134.png?v1=b4&expression=v1.__class__&stretch_range=[0,1]",
    "/compute/landsat/1985/8/82/134.png?v1=b4&expression=__import__('os')&stretch_range=[0,1]",
    "/compute/landsat/1985/8/82/134.png?v1=b4&expression=v1)&stretch_range=[0,1]",
    "/compute/landsat/1985/8/82/134.png?v1=b4&expression=sqrt(v1,2)&stretch_range=[0,1]",
    "/compute/landsat/1985/8/82/134.png?v1=b4&expression=1%2B2&stretch_range=[0,1]",
    "/compute/landsat/1985/8/82/134.png?v1=b4&expression=v1&stretch_range=[0,1]&colormap=explicit",
    "/compute/landsat/8/82/134.png?v1=b4&expression=v1&stretch_range=[0,1]",
]


@pytest.mark.parametrize("url", BAD)
def test_bad_input_is_400_json(client, url):
    r = client.get(url)
    assert r.status_code == 400, (url, r.status_code, r.text[:300])
    body = r.json()
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in body["message"]


@pytest.mark.parametrize("url", [
    "/metadata/dem/rmnp/b1?columns=[\"nope\"]",
    "/compute/landsat/1985/8/82/134.png?v1=b4&expression=v1&stretch_range=[null,1]",
    "/metadata/dem/rmnp/b1?columns=[]",
])
def test_terracotta_answers_these_with_500(tc_client, url):
    """Recorded so that the difference stays deliberate (docs/terracotta.md)."""
    assert tc_client.get(url).status_code == 500


def test_post_metadata_bad_bodies(client):
    for body in ([1, 2], {"keys": "a"}, {"keys": [["a", 1]]}, {"keys": [["dem"]] * 101}, {"other": 1}):
        r = client.post("/metadata", json=body)
        assert r.status_code == 400, body
        assert r.json()["message"]
    r = client.post("/metadata", content=b"not json", headers={"content-type": "application/json"})
    assert r.status_code == 400


@pytest.mark.parametrize("url", [
    "/metadata/dem/nothere/b1",
    "/singleband/dem/nothere/b1/8/52/96.png",
    "/singleband/dem/nothere/b1/preview.png",
    "/rgb/landsat/2000/preview.png?r=b3&g=b2&b=b1",
    "/rgb/landsat/1985/preview.png?r=b3&g=b2&b=b9",
    "/compute/landsat/1985/preview.png?v1=b9&expression=v1&stretch_range=[0,1]",
])
def test_unknown_dataset_is_404(client, tc_client, url):
    r = client.get(url)
    assert r.status_code == 404, (url, r.text)
    assert r.json()["message"]
    # Terracotta: 404, but 500 for /rgb and /compute previews (its raster store
    # asserts that one path was found)
    assert tc_client.get(url).status_code == (500 if "preview" in url and not url.startswith("/singleband") else 404)


def test_post_metadata_unknown_dataset_is_404(client):
    r = client.post("/metadata", json={"keys": [["dem", "rmnp", "b1"], ["dem", "nothere", "b1"]]})
    assert r.status_code == 404


def test_only_listed_datasets_are_served(client):
    """A URL names key values, never a path: traversal attempts are unknown datasets."""
    for url in ("/singleband/..%2F..%2Fetc/passwd/x/preview.png", "/metadata/%2Fetc%2Fpasswd/a/b",
                "/singleband/../../etc/passwd/preview.png"):
        r = client.get(url)
        assert r.status_code in (400, 404), (url, r.status_code)


def test_polar_dataset_tiles_are_not_500(tmp_path, tc_client):
    """A dataset whose bounds reach -90°: Terracotta fails (500) computing which
    tiles exist; we clamp to the Web Mercator latitude limit."""
    from starlette.testclient import TestClient

    from leafmap_tiles import store
    from leafmap_tiles.render.terracotta import _tile_index
    from leafmap_tiles.server.terracotta_api import create_terracotta_app

    from .conftest import DATA, rgba

    ks = store.open(str(tmp_path / "polar.sqlite"))
    ks.create(["name"])
    ks.insert(["ice"], str(DATA / "bremen_sea_ice_conc_2022_9_9.tif"))
    md = ks.get_metadata(["ice"])
    assert md["bounds"][1] <= -80
    with TestClient(create_terracotta_app(ks)) as c:
        opaque = 0
        for z in (2, 3, 4):
            for lon in (-120, -60, 0, 60, 120):
                x, y = _tile_index(lon, -70, z)
                r = c.get(f"/singleband/ice/{z}/{x}/{y}.png?colormap=blues")
                assert r.status_code == 200, r.text
                opaque += int((rgba(r.content)[..., 3] > 0).sum())
        assert opaque > 10_000


def test_serve_pattern_names_the_files_it_leaves_out(tmp_path, caplog):
    """`serve -r PATTERN` serves what matches and warns about the files the wildcards
    found whose names do not fit (key values are letters and digits only: Terracotta's
    rule), as `ingest` does."""
    import logging
    import os
    import shutil

    from leafmap_tiles.store.terracotta_handlers import open_store
    from tests.conftest import data

    shutil.copy(data("cog.tif"), tmp_path / "ab.tif")
    shutil.copy(data("cog.tif"), tmp_path / "a_b.tif")
    with caplog.at_level(logging.WARNING, logger="leafmap_tiles.serve"):
        ks, db = open_store(str(tmp_path / "{name}.tif"), None)
    try:
        assert list(ks.get_datasets()) == [("ab",)]
        text = caplog.text
        assert "1 file(s)" in text and "a_b.tif" in text and "'_' is not allowed" in text
    finally:
        os.unlink(db)


def test_serve_port_taken_back_after_a_restart_but_never_shared():
    """`serve --port P` after a server on P stopped with connections it had closed (in
    TIME-WAIT): the port is taken back at once; a port another server listens on is
    still refused."""
    import socket
    import time

    from leafmap_tiles.cli import _bind

    first = _bind("127.0.0.1", [0])
    port = first.getsockname()[1]
    assert _bind("127.0.0.1", [port]) is None  # in use: refused
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = first.accept()
    conn.close()  # the server closes first: its side stays in TIME-WAIT
    time.sleep(0.1)
    client.close()
    first.close()
    again = _bind("127.0.0.1", [port])
    assert again is not None and again.getsockname()[1] == port
    again.close()


@pytest.mark.parametrize("url, words", [
    # the values spread over an infinite span are inf/NaN, which JSON cannot carry (was 500)
    ("/colormap?stretch_range=[-1e308,1e308]", "stretch_range: the span max - min must be a finite number"),
    ("/colormap?stretch_range=[1e308,-1e308]", "stretch_range: the span max - min must be a finite number"),
    # int() takes other scripts' digits: "²" raised inside int() (500), "١" was read as 1
    ("/datasets?limit=%C2%B2", "limit: not a valid integer"),
    ("/datasets?page=%C2%B2", "page: not a valid integer"),
    ("/datasets?limit=%E2%91%A0", "limit: not a valid integer"),
    ("/datasets?limit=%D9%A1", "limit: not a valid integer"),
    ("/datasets?limit=--5", "limit: not a valid integer"),  # passed str.lstrip("+-"), then int() raised
    ("/colormap?stretch_range=[0,1]&num_values=%C2%B2", "num_values: not a valid integer"),
    ("/singleband/dem/rmnp/b1/8/52/96.png?stretch_range=[%22p%D9%A1%22,1]", "percentile format is `p<digits>`"),
    ("/rgb/landsat/1985/8/82/134.png?r=b3&g=b2&b=b1&r_range=[%22p%C2%B2%22,1]", "percentile format is `p<digits>`"),
])
def test_overflowing_ranges_and_non_ascii_digits_are_400_naming_the_parameter(client, url, words):
    r = client.get(url)
    assert r.status_code == 400, (url, r.status_code, r.text[:300])
    assert r.json()["error"] == "BadRequestError" and words in r.json()["message"]


def test_ranges_and_numbers_that_stay_valid(client):
    """The checks above leave these as they were: a huge but finite span, a descending
    colour bar (Terracotta allows it), a signed ASCII integer, an ASCII percentile."""
    r = client.get("/colormap?stretch_range=[-1e307,1e307]&num_values=3")
    assert r.status_code == 200, r.text
    assert [v["value"] for v in r.json()["colormap"]] == [-1e307, 0.0, 1e307]
    r = client.get("/colormap?stretch_range=[1,0]&num_values=2")
    assert [v["value"] for v in r.json()["colormap"]] == [1.0, 0.0]
    r = client.get("/datasets?limit=+2&page=0")
    assert r.status_code == 200 and r.json()["limit"] == 2 and len(r.json()["datasets"]) == 2
    r = client.get("/singleband/dem/rmnp/b1/8/52/96.png?stretch_range=[%22p2%22,%22p98%22]")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
