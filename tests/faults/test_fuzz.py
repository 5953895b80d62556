"""Malformed requests to every route of both servers (the session tile server and
``leafmap-tiles serve``), each on one kept-alive connection: the answer has the
expected status and a JSON body ``{"message", "error"}`` without any local path or
URL, and the *same* connection answers the next request.

Found by trying the servers as an attacker would (issue 19): a 500 used to close the
keep-alive connection, and list bodies, huge numbers and huge keys used to be 500s.
"""

from __future__ import annotations

import json
import shutil
import urllib.parse

import pytest

from .servers import DATA, ROOT, KeepAlive, Served, json_body

BIG = "9" * 4400  # a number / key of 4,400 digits
HUGE_INT = str(10**30)
NESTED = "[" * 50000 + "]" * 50000  # deeper than Python's JSON decoder goes
NESTED_Q = "[" * 5000 + "]" * 5000  # the same in a query (under the 65,535-byte URL limit)
EVIL = '__import__("os").system("ls")'


def _no_path(text: str, *extra: str) -> None:
    for bad in (str(ROOT), "/tmp/", "/home/", "/work", "cog.tif", "http://127.0.0.1", *extra):
        assert bad not in text, (bad, text[:300])


# --------------------------------------------------------------------------- session server


@pytest.fixture(scope="module")
def session():
    from leafmap_tiles.client.server import TileServer

    ts = TileServer().start()
    sid = ts.register(str(DATA / "cog.tif"))["id"]
    rgb = ts.register(str(DATA / "cog_rgb.tif"))["id"]
    yield ts, sid, rgb
    ts.close()


def _session_cases(token: str, sid: str, rgb: str):
    t = f"/{token}"
    tile = f"{t}/tiles/{sid}/1/0/0.png"
    js = {"content-type": "application/json"}
    pts = f"{t}/points"
    ok_pt = {"lon": -56.5, "lat": 73.4}
    q = urllib.parse.quote
    cases = [
        # tiles
        ("GET", f"{t}/tiles/{sid}/abc/0/0.png", None, {}, 400),
        ("GET", f"{t}/tiles/{sid}/{HUGE_INT}/0/0.png", None, {}, 400),
        ("GET", f"{t}/tiles/{sid}/31/0/0.png", None, {}, 400),
        ("GET", f"{t}/tiles/{sid}/1/5/0.png", None, {}, 400),
        ("GET", f"{t}/tiles/{sid}/-1/0/0.png", None, {}, 400),
        ("GET", f"{t}/tiles/{sid}/1/0/{BIG}.png", None, {}, 400),
        ("GET", f"{t}/tiles/{sid}/1/0/0.gif", None, {}, 400),
        ("GET", f"{t}/tiles/nosuchsource/1/0/0.png", None, {}, 404),
        ("GET", f"{t}/tiles/{BIG}/1/0/0.png", None, {}, 404),
        ("GET", f"{tile}?bogus=1", None, {}, 400),
        ("GET", f"{tile}?vmin=1e999&vmax=2", None, {}, 400),
        ("GET", f"{tile}?vmin=abc&vmax=2", None, {}, 400),
        ("GET", f"{tile}?vmin={BIG}&vmax=1", None, {}, 400),
        ("GET", f"{tile}?vmin=5&vmax=1", None, {}, 400),
        ("GET", f"{tile}?indexes=99", None, {}, 400),
        ("GET", f"{tile}?indexes={BIG}", None, {}, 400),
        ("GET", f"{tile}?indexes=a,b", None, {}, 400),
        ("GET", f"{tile}?colormap=notacolormap", None, {}, 400),
        ("GET", f"{tile}?colormap={q('[1, 2')}", None, {}, 400),
        ("GET", f"{tile}?colormap={q(NESTED_Q)}", None, {}, 400),
        ("GET", f"{tile}?expression={q(EVIL)}", None, {}, 400),
        ("GET", f"{tile}?expression={q('b1/')}", None, {}, 400),
        ("GET", f"{tile}?expression={q('b9*2')}", None, {}, 400),
        ("GET", f"{tile}?expression={q('(' * 5000 + 'b1' + ')' * 5000)}", None, {}, 400),
        ("GET", f"{tile}?nodata=abc", None, {}, 400),
        ("GET", f"{tile}?tile_size=100000", None, {}, 400),
        ("GET", f"{tile}?resampling=nope", None, {}, 400),
        ("GET", f"{t}/tiles/{rgb}/1/0/0.png?colormap=viridis", None, {}, 400),
        # info and point
        ("GET", f"{t}/info/nosuchsource", None, {}, 404),
        ("GET", f"{t}/info/{sid}?vmin=x", None, {}, 400),
        ("GET", f"{t}/point/{sid}?lon=abc&lat=0", None, {}, 400),
        ("GET", f"{t}/point/{sid}?lon=1e999&lat=0", None, {}, 400),
        ("GET", f"{t}/point/{sid}?lon={BIG}&lat=0", None, {}, 400),
        ("GET", f"{t}/point/{sid}?lon=0", None, {}, 400),
        ("GET", f"{t}/point/{sid}?lon=0&lat=91", None, {}, 400),
        ("GET", f"{t}/point/nosuchsource?lon=0&lat=0", None, {}, 404),
        # batch points
        ("POST", pts, b"[1, 2]", js, 400),
        ("POST", pts, json.dumps({**ok_pt, "layers": [1]}).encode(), js, 400),
        ("POST", pts, json.dumps({**ok_pt, "layers": [{"id": sid, "style": [1]}]}).encode(), js, 400),
        ("POST", pts, json.dumps({**ok_pt, "layers": "abc"}).encode(), js, 400),
        ("POST", pts, json.dumps({**ok_pt, "layers": [{"id": 5}]}).encode(), js, 404),
        ("POST", pts, json.dumps({"lon": "x", "lat": 0}).encode(), js, 400),
        ("POST", pts, json.dumps({"lon": 10**400, "lat": 0}).encode(), js, 400),
        ("POST", pts, b"{not json", js, 400),
        ("POST", pts, b"null", js, 400),
        ("POST", pts, b"true", js, 400),
        ("POST", pts, b"\xff\xfe\x00garbage", js, 400),
        ("POST", pts, NESTED.encode(), js, 400),
        ("POST", pts, b"", js, 400),
        ("POST", pts, b"[" + b" " * (2 << 20) + b"]", js, 400),  # over 1 MB
        # tokens, routes, methods
        ("GET", f"/wrongtoken/tiles/{sid}/1/0/0.png", None, {}, 403),
        ("GET", f"/wrongtoken/info/{sid}", None, {}, 403),
        ("GET", f"{t}/nosuchroute", None, {}, 404),
        ("DELETE", pts, None, {}, 405),
        ("POST", f"{t}/sources", b"{}", js, 403),  # no admin key
        ("POST", f"{t}/gdal", b"{}", js, 403),
    ]
    return cases


def _admin_cases(token: str):
    t = f"/{token}"
    js = {"content-type": "application/json"}
    src, gdal = f"{t}/sources", f"{t}/gdal"
    return [
        ("POST", src, b"[1, 2]", js, 400),
        ("POST", src, b"{}", js, 400),
        ("POST", src, b'{"path": 5}', js, 400),
        ("POST", src, b'{"path": [1, 2]}', js, 400),
        ("POST", src, b'{"path": "x.tif", "style": [1]}', js, 400),
        ("POST", src, b'{"path": "x.tif", "defaults": "abc"}', js, 400),
        ("POST", src, b"{not json", js, 400),
        ("POST", src, NESTED.encode(), js, 400),
        ("POST", src, json.dumps({"path": str(DATA / "cog.tif"), "style": {"vmin": "abc", "vmax": 1}}).encode(), js, 400),
        ("POST", src, json.dumps({"path": str(DATA / "cog.tif"), "id": [1]}).encode(), js, 400),
        ("POST", gdal, b"{not json", js, 400),
        ("POST", gdal, b"[1]", js, 400),
        ("POST", gdal, b'{"credentials": [1]}', js, 400),
        ("POST", gdal, b'{"credentials": "x"}', js, 400),
        ("POST", gdal, b'{"credentials": [{"host": "a"}]}', js, 400),
        ("POST", gdal, b'{"clear_hosts": [1]}', js, 400),
        ("DELETE", f"{src}/nosuchsource", None, {}, 404),
    ]


def _check(conn: KeepAlive, case, health: str, *allowed_paths: str) -> None:
    method, path, body, headers, want = case
    status, hdrs, data = conn.request(method, path, body, headers)
    assert status == want, (method, path[:120], status, data[:300])
    assert hdrs.get("content-type", "").startswith("application/json"), (path[:120], hdrs)
    text = data.decode("utf-8")
    json_body(data)
    assert "Traceback" not in text
    _no_path(text.replace(*allowed_paths) if allowed_paths else text)
    status, _, _ = conn.request("GET", health)  # the same connection still works
    assert status == 200


def test_session_server_malformed_requests(session):
    ts, sid, rgb = session
    cases = _session_cases(ts.token, sid, rgb)
    conn = KeepAlive(ts.port)
    try:
        for case in cases:
            _check(conn, case, "/health")
    finally:
        conn.close()
    assert len(cases) >= 50


def test_session_server_admin_routes_malformed(session):
    ts, _, _ = session
    cases = _admin_cases(ts.token)
    conn = KeepAlive(ts.port)
    try:
        for method, path, body, headers, want in cases:
            _check(conn, (method, path, body, {**headers, "X-Leafmap-Tiles-Key": ts._admin_key}, want), "/health")
        # a file that does not exist: the answer quotes the path the kernel sent, nothing else
        missing = str(DATA / "no_such_file.tif")
        body = json.dumps({"path": missing}).encode()
        status, _, data = conn.request("POST", f"/{ts.token}/sources", body,
                                       {"content-type": "application/json", "X-Leafmap-Tiles-Key": ts._admin_key})
        assert status == 400 and json_body(data)["error"] == "SourceNotFoundError"
        _no_path(json.loads(data)["message"].replace(missing, "<sent>"))
        assert conn.request("GET", "/health")[0] == 200
    finally:
        conn.close()


def test_session_server_500_keeps_connection(session, tmp_path):
    """A registered file that became unreadable: 500 without its path, 200 x on one
    connection (issue 19 saw 55 of 200 ConnectionErrors)."""
    ts, _, _ = session
    path = tmp_path / "gone.tif"
    shutil.copy(DATA / "cog.tif", path)
    sid = ts.register(str(path))["id"]
    path.write_bytes(path.read_bytes()[:3000])  # truncated in place, keeps its name
    conn = KeepAlive(ts.port)
    try:
        for _ in range(200):
            status, _, data = conn.request("GET", f"/{ts.token}/tiles/{sid}/9/175/98.png")
            assert status == 500, data[:200]
            body = json_body(data)
            assert body["error"] == "InvalidSourceError" and f"source {sid}" in body["message"]
            _no_path(body["message"], str(tmp_path), "gone.tif")
    finally:
        conn.close()
        ts.release(sid)


def test_session_server_query_too_long_for_http_layer(session):
    """Over 65,535 bytes the HTTP parser itself refuses the request: a JSON 400, and
    only that connection is closed."""
    ts, sid, _ = session
    conn = KeepAlive(ts.port)
    try:
        status, hdrs, data = conn.request("GET", f"/{ts.token}/tiles/{sid}/1/0/0.png?x=" + "a" * 70000,
                                          expect_close=True)
        assert status == 400 and hdrs["content-type"].startswith("application/json")
        assert json_body(data)["error"] == "BadRequestError"
        conn.reopen()
        assert conn.request("GET", "/health")[0] == 200
    finally:
        conn.close()


# --------------------------------------------------------------------------- serve


@pytest.fixture(scope="module")
def serve_db(tmp_path_factory):
    from leafmap_tiles import store

    root = tmp_path_factory.mktemp("fuzzserve")
    for name in ("cog.tif", "cog_int16.tif", "cog_nodata_nan.tif"):
        shutil.copy(DATA / name, root / name)
    ks = store.open(str(root / "db.sqlite"))
    ks.create(["name", "band"])
    ks.insert(["greenland", "b1"], str(root / "cog.tif"))
    ks.insert(["greenland", "b2"], str(root / "cog_int16.tif"))
    ks.insert(["sar", "b1"], str(root / "cog_nodata_nan.tif"))
    return root


@pytest.fixture(scope="module")
def served(serve_db):
    s = Served("-d", str(serve_db / "db.sqlite"))
    yield s
    s.close()


def _serve_cases():
    q = urllib.parse.quote
    js = {"content-type": "application/json"}
    sb = "/singleband/greenland/b1/9/175/98.png"
    rgb = "/rgb/greenland/9/175/98.png"
    cp = "/compute/greenland/9/175/98.png"
    return [
        ("GET", f"/datasets?limit={HUGE_INT}", None, {}, 400),
        ("GET", f"/datasets?limit={BIG}", None, {}, 400),
        ("GET", "/datasets?limit=-1", None, {}, 400),
        ("GET", "/datasets?limit=1e3", None, {}, 400),
        ("GET", f"/datasets?page={HUGE_INT}", None, {}, 400),
        ("GET", "/datasets?page=abc", None, {}, 400),
        ("GET", "/datasets?ascending=maybe", None, {}, 400),
        ("GET", "/datasets?order_by=nokey", None, {}, 400),
        ("GET", "/datasets?nokey=1", None, {}, 400),
        ("GET", f"/singleband/{BIG}/b1/0/0/0.png", None, {}, 400),
        ("GET", f"/singleband/greenland/{BIG}/0/0/0.png", None, {}, 400),
        ("GET", "/singleband/greenland/0/0/0.png", None, {}, 400),
        ("GET", "/singleband/nosuch/b1/9/175/98.png", None, {}, 404),
        ("GET", "/singleband/greenland/b1/99/0/0.png", None, {}, 400),
        ("GET", "/singleband/greenland/b1/2/9/0.png", None, {}, 400),
        ("GET", f"/singleband/greenland/b1/{HUGE_INT}/0/0.png", None, {}, 400),
        ("GET", f"{sb}?stretch_range=[1]", None, {}, 400),
        ("GET", f"{sb}?stretch_range=notjson", None, {}, 400),
        ("GET", f"{sb}?stretch_range=[1e999,2]", None, {}, 400),
        ("GET", f"{sb}?stretch_range=[{10**400},1]", None, {}, 400),
        ("GET", f"{sb}?stretch_range={q(NESTED_Q)}", None, {}, 400),
        ("GET", f"{sb}?stretch_range={q(json.dumps(['p101', 'p5']))}", None, {}, 400),
        ("GET", f"{sb}?colormap=NOPE", None, {}, 400),
        ("GET", f"{sb}?tile_size=[0,0]", None, {}, 400),
        ("GET", f"{sb}?tile_size=[99999,1]", None, {}, 400),
        ("GET", f"{sb}?tile_size=[{HUGE_INT},1]", None, {}, 400),
        ("GET", f"{sb}?colormap=explicit", None, {}, 400),
        ("GET", f"{sb}?colormap=explicit&explicit_color_map={q(json.dumps({'1': 'nothex'}))}", None, {}, 400),
        ("GET", f"{sb}?colormap=explicit&explicit_color_map={q(json.dumps({'1': [10**400, 0, 0]}))}", None, {}, 400),
        ("GET", f"{sb}?explicit_color_map={q(json.dumps({'1': [1, 2, 3]}))}", None, {}, 400),
        ("GET", "/singleband/greenland/b1/preview.png?tile_size=[1,1,1]", None, {}, 400),
        ("GET", "/metadata/nosuch/b1", None, {}, 404),
        ("GET", "/metadata/greenland", None, {}, 400),
        ("GET", f"/metadata/greenland/{BIG}", None, {}, 400),
        ("GET", "/metadata/greenland/b1?columns=[\"nope\"]", None, {}, 400),
        ("GET", "/metadata/greenland/b1?columns=notjson", None, {}, 400),
        ("POST", "/metadata", b"[1, 2]", js, 400),
        ("POST", "/metadata", b"{not json", js, 400),
        ("POST", "/metadata", b'{"keys": "x"}', js, 400),
        ("POST", "/metadata", json.dumps({"keys": [["greenland", "b1"]] * 101}).encode(), js, 400),
        ("POST", "/metadata", NESTED.encode(), js, 400),
        ("POST", "/metadata", b"{" + b" " * (2 << 20) + b"}", js, 400),  # over 1 MB
        ("GET", "/colormap", None, {}, 400),
        ("GET", f"/colormap?stretch_range=[0,1]&num_values={HUGE_INT}", None, {}, 400),
        ("GET", "/colormap?stretch_range=[0,1]&num_values=0", None, {}, 400),
        ("GET", "/colormap?stretch_range=[0,1]&colormap=NOPE", None, {}, 400),
        ("GET", f"{rgb}?g=b1&b=b1", None, {}, 400),
        ("GET", f"{rgb}?r=b1&g=b1&b=b1&r_range=[2,1]", None, {}, 400),
        ("GET", f"{rgb}?r=nosuch&g=b1&b=b1", None, {}, 404),
        ("GET", "/rgb/9/175/98.png?r=b1&g=b1&b=b1", None, {}, 400),
        ("GET", f"{cp}?stretch_range=[0,1]&v1=b1", None, {}, 400),
        ("GET", f"{cp}?expression={q(EVIL)}&stretch_range=[0,1]&v1=b1", None, {}, 400),
        ("GET", f"{cp}?expression=v1*v3&stretch_range=[0,1]&v1=b1", None, {}, 400),
        ("GET", f"{cp}?expression=v1&stretch_range=[1,0]&v1=b1", None, {}, 400),
        ("GET", f"{cp}?expression={q('v1' + '+v1' * 5000)}&stretch_range=[0,1]&v1=b1", None, {}, 400),
        ("GET", "/nosuchroute", None, {}, 404),
        ("DELETE", "/keys", None, {}, 405),
    ]


def test_serve_malformed_requests(served):
    cases = _serve_cases()
    conn = KeepAlive(served.port)
    try:
        for case in cases:
            _check(conn, case, "/keys")
    finally:
        conn.close()
    assert len(cases) >= 50


def test_serve_query_too_long_for_http_layer(served):
    conn = KeepAlive(served.port)
    try:
        status, hdrs, data = conn.request("GET", "/datasets?name=" + "a" * 70000, expect_close=True)
        assert status == 400 and hdrs["content-type"].startswith("application/json")
        json_body(data)
        conn.reopen()
        assert conn.request("GET", "/keys")[0] == 200
    finally:
        conn.close()


def test_serve_limit_10e30_keeps_connection(served):
    """issue 19: 200 x /datasets?limit=10**30 on one session gave 79 ConnectionErrors."""
    conn = KeepAlive(served.port)
    try:
        for _ in range(200):
            status, _, data = conn.request("GET", f"/datasets?limit={HUGE_INT}")
            assert status == 400 and "limit" in json_body(data)["message"]
    finally:
        conn.close()
