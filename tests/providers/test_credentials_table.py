"""One table of credentials for providers and the kernel's tile server
(leafmap_tiles._credentials), scoped to hosts."""

from __future__ import annotations

from leafmap_tiles import _credentials
from leafmap_tiles.providers import servers, stac


def test_one_table_for_providers_and_client(monkeypatch):
    monkeypatch.setattr(servers, "tile_server", lambda: None)  # no server process for this test
    try:
        stac.set_credentials(["Data.Example:8443"], "ann", "pw1")
        # the provider's lookups and the records the client pushes to a server are the same table
        assert stac.credentials_for("https://data.example:8443/a.tif") == ("ann", "pw1")
        assert stac.credentials_for("https://data.example/a.tif") is None  # another port
        assert stac.credentials_for("https://other.example:8443/a.tif") is None
        assert {"host": "data.example:8443", "username": "ann", "password": "pw1"} in _credentials.records()
        assert "ann:pw1" in _credentials.passwords()
        stac.clear_credentials(["data.example:8443"])
        assert stac.credentials_for("https://data.example:8443/a.tif") is None
        assert all(r["host"] != "data.example:8443" for r in _credentials.records())
    finally:
        _credentials.remove(["data.example:8443"])


def test_login_hints_by_host_and_by_setting():
    hosts = ["hint.example"]
    stac.set_login_hint(lambda: hosts, "log in to hint first")
    assert stac.login_hint_for("https://hint.example/x.tif") == "log in to hint first"
    hosts[:] = ["moved.example"]  # a setting that changed: read at each lookup
    assert stac.login_hint_for("https://hint.example/x.tif") is None
    assert stac.login_hint_for("https://moved.example/x.tif") == "log in to hint first"
