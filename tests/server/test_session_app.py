"""The session server's ASGI app alone, in this process (Starlette's TestClient; no
child process, no kernel client): registration, tiles, points, and the one error
model (status table, JSON ``{"message", "error"}``, classes not strings).

References: the engine's own tile of the same source and style (what the app must
send byte for byte), rasterio's sample for points."""

from __future__ import annotations

import json

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
                       (sp.PointsBody, protocol.PointsRequest),
                       (sp.StatisticsBody, protocol.StatisticsRequest)):
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


# ------------------------------------------------------------ found by a new user's tryout


@pytest.mark.parametrize("query, kind, words", [
    # float()/int() take other scripts' digits: "١" (Arabic-Indic one) was read as 1
    ({"lon": "\u0661", "lat": "0"}, "BadRequestError", "lon must be a number"),
    ({"lon": "0", "lat": "\u0661"}, "BadRequestError", "lat must be a number"),
])
def test_non_ascii_digits_in_lon_lat_are_bad_requests(client, cog, query, kind, words):
    r = client.get(f"/{TOKEN}/point/{cog['id']}", params=query)
    assert r.status_code == 400 and r.json()["error"] == kind and words in r.json()["message"], r.text


@pytest.mark.parametrize("params, words", [
    ({"indexes": "\u0661"}, "indexes must be integers"),
    ({"vmin": "\u0661", "vmax": "2000"}, "vmin must be a number"),
    ({"vmin": "0", "vmax": "\u0662\u0660\u0660\u0660"}, "vmax must be a number"),
    ({"nodata": "\u0660"}, "nodata must be a number"),
    ({"tile_size": "\u0662\u0665\u0666"}, "tile_size must be 256 or 512"),
])
def test_non_ascii_digits_in_a_style_are_style_errors(client, cog, params, words):
    r = client.get(f"/{TOKEN}/tiles/{cog['id']}/1/0/0.png", params=params)
    assert r.status_code == 400 and r.json()["error"] == "StyleError" and words in r.json()["message"], r.text
    # the same values in ASCII digits are taken
    ascii_params = {k: v.translate({0x660 + i: str(i) for i in range(10)}) for k, v in params.items()}
    assert client.get(f"/{TOKEN}/tiles/{cog['id']}/1/0/0.png", params=ascii_params).status_code in (200, 204)


@pytest.mark.parametrize("path, words", [
    ("http://[::1/x.tif", "malformed URL 'http://[::1/x.tif': Invalid IPv6 URL"),
    ("/vsicurl/https://[::1/x.tif", "Invalid IPv6 URL"),
    ("http://example.invalid:99999/x.tif", "Port out of range"),
    ("https://example.invalid:abc/x.tif", "Port could not be cast"),
    ("s3://[bucket/x.tif", "Invalid IPv6 URL"),
])
def test_registering_a_malformed_url_is_a_400_before_anything_is_registered(client, path, words):
    """urlsplit raised ValueError in gdalenv.cover (500); now the registration is
    refused, a mosaic with one such member too, and the error names the URL."""
    before = client.get("/health").json()["sources"]
    for body in ({"path": path}, {"path": [data("cog.tif"), path]}):
        r = _admin(client, "sources", body)
        assert r.status_code == 400 and r.json()["error"] == "InvalidSourceError", r.text
        assert words in r.json()["message"]
    assert client.get("/health").json()["sources"] == before


_SQUARE = {"type": "Polygon", "coordinates": [[[-45.0, 70.0], [-44.0, 70.0], [-44.0, 71.0], [-45.0, 71.0],
                                               [-45.0, 70.0]]]}


@pytest.mark.parametrize("route, body, words", [
    ("points", {"lon": 0, "lat": 0, "layers": [], "zoom": 3}, "points: unknown field(s) 'zoom'"),
    ("points", {"lon": 0, "lat": 0, "layers": [{"id": "x", "styles": {}}]}, "layers[0]: unknown field(s) 'styles'"),
    ("statistics", {"geometry": _SQUARE, "percentile": [5]}, "statistics: unknown field(s) 'percentile'"),
    ("statistics", {"geometry": None}, "Polygon"),
    ("statistics", {"geometry": _SQUARE, "percentiles": [101]}, "percentiles must be numbers in [0, 100]"),
    ("statistics", {"geometry": _SQUARE, "stats": ["mode"]}, "unknown statistic 'mode'"),
    # a re-check's findings: a bool was iterated (500 TypeError)
    ("statistics", {"geometry": _SQUARE, "percentiles": True}, "percentiles must be a number or a list"),
    ("statistics", {"geometry": _SQUARE, "style": [1]}, "'style' must be a JSON object"),
    ("statistics", {"geometry": _SQUARE, "scale": "2"}, "'scale' must be a finite number"),
    ("statistics", {"geometry": _SQUARE, "offset": True}, "'offset' must be a finite number"),
    ("statistics", b'{"geometry": %s, "scale": 1e999}' % json.dumps(_SQUARE).encode(), "'scale' must be a finite"),
])
def test_points_and_statistics_bodies_of_another_shape_are_refused(client, cog, route, body, words):
    r = _admin(client, route if route == "points" else f"statistics/{cog['id']}", body)
    assert r.status_code == 400 and r.json()["error"] == "BadRequestError", r.text
    assert words in r.json()["message"]


def test_statistics_body_is_parsed_as_before(client, cog):
    """The fields the kernel sends (client.server.statistics) are taken: count and the
    percentiles always, the asked statistics, the layer's scale/offset applied."""
    from leafmap_tiles.server.session_params import StatisticsBody

    w, s, e, n = cog["info"]["bounds"]
    x0, x1, y0, y1 = w + (e - w) / 3, w + 2 * (e - w) / 3, s + (n - s) / 3, s + 2 * (n - s) / 3
    square = {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}
    body = {"geometry": square, "style": {}, "percentiles": [50], "scale": None, "offset": None, "stats": ["mean"]}
    parsed = StatisticsBody.parse(body)
    assert (parsed.percentiles, parsed.stats, parsed.style, parsed.scale) == ((50.0,), ("mean",), {}, None)
    plain = _admin(client, f"statistics/{cog['id']}", body)
    assert plain.status_code == 200, plain.text
    stats = plain.json()["statistics"][0]
    assert set(stats) == {"count", "mean", "p50"} and stats["count"] > 0
    scaled = _admin(client, f"statistics/{cog['id']}", {**body, "scale": 2, "offset": 1})
    assert scaled.status_code == 200, scaled.text
    assert scaled.json()["statistics"][0]["count"] == stats["count"]
    assert scaled.json()["statistics"][0]["mean"] == pytest.approx(2 * stats["mean"] + 1)
    assert scaled.json()["statistics"][0]["p50"] == pytest.approx(2 * stats["p50"] + 1)


def test_an_unreadable_file_with_spaces_in_its_name_leaks_no_part_of_it(tmp_path):
    """GDAL names a file by its name alone ("shade copy.tif: TIFFReadDirectory..."); the
    scrub cut that name at the space and answered "shade <file>"."""
    import shutil

    folder = tmp_path / "secret folder"
    folder.mkdir()
    path = folder / "shade copy.tif"
    shutil.copy(data("cog.tif"), path)
    with TestClient(create_app(TOKEN, KEY, workers=1), raise_server_exceptions=False) as c:
        sid = c.post(f"/{TOKEN}/sources", json={"path": str(path)}, headers=ADMIN).json()["id"]
        path.write_bytes(b"II*\x00garbage" * 10)  # the file is now corrupt
        for url in (f"/{TOKEN}/tiles/{sid}/1/0/0.png", f"/{TOKEN}/info/{sid}"):
            r = c.get(url)
            assert r.status_code == 500 and r.json()["error"] == "InvalidSourceError", r.text
            message = r.json()["message"]
            assert f"source {sid}" in message
            for word in ("shade", "copy", "secret", "folder", ".tif", str(tmp_path)):
                assert word not in message, message


@pytest.mark.parametrize("raw", [b'{"path": "%s", "style": {"tile_size": Infinity}}',
                                 b'{"path": "%s", "defaults": {"tile_size": 1e400}}'])
def test_an_infinite_tile_size_is_a_style_error_not_a_500(client, raw):
    """int(float('inf')) raised OverflowError, which the style parser did not catch (a
    re-check of issue 17 found it); nothing is registered."""
    before = client.get("/health").json()["sources"]
    r = _admin(client, "sources", raw % data("cog.tif").encode())
    assert r.status_code == 400 and r.json()["error"] == "StyleError", r.text
    assert "tile_size must be 256 or 512" in r.json()["message"]
    assert client.get("/health").json()["sources"] == before


def test_file_urls_register_the_file_they_name(client, tmp_path):
    """``file://localhost/...`` and percent-escaped names were checked as the file but
    opened as the URL (400 "no such file" for a file that exists); the registration
    now names the local file (a re-check of issue 17)."""
    import shutil
    import urllib.parse

    spaced = tmp_path / "a b.tif"
    shutil.copy(data("cog.tif"), spaced)
    for url in (f"file://localhost{data('cog.tif')}", "file://" + urllib.parse.quote(str(spaced))):
        r = _admin(client, "sources", {"path": url})
        assert r.status_code == 200, (url, r.text)
        assert r.json()["info"]["path"] in (data("cog.tif"), str(spaced))
        assert client.get(f"/{TOKEN}/tiles/{r.json()['id']}/0/0/0.png").status_code in (200, 204)
