"""Keep-alive JSON requests to the session's tile server on 127.0.0.1, without requests.

``requests`` costs about 1 ms of kernel CPU per call (session merging, hooks, environment
look-ups for proxies and netrc); ``http.client`` on a kept connection about 0.15 ms.  That
matters where the kernel sends many small requests at once, e.g. one per frame of an area
series (``slider.series``): there the kernel's share of the machine's two cores is time
the server cannot use.  :class:`LoopbackPool` keeps a few connections (one per thread in
flight) and hands them out; it knows nothing of tokens, restarts or error bodies
(:class:`~leafmap_tiles.client.server.TileServer` does).
"""

from __future__ import annotations

import http.client
import json
import threading

#: Connections kept open between calls (more may be open while more threads send).
KEEP = 16


class LoopbackPool:
    """Connections to ``127.0.0.1:port``; :meth:`post_json` sends on a free one.

    Args:
        port: the server's port.
        timeout: seconds to wait for the connection and for each read.
    """

    def __init__(self, port: int, timeout: float) -> None:
        self.port = port
        self.timeout = timeout
        self._free: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._closed = False

    def post_json(self, path: str, body: dict, headers: dict) -> tuple[int, bytes]:
        """POST ``body`` (a JSON-able dict) to ``path`` (starting with ``/``) and return
        ``(status, response bytes)``.  A kept connection the server closed meanwhile
        (its keep-alive timeout) is replaced once by a new one.  Raises ``OSError``
        (``TimeoutError`` past :attr:`timeout`, ``ConnectionError``) or
        ``http.client.HTTPException`` when the server cannot be reached or answers
        garbage; the caller decides whether to retry."""
        data = json.dumps(body).encode("utf-8")
        hdrs = {"Content-Type": "application/json", **headers}
        conn, reused = self._take()
        try:
            return self._send(conn, path, data, hdrs)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
        # a kept connection closed by the server while idle: once more, on a new one
        return self._send(self._new(), path, data, hdrs)

    def _send(
        self, conn: http.client.HTTPConnection, path: str, data: bytes, hdrs: dict
    ) -> tuple[int, bytes]:
        """One POST on ``conn``; keeps ``conn`` for later calls unless it will close."""
        try:
            conn.request("POST", path, body=data, headers=hdrs)
            resp = conn.getresponse()
            out = resp.status, resp.read()
        except BaseException:
            conn.close()
            raise
        if resp.will_close:
            conn.close()
        else:
            self._give(conn)
        return out

    def _new(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)

    def _take(self) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._free:
                return self._free.pop(), True
        return self._new(), False

    def _give(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed and len(self._free) < KEEP:
                self._free.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close the kept connections; later calls open new ones only to close them."""
        with self._lock:
            self._closed = True
            free, self._free = self._free, []
        for conn in free:
            conn.close()
