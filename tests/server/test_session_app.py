"""The session server's ASGI app alone, in this process (Starlette's TestClient; no
child process, no kernel client): registration, tiles, points, and the one error
model (status table, JSON ``{"message", "error"}``, classes not strings).

References: the engine's own tile of the same source and style (what the app must
send byte for byte), rasterio's sample for points."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from starlette.testclient import TestClient

from leafmap_tiles.render import RenderEngine, parse_style
from leafmap_tiles.server.app import create_app
from tests.conftest import data
from tests.core.helpers import decode

TOKEN, KEY = "t" * 32, "k" * 32
ADMIN = {"X-Leafmap-Tiles-Key": KEY}


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(TOKEN, KEY, workers=2), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def cog(client):
    r = client.post(f"/{TOKEN}/sources", json={"path": data("cog.tif"), "style": {"colormap": "viridis"}},
                    headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


def test_registration_describes_the_file(cog):
    with rasterio.open(data("cog.tif")) as ds:
        assert (cog["info"]["width"], cog["info"]["height"], cog["info"]["count"]) == (ds.width, ds.height, 1)
    assert cog["style"]["colormap"] == "viridis"
    assert len(cog["stretch"]["vmin"]) == 1 and cog["stretch"]["vmin"][0] < cog["stretch"]["vmax"][0]


def test_tile_is_the_engines_tile(client, cog):
    info = cog["info"]
    z = info["maxzoom"]
    w, s, e, n = info["bounds"]
    import morecantile

    t = morecantile.tms.get("WebMercatorQuad").tile((w + e) / 2, (s + n) / 2, z)
    vmin, vmax = cog["stretch"]["vmin"][0], cog["stretch"]["vmax"][0]
    r = client.get(f"/{TOKEN}/tiles/{cog['id']}/{t.z}/{t.x}/{t.y}.png", params={"colormap": "viridis", "vmin": vmin, "vmax": vmax})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["etag"]
    engine = RenderEngine()
    style = parse_style({"colormap": "viridis", "vmin": vmin, "vmax": vmax}, engine.info(data("cog.tif")))
    assert np.array_equal(decode(r.content), decode(engine.tile(data("cog.tif"), style, t.z, t.x, t.y)))
    again = client.get(r.url, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304


def test_point_is_rasterios_sample(client, cog):
    with rasterio.open(data("cog.tif")) as ds:
        row, col = ds.height // 2, ds.width // 3
        x, y = ds.xy(row, col)
        want = int(ds.read(1, window=((row, row + 1), (col, col + 1)))[0, 0])
        (lon,), (lat,) = rasterio.warp.transform(ds.crs, "EPSG:4326", [x], [y])
    r = client.get(f"/{TOKEN}/point/{cog['id']}", params={"lon": lon, "lat": lat})
    assert r.status_code == 200, r.text
    assert r.json()["values"] == [want] and r.json()["inside"] is True


@pytest.mark.parametrize("method, path, kwargs, status, kind", [
    ("GET", "/wrong/info/x", {}, 403, "HTTPError"),
    ("GET", f"/{TOKEN}/info/nosuchid", {}, 404, "UnknownSourceError"),
    ("GET", f"/{TOKEN}/tiles/nosuchid/1/0/0.png", {}, 404, "UnknownSourceError"),
    ("POST", f"/{TOKEN}/sources", {"content": b"[1,", "headers": ADMIN}, 400, "BadRequestError"),
    ("POST", f"/{TOKEN}/sources", {"json": {"path": "/nonexistent/a.tif"}, "headers": ADMIN}, 400,
     "SourceNotFoundError"),
    ("POST", f"/{TOKEN}/sources", {"json": {"path": data("cog.tif")}}, 403, "HTTPError"),  # no admin key
    # these two answered with a hand-written "StyleError" string before; now the class, same answer
    ("POST", f"/{TOKEN}/colormaps", {"content": b"not json", "headers": ADMIN}, 400, "StyleError"),
    ("POST", f"/{TOKEN}/background", {"json": {"ids": []}, "headers": ADMIN}, 400, "StyleError"),
    ("GET", f"/{TOKEN}/nowhere", {}, 404, "HTTPError"),
])
def test_errors_are_json_with_the_status_of_the_one_table(client, method, path, kwargs, status, kind):
    r = client.request(method, path, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"message", "error"} and body["error"] == kind and body["message"]
    assert "Traceback" not in body["message"]


def test_bad_style_is_400_and_names_no_path(client, cog):
    r = client.get(f"/{TOKEN}/tiles/{cog['id']}/1/0/0.png", params={"colormap": "no_such_colormap"})
    assert r.status_code == 400 and r.json()["error"] == "StyleError"
    assert data("cog.tif") not in r.json()["message"]
    r = client.get(f"/{TOKEN}/point/{cog['id']}", params={"lon": "east", "lat": 0})
    assert r.status_code == 400 and "lon" in r.json()["message"]


def test_health(client, cog):
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["sources"] >= 1


def test_answers_have_the_shapes_of_the_protocol(client, cog):
    """The JSON of the app is what leafmap_tiles.protocol writes down (every field, no other)."""
    from typing import get_type_hints

    from leafmap_tiles import protocol

    assert set(cog) == set(get_type_hints(protocol.RegistrationAnswer))
    assert set(cog["info"]) == set(get_type_hints(protocol.SourceInfoJSON))
    assert set(cog["stretch"]) == set(get_type_hints(protocol.Stretch))
    w, s, e, n = cog["info"]["bounds"]
    r = client.get(f"/{TOKEN}/point/{cog['id']}", params={"lon": (w + e) / 2, "lat": (s + n) / 2})
    assert set(r.json()) == set(get_type_hints(protocol.PointAnswer))
    r = client.post(f"/{TOKEN}/points", json={"lon": (w + e) / 2, "lat": (s + n) / 2,
                                                "layers": [{"id": cog["id"]}]})
    assert set(r.json()) == set(get_type_hints(protocol.PointsAnswer))
    assert set(r.json()["results"][0]) == set(get_type_hints(protocol.PointResult))


def test_a_list_of_paths_is_one_mosaic(client):
    from leafmap_tiles.protocol import Mosaic, members, source_path

    left, right = data("naip/m_4709963_se_14_1_20180716.tif"), data("naip/m_4709963_se_14_1_20200831.tif")
    assert source_path([left, right]) == Mosaic([left, right]) and source_path([left]) == left
    assert members(Mosaic([left, right])) == (left, right) and members(left) == (left,)
    r = client.post(f"/{TOKEN}/sources", json={"path": [left, right]}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["info"]["path"] == [left, right]
