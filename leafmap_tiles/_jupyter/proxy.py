"""The tile proxy handler: jupyter-loopback's ``LoopbackProxyHandler`` whose GET/HEAD
requests reach the tile server on a connection of their own, closed when the browser
goes away.

Why: jupyter-loopback forwards through Tornado's shared ``AsyncHTTPClient`` (at most 10
requests at once, the rest queued in the Jupyter server) and keeps fetching after the
browser aborted a request.  A map aborts tiles on every zoom or pan, and a time slider
preloads every frame's tiles: after a zoom, the new tiles of the frame shown waited
behind all the aborted ones (5.5 s measured in JupyterLab by benchmarks/zoom_browser.py
where the tiles take 0.3 s).  Here each request has its own upstream connection (no
queue in the Jupyter server), and when the browser closes its connection the upstream
one is closed too, so the tile server drops the tile before rendering it
(:mod:`leafmap_tiles.server.scheduler`).  Other methods and WebSockets are
jupyter-loopback's own.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from jupyter_loopback._server import LoopbackProxyHandler
from tornado import httputil, web
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.iostream import StreamClosedError
from tornado.tcpclient import TCPClient

# response headers not copied back (hop-by-hop: RFC 9110 section 7.6.1)
_HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                         "trailer", "transfer-encoding", "upgrade", "content-length"))
MAX_BODY = 64 * 2**20  # bytes: a tile or an info answer is far smaller
TIMEOUT = 120.0  # s to connect; the tile server answers 503 past its own render deadline


class _Collect(httputil.HTTPMessageDelegate):
    def __init__(self) -> None:
        self.start: httputil.ResponseStartLine | None = None
        self.headers: httputil.HTTPHeaders | None = None
        self.chunks: list[bytes] = []

    def headers_received(self, start_line, headers):
        self.start, self.headers = start_line, headers

    def data_received(self, chunk):
        self.chunks.append(chunk)


class TileProxyHandler(LoopbackProxyHandler):
    """``LoopbackProxyHandler`` with cancellable, unqueued GET/HEAD forwarding."""

    _stream = None
    _gone = False

    def on_connection_close(self) -> None:
        self._gone = True
        stream = self._stream
        if stream is not None:
            stream.close()  # the tile server sees the disconnect and drops the tile
        super().on_connection_close()

    async def _proxy_http(self, port: str, path: str) -> None:
        method = self.request.method or "GET"
        if method not in ("GET", "HEAD"):
            await super()._proxy_http(port, path)
            return
        url = urlsplit(self._upstream_url(port, path, scheme="http"))
        target = url.path + (f"?{url.query}" if url.query else "")
        try:
            stream = await TCPClient().connect("127.0.0.1", int(port), timeout=TIMEOUT)
        except (OSError, StreamClosedError) as exc:
            raise web.HTTPError(502, f"{self.namespace} proxy could not reach 127.0.0.1:{int(port)}: {exc}") from exc
        self._stream = stream
        if self._gone:  # the browser left while we connected
            stream.close()
            return
        conn = HTTP1Connection(stream, True, HTTP1ConnectionParameters(decompress=False, max_body_size=MAX_BODY))
        headers = httputil.HTTPHeaders(self._forward_headers())
        headers["Host"] = f"127.0.0.1:{int(port)}"
        headers["Connection"] = "close"
        reply = _Collect()
        try:
            await conn.write_headers(httputil.RequestStartLine(method, target, "HTTP/1.1"), headers)
            conn.finish()
            await conn.read_response(reply)
        except (StreamClosedError, httputil.HTTPInputError) as exc:
            if self._gone:
                return
            raise web.HTTPError(502, f"{self.namespace} proxy lost 127.0.0.1:{int(port)}: {exc}") from exc
        finally:
            self._stream = None
            stream.close()
        if self._gone or reply.start is None:
            return
        self.set_status(reply.start.code, reply.start.reason)
        for name, value in reply.headers.get_all():
            if name.lower() not in _HOP_BY_HOP:
                self.set_header(name, value)
        self.set_header("Access-Control-Allow-Origin", "*")  # as jupyter-loopback's handler
        try:
            body = b"".join(reply.chunks)
            if body and method != "HEAD":
                self.write(body)
            await self.finish()
        except StreamClosedError:
            pass
