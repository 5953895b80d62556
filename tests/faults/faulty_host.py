"""A local HTTP file host on 127.0.0.1 that can misbehave on demand, for fault tests.

Modes (``host.mode = ...``, switchable while it runs):

- ``"ok"``: serves the files of ``root`` with HTTP range requests (206), as a COG host does;
- ``"hang"``: accepts the connection, reads the request, never answers;
- ``"trickle"``: answers correctly but sends one byte every ``trickle_delay`` seconds;
- ``"refuse"``: the listening socket is closed, so connections are refused
  (``ECONNREFUSED``); switching back re-binds the same port.

Every connection is served by its own daemon thread; :meth:`close` stops them all.
"""

from __future__ import annotations

import os
import socket
import threading
import time


class FaultyHost:
    def __init__(self, root: str, trickle_delay: float = 1.0) -> None:
        self.root = root
        self.trickle_delay = trickle_delay
        self._mode = "ok"
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._conns: set[socket.socket] = set()
        self.requests = 0
        self._listen = self._bind(0)
        self.port = self._listen.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="faulty-host", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- control
    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        assert value in ("ok", "hang", "trickle", "refuse"), value
        with self._lock:
            old, self._mode = self._mode, value
            if value == "refuse" and old != "refuse":
                self._close_listen()
                self._drop_connections()
            elif old == "refuse" and value != "refuse":
                self._listen = self._bind(self.port)
            elif value != old:
                self._drop_connections()  # kept-alive connections must see the new mode

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            self._close_listen()
            self._drop_connections()

    def _close_listen(self) -> None:
        try:  # wakes the thread blocked in accept(), so the port is free at once
            self._listen.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listen.close()

    def _drop_connections(self) -> None:
        for c in list(self._conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass
        self._conns.clear()

    def _bind(self, port: int) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for attempt in range(50):  # the old listening socket may take a moment to go
            try:
                s.bind(("127.0.0.1", port))
                break
            except OSError:
                if attempt == 49:
                    raise
                time.sleep(0.05)
        s.listen(64)
        s.settimeout(0.2)
        return s

    # ----------------------------------------------------------------- server
    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                listen = self._listen
            try:
                conn, _ = listen.accept()
            except (socket.timeout, OSError):
                if self._mode == "refuse":
                    time.sleep(0.05)
                continue
            conn.settimeout(None)
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            f = conn.makefile("rb")
            while not self._closed.is_set():
                line = f.readline()
                if not line:
                    return
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers = {}
                while True:
                    h = f.readline().decode("latin-1").strip()
                    if not h:
                        break
                    k, _, v = h.partition(":")
                    headers[k.strip().lower()] = v.strip()
                self.requests += 1
                mode = self._mode
                if mode == "hang":
                    self._closed.wait()
                    return
                self._answer(conn, method, target, headers, trickle=(mode == "trickle"))
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                self._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    def _answer(self, conn, method, target, headers, trickle: bool) -> None:
        path = os.path.join(self.root, os.path.basename(target.split("?", 1)[0]))
        if not os.path.isfile(path):
            body = b"not found"
            head = f"HTTP/1.1 404 Not Found\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            conn.sendall(head + (body if method != "HEAD" else b""))
            return
        size = os.path.getsize(path)
        rng = headers.get("range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].split(",")[0].partition("-")
            start = int(a)
            end = min(int(b) if b else size - 1, size - 1)
            status = "206 Partial Content"
            extra = f"Content-Range: bytes {start}-{end}/{size}\r\n"
        else:
            start, end, status, extra = 0, size - 1, "200 OK", ""
        with open(path, "rb") as fh:
            fh.seek(start)
            body = fh.read(end - start + 1)
        head = (f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nAccept-Ranges: bytes\r\n{extra}"
                "Content-Type: image/tiff\r\n\r\n").encode()
        payload = head + (body if method != "HEAD" else b"")
        if not trickle:
            conn.sendall(payload)
            return
        for i in range(len(payload)):
            if self._closed.is_set() or self._mode != "trickle":
                return
            conn.sendall(payload[i:i + 1])
            time.sleep(self.trickle_delay)
