"""Each bad input raises a specific exception naming the problem and leaves the map
unchanged (no half-added layer)."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import numpy as np
import pytest

from leafmap_tiles.errors import (
    AuthenticationError,
    InvalidSourceError,
    SourceIsDirectoryError,
    SourceNotFoundError,
    SourceTimeoutError,
    StyleError,
)
from tests.conftest import data


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        if self.path.startswith("/missing"):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path.startswith("/protected"):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_response(500)
            self.end_headers()


@pytest.fixture(scope="module")
def http_base():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


@pytest.fixture(scope="module")
def silent_base():
    """A server that accepts connections and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    conns = []
    stop = threading.Event()

    def accept():
        s.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(s.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{s.getsockname()[1]}"
    stop.set()
    t.join()
    for c in conns:
        c.close()
    s.close()


def _assert_unchanged(m, before):
    assert list(m.layers) == before


def test_local_file_errors(m, tmp_path):
    before = list(m.layers)
    with pytest.raises(SourceNotFoundError, match="not found"):
        m.add_raster(str(tmp_path / "nope.tif"))
    with pytest.raises(SourceIsDirectoryError, match="directory"):
        m.add_raster(str(tmp_path))
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    with pytest.raises(InvalidSourceError, match="empty"):
        m.add_raster(str(empty))
    trunc = tmp_path / "truncated.tif"
    trunc.write_bytes(open(data("cog.tif"), "rb").read()[:300_000])
    with pytest.raises(InvalidSourceError, match="truncated|corrupt"):
        m.add_raster(str(trunc))
    from PIL import Image

    png = tmp_path / "photo.png"
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(png)
    with pytest.raises(InvalidSourceError, match="georeference"):
        m.add_raster(str(png))
    _assert_unchanged(m, before)


def test_style_errors(m):
    before = list(m.layers)
    with pytest.raises(StyleError, match="band index 5 is out of range.*4 band"):
        m.add_raster(data("cog_rgba.tif"), indexes=[5])
    with pytest.raises(StyleError, match="band index 0"):
        m.add_raster(data("cog_rgba.tif"), indexes=0)
    with pytest.raises(StyleError, match="vmin must be less than vmax"):
        m.add_raster(data("cog.tif"), vmin=10, vmax=10)
    with pytest.raises(StyleError, match="unknown colormap 'rdylgn'.*RdYlGn"):
        m.add_raster(data("cog.tif"), colormap="rdylgn")
    with pytest.raises(StyleError, match="nodata=-1.*uint8"):
        m.add_raster(data("bahamas_rgb.tif"), nodata=-1)
    with pytest.raises(StyleError, match="single band"):
        m.add_raster(data("bahamas_rgb.tif"), colormap="viridis")
    _assert_unchanged(m, before)


def test_malformed_requests_are_bad_requests_in_the_kernel(m):
    """The server's answer names the class (BadRequestError for a malformed request,
    StyleError for a style the source cannot have); the kernel raises that class."""
    from leafmap_tiles.errors import BadRequestError

    lyr = m.add_raster(data("cog.tif"))
    with pytest.raises(BadRequestError, match="lat='91.0' is out of range") as err:
        lyr.point(0.0, 91.0)
    assert not isinstance(err.value, StyleError) and isinstance(err.value, ValueError)
    with pytest.raises(BadRequestError, match="tile 1/5/0 does not exist"):
        m.server.tile(lyr.source_id, 1, 5, 0)
    with pytest.raises(BadRequestError, match="unsupported tile format 'gif'"):
        m.server.tile(lyr.source_id, 1, 0, 0, fmt="gif")
    with pytest.raises(BadRequestError, match="a non-empty path/URL or a list of them"):
        m.server.register(5)
    with pytest.raises(StyleError, match="unknown colormap"):
        m.server.tile(lyr.source_id, 1, 0, 0, {"colormap": "no_such_colormap"})


def test_http_errors(m, http_base, silent_base):
    before = list(m.layers)
    with pytest.raises(SourceNotFoundError, match="404"):
        m.add_raster(f"{http_base}/missing/a.tif")
    with pytest.raises(AuthenticationError, match="[Ll]og in"):
        m.add_raster(f"{http_base}/protected/a.tif")
    t0 = time.monotonic()
    with pytest.raises(SourceTimeoutError):
        m.add_raster(f"{silent_base}/never.tif")
    assert time.monotonic() - t0 < 30  # the bound promised to users, not a speed check
    _assert_unchanged(m, before)


def test_array_needs_georeference(m):
    with pytest.raises(ValueError, match="crs"):
        m.add_raster(np.zeros((10, 10), dtype="float32"))
    with pytest.raises(TypeError, match="unsupported source"):
        m.add_raster(object())
