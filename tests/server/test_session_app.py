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
    # malformed requests: BadRequestError (they were StyleError, though no style was wrong)
    ("POST", f"/{TOKEN}/colormaps", {"content": b"not json", "headers": ADMIN}, 400, "BadRequestError"),
    ("POST", f"/{TOKEN}/background", {"json": {"ids": []}, "headers": ADMIN}, 400, "BadRequestError"),
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


@pytest.mark.parametrize("address, params, kind, words", [
    # malformed requests (as `leafmap-tiles serve` answers them): BadRequestError
    ("abc/0/0.png", {}, "BadRequestError", "z, x, y must be integers"),
    ("-1/0/0.png", {}, "BadRequestError", "z, x, y must be integers"),
    ("31/0/0.png", {}, "BadRequestError", "does not exist"),
    ("1/2/0.png", {}, "BadRequestError", "does not exist"),
    ("1/0/2.png", {}, "BadRequestError", "does not exist"),
    ("1/0/0.gif", {}, "BadRequestError", "unsupported tile format 'gif'"),
    # well-formed styles that this source cannot have: StyleError
    ("1/0/0.png", {"colormap": "no_such_colormap"}, "StyleError", "colormap"),
    ("1/0/0.png", {"vmin": 5, "vmax": 1}, "StyleError", "vmin"),
    ("1/0/0.png", {"indexes": 2}, "StyleError", "index"),
])
def test_malformed_tile_requests_are_bad_requests_bad_styles_style_errors(client, cog, address, params, kind,
                                                                        words):
    from leafmap_tiles.errors import BadRequestError, StyleError, from_name

    r = client.get(f"/{TOKEN}/tiles/{cog['id']}/{address}", params=params)
    assert r.status_code == 400 and r.json()["error"] == kind, r.text
    assert words in r.json()["message"]
    # the kernel's client raises the class the server named (errors.from_name)
    err = from_name(r.json()["error"], r.json()["message"])
    assert type(err) is {"BadRequestError": BadRequestError, "StyleError": StyleError}[kind]
    assert isinstance(err, ValueError)


@pytest.mark.parametrize("params, words", [
    ({"lon": "east", "lat": 0}, "lon must be a number"),
    ({"lon": "nan", "lat": 0}, "out of range"),
    ({"lon": "inf", "lat": 0}, "out of range"),
    ({"lon": 0, "lat": 91}, "lat='91' is out of range"),
    ({"lon": 0}, "lat must be a number"),
])
def test_bad_lon_lat_is_a_bad_request(client, cog, params, words):
    r = client.get(f"/{TOKEN}/point/{cog['id']}", params=params)
    assert r.status_code == 400 and r.json()["error"] == "BadRequestError", r.text
    assert words in r.json()["message"]
    r = client.post(f"/{TOKEN}/points", json={**params, "layers": [{"id": cog["id"]}]})
    assert r.status_code == 400 and r.json()["error"] == "BadRequestError", r.text


def _admin(client, route, body):
    if isinstance(body, bytes):
        return client.post(f"/{TOKEN}/{route}", content=body, headers=ADMIN)
    return client.post(f"/{TOKEN}/{route}", json=body, headers=ADMIN)


@pytest.mark.parametrize("route, body, field", [
    # POST /sources (protocol.Registration)
    ("sources", b"not json", "JSON object"),
    ("sources", [1], "JSON object"),
    ("sources", {}, "'path' is required"),
    ("sources", {"path": ""}, "'path' is required"),
    ("sources", {"path": 5}, "'path' is required"),
    ("sources", {"path": []}, "'path' is required"),
    ("sources", {"path": ["a.tif", 5]}, "path[1]"),
    ("sources", {"path": "a.tif", "style": [1]}, "'style' must be a JSON object"),
    ("sources", {"path": "a.tif", "style": "viridis"}, "'style' must be a JSON object"),
    ("sources", {"path": "a.tif", "defaults": 1}, "'defaults' must be a JSON object"),
    ("sources", {"path": "a.tif", "protected": "yes"}, "'protected' must be true or false"),
    ("sources", {"path": "a.tif", "id": 5}, "'id' must be a source id"),
    ("sources", {"path": "a.tif", "id": "a/b"}, "'id' must be a source id"),
    ("sources", {"path": "a.tif", "id": ""}, "'id' must be a source id"),
    ("sources", {"path": "a.tif", "styles": {}}, "unknown field(s) 'styles'"),
    # POST /colormaps (protocol.ColormapRequest)
    ("colormaps", b"not json", "JSON object"),
    ("colormaps", {}, "'colormap' is required"),
    ("colormaps", {"colormap": "viridis"}, "names need no registration"),
    ("colormaps", {"colormap": 5}, "'colormap' is required"),
    ("colormaps", {"colormap": ["red"], "n": 3}, "unknown field(s) 'n'"),
    # POST /gdal (protocol.GdalChange)
    ("gdal", b"[1]", "JSON object"),
    ("gdal", {"credentials": "x"}, '"credentials" must be a JSON array'),
    ("gdal", {"credentials": [1]}, "credentials[0] must be an object"),
    ("gdal", {"credentials": [{"host": "a"}]}, "credentials[0].username must be a string"),
    ("gdal", {"credentials": [{"host": "", "username": "u", "password": "p"}]}, "credentials[0].host"),
    ("gdal", {"credentials": [{"host": "a", "username": "u", "password": 5}]}, "credentials[0].password"),
    ("gdal", {"credentials": [{"prefix": "a", "username": "u", "password": "p"}]}, "unknown field(s) 'prefix'"),
    ("gdal", {"clear_hosts": "a"}, "'clear_hosts' must be a JSON array"),
    ("gdal", {"clear_hosts": [1]}, "clear_hosts[0] must be a non-empty string"),
    ("gdal", {"clear_host": ["a"]}, "unknown field(s) 'clear_host'"),
    # POST /background (protocol.BackgroundRequest)
    ("background", b"{", "JSON object"),
    ("background", {"ids": "y"}, "'owner' is required"),
    ("background", {"owner": 5, "ids": []}, "'owner' is required"),
    ("background", {"owner": "", "ids": []}, "'owner' is required"),
    ("background", {"owner": "slider", "ids": "y"}, "'ids' must be a JSON array"),
    ("background", {"owner": "slider", "ids": [1]}, "ids[0] must be a non-empty string"),
    ("background", {"owner": "slider", "ids": [], "id": "x"}, "unknown field(s) 'id'"),
])
def test_kernel_only_bodies_of_another_shape_are_refused_naming_the_field(client, route, body, field):
    """Every kernel-only route checks its whole body (leafmap_tiles.server.session_params)
    before anything changes: 400 BadRequestError whose message names the field."""
    before = client.get("/health").json()["sources"]
    r = _admin(client, route, body)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "BadRequestError" and field in r.json()["message"], r.json()
    assert client.get("/health").json()["sources"] == before


def test_a_refusal_quotes_at_most_40_characters_of_a_field_name(client):
    r = _admin(client, "background", {"owner": "slider", "ids": [], "x" * 5000: 1})
    assert r.status_code == 400 and r.json()["error"] == "BadRequestError"
    assert f"unknown field(s) '{'x' * 40}'" in r.json()["message"] and len(r.json()["message"]) < 200


def test_kernel_only_routes_take_their_protocol_bodies(client, cog):
    """The well-formed bodies of the protocol are taken (and a colormap that is
    well-formed but not colours is a StyleError)."""
    r = _admin(client, "background", {"owner": "slider", "ids": [cog["id"]]})
    assert r.status_code == 200 and r.json() == {"background": 1}
    r = _admin(client, "background", {"owner": "slider", "ids": []})
    assert r.status_code == 200 and r.json() == {"background": 0}
    r = _admin(client, "background", {"owner": "slider", "ids": None})
    assert r.status_code == 200 and r.json() == {"background": 0}
    r = _admin(client, "colormaps", {"colormap": ["#000000", "#ffffff"]})
    assert r.status_code == 200 and r.json()["id"].startswith("cm:")
    from typing import get_type_hints

    from leafmap_tiles import protocol

    assert set(r.json()) == set(get_type_hints(protocol.ColormapAnswer))
    r = _admin(client, "colormaps", {"colormap": ["no such colour"]})
    assert r.status_code == 400 and r.json()["error"] == "StyleError"
    # (a well-formed /gdal body changes this process's GDAL options: tests/providers
    # drive it through a real server process)


def test_parameter_classes_have_the_fields_of_the_protocol():
    """Each body's parameter class (server side) names exactly the fields of the
    protocol's TypedDict (what the kernel's client builds)."""
    from dataclasses import fields
    from typing import get_type_hints

    from leafmap_tiles import protocol
    from leafmap_tiles.server import session_params as sp

    for cls, shape in ((sp.RegistrationBody, protocol.Registration), (sp.ColormapBody, protocol.ColormapRequest),
                       (sp.GdalBody, protocol.GdalChange), (sp.BackgroundBody, protocol.BackgroundRequest),
                       (sp.PointsBody, protocol.PointsRequest)):
        assert {f.name for f in fields(cls)} == set(get_type_hints(shape)), cls
    assert sp.RegistrationBody.FIELDS == tuple(f.name for f in fields(sp.RegistrationBody))


def test_restart_registrations_of_another_shape_are_left_out():
    """A restarted server takes the registrations the kernel re-sends (with their id)
    and leaves out one it cannot use, instead of failing to start."""
    good = {"path": data("cog.tif"), "style": {"colormap": "viridis"}, "defaults": {}, "protected": False,
            "id": "s0123456789ab"}
    bad = {"path": 5, "id": "sbad"}
    app = create_app(TOKEN, KEY, workers=1, sources=[good, bad])
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.get(f"/{TOKEN}/info/s0123456789ab").status_code == 200
        assert c.get(f"/{TOKEN}/info/sbad").status_code == 404
        assert c.get("/health").json()["sources"] == 1


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
    r = client.get(f"/{TOKEN}/info/{cog['id']}")
    assert set(r.json()) == set(get_type_hints(protocol.InfoAnswer))
    assert "path" not in r.json()  # the browser may ask: never a path
    assert set(get_type_hints(protocol.InfoAnswer)) == \
        set(get_type_hints(protocol.SourceInfoJSON)) - {"path"} | {"id", "version"}
    # a source that fails answers a PointFailure, the others still answer
    bad = client.post(f"/{TOKEN}/points", json={"lon": (w + e) / 2, "lat": (s + n) / 2,
                                                  "layers": [{"id": cog["id"], "style": {"indexes": "9"}},
                                                             {"id": cog["id"]}]}).json()
    assert set(bad["results"][0]) == set(get_type_hints(protocol.PointFailure))
    assert bad["results"][0]["kind"] == "StyleError" and bad["results"][1]["inside"] is True


def test_a_list_of_paths_is_one_mosaic(client):
    from leafmap_tiles.protocol import Mosaic, members, source_path

    left, right = data("naip/m_4709963_se_14_1_20180716.tif"), data("naip/m_4709963_se_14_1_20200831.tif")
    assert source_path([left, right]) == Mosaic([left, right]) and source_path([left]) == left
    assert members(Mosaic([left, right])) == (left, right) and members(left) == (left,)
    r = client.post(f"/{TOKEN}/sources", json={"path": [left, right]}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["info"]["path"] == [left, right]
