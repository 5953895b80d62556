"""``leafmap-tiles connect``'s explorer app alone, in this process (Starlette's
TestClient): its errors are the servers' JSON with the status of the one table."""

from __future__ import annotations

import socket

import pytest
from starlette.testclient import TestClient

from leafmap_tiles.errors import SourceTimeoutError, SourceUnreachableError
from leafmap_tiles.server.errors import status_for
from leafmap_tiles.server.explorer import create_explorer_app
from tests.conftest import free_port


@pytest.fixture
def silent_server():
    """A port that accepts connections and never answers (a server that hangs)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def test_a_server_that_cannot_be_reached_is_502_json():
    app = create_explorer_app(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/keys")
    assert r.status_code == status_for(SourceUnreachableError("x")) == 502
    assert r.json() == {"message": "cannot reach the server: ConnectionError", "error": "SourceUnreachableError"}


def test_a_server_that_does_not_answer_is_504_json(silent_server):
    app = create_explorer_app(silent_server, timeout=0.2)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/datasets")
    assert r.status_code == status_for(SourceTimeoutError("x")) == 504
    assert r.json() == {"message": "the server did not answer in 0.2 s", "error": "SourceTimeoutError"}


def test_unknown_routes_and_methods_are_json():
    app = create_explorer_app(f"http://127.0.0.1:{free_port()}")
    with TestClient(app, raise_server_exceptions=False) as c:
        missing = c.get("/nowhere")
        wrong = c.post("/")
        page = c.get("/")
    assert missing.status_code == 404 and missing.json() == {"message": "Not Found", "error": "HTTPError"}
    assert wrong.status_code == 405 and wrong.json() == {"message": "Method Not Allowed", "error": "HTTPError"}
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
