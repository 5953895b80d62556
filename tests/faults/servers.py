"""Real server processes for the fault tests, and a keep-alive HTTP connection that
tells whether the server kept it open."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"


class Served:
    """``leafmap-tiles serve -d DB`` (or ``-r PATTERN``) as a child process on a free port."""

    def __init__(self, *args: str, env: dict | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "leafmap_tiles.cli", "serve", *args, "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT),
            env={**os.environ, **(env or {})},
        )
        line = self.proc.stdout.readline()
        if "http://" not in line:
            self.proc.kill()
            raise AssertionError(f"serve did not start: {line!r} {self.proc.stderr.read()}")
        self.base = "http://" + line.split("http://", 1)[1].split()[0]
        self.port = int(self.base.rsplit(":", 1)[1])

    def close(self) -> str:
        """Stop the server; returns what it wrote on stderr (its log)."""
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err or ""


class KeepAlive:
    """One HTTP/1.1 connection to ``127.0.0.1:port``; :meth:`request` fails if the
    server closed the connection or answered ``Connection: close``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.conn.connect()
        self.local = self.conn.sock.getsockname()

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                expect_close: bool = False):
        """``(status, headers, body bytes)``; asserts the connection is still the one
        opened first (unless ``expect_close``: the HTTP layer may close it)."""
        assert self.conn.sock is not None and self.conn.sock.getsockname() == self.local, "connection was closed"
        self.conn.request(method, path, body=body, headers=headers or {})
        r = self.conn.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if not expect_close:
            assert hdrs.get("connection", "").lower() != "close", (path[:120], r.status, data[:200])
        return r.status, hdrs, data

    def reopen(self) -> None:
        self.conn.close()
        self.__init__(self.port)

    def close(self) -> None:
        self.conn.close()


def json_body(data: bytes) -> dict:
    out = json.loads(data)
    assert isinstance(out, dict) and isinstance(out.get("message"), str) and out["message"], out
    assert isinstance(out.get("error"), str) and out["error"], out
    return out
