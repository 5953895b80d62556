"""/swagger.json describes every route the app serves (built from the parameter
classes of leafmap_tiles.server.terracotta_params), and the key-less /rgb and
/compute routes it lists answer as Terracotta's do."""

from __future__ import annotations

import re

import numpy as np
import pytest
from starlette.routing import Route

from .conftest import DATA, YEARS, compare, rgba, split_bands

# Starlette's path parameters as the spec (and Terracotta's spec) names them
_NAMES = {"{keys:path}": "{keys}", "{z:int}": "{tile_z}", "{x:int}": "{tile_x}", "{y:int}": "{tile_y}"}


def _spec_path(path: str) -> str:
    for ours, theirs in _NAMES.items():
        path = path.replace(ours, theirs)
    return path


def test_spec_lists_every_route_the_app_serves(our_app, client):
    spec = client.get("/swagger.json").json()
    served = {}
    for route in our_app.routes:
        assert isinstance(route, Route)
        served[_spec_path(route.path)] = {m.lower() for m in route.methods if m != "HEAD"}
    assert {p: set(ops) for p, ops in spec["paths"].items()} == served
    for path in ("/rgb/{tile_z}/{tile_x}/{tile_y}.png", "/rgb/preview.png",
                 "/compute/{tile_z}/{tile_x}/{tile_y}.png", "/compute/preview.png"):
        assert path in spec["paths"]  # the key-less forms (a store of one key)


def test_spec_parameters_are_those_of_the_path_and_the_query_class(client):
    from leafmap_tiles.server import terracotta_params as tp

    spec = client.get("/swagger.json").json()
    classes = {"singleband": tp.SinglebandQuery, "rgb": tp.RgbQuery, "compute": tp.ComputeQuery}
    for path, ops in spec["paths"].items():
        for op in ops.values():
            params = op.get("parameters", [])
            in_path = {p["name"] for p in params if p["in"] == "path"}
            assert in_path == set(re.findall(r"{(\w+)}", path)), path
            kind = path.split("/")[1]
            if kind in classes:
                names = [p["name"] for p in tp.openapi_parameters(classes[kind], ["viridis"])]
                assert [p["name"] for p in params if p["in"] == "query"] == names, path


@pytest.fixture(scope="module")
def one_key_db(tmp_path_factory):
    """A Terracotta database (made by terracotta) of one key, ``band``: the 1985
    Landsat bands."""
    import terracotta

    root = tmp_path_factory.mktemp("onekey")
    db = str(root / "onekey.sqlite")
    driver = terracotta.get_driver(db, provider="sqlite")
    driver.create(["band"])
    with driver.connect():
        for band, path in split_bands(DATA / "landsat_annual" / f"{YEARS[0]}.tif", root).items():
            driver.insert((band,), path)
    return db


def test_keyless_rgb_and_compute_answer_as_terracotta(one_key_db, tc_db, tc_client, client):
    import terracotta
    from starlette.testclient import TestClient

    from leafmap_tiles.server.terracotta_api import create_terracotta_app

    md = tc_client.get(f"/metadata/landsat/{YEARS[0]}/b1").get_json()
    w, s, e, n = md["bounds"]
    import morecantile

    z = 10
    tile = morecantile.tms.get("WebMercatorQuad").tile((w + e) / 2, (s + n) / 2, z)
    x, y = tile.x, tile.y
    urls = [f"/rgb/{z}/{x}/{y}.png?r=b3&g=b2&b=b1", "/rgb/preview.png?r=b3&g=b2&b=b1",
            f"/compute/{z}/{x}/{y}.png?v1=b4&v2=b3&expression=(v1*1.0-v2)/(v1*1.0%2Bv2)"
            "&stretch_range=[-0.5,0.5]&colormap=viridis"]
    terracotta.update_settings(DRIVER_PATH=one_key_db)
    try:
        theirs = {u: tc_client.get(u) for u in urls}
    finally:
        terracotta.update_settings(DRIVER_PATH=tc_db)  # the session's Terracotta app
    with TestClient(create_terracotta_app(one_key_db), raise_server_exceptions=False) as ours_client:
        for url in urls:
            ours = ours_client.get(url)
            assert ours.status_code == 200 and theirs[url].status_code == 200, (url, ours.text[:200])
            assert rgba(ours.content)[..., 3].any(), url  # a tile with data
            res = compare(ours.content, theirs[url].data)
            assert res["mean"] <= 2.0 and res["mismatch_outside_edge"] == 0, (url, res)
        # the same pixels as the keyed route of the three-key store over the same files
        keyless = rgba(ours_client.get(urls[0]).content)
    keyed = client.get(f"/rgb/landsat/{YEARS[0]}/{z}/{x}/{y}.png?r=b3&g=b2&b=b1")
    assert keyed.status_code == 200
    assert np.array_equal(rgba(keyed.content), keyless)
