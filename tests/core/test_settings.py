"""leafmap_tiles.settings: every LEAFMAP_TILES_* variable, its default, old names."""

from __future__ import annotations

import os

from leafmap_tiles import settings
from leafmap_tiles.settings import Settings


def test_defaults_of_an_empty_environment():
    s = Settings.from_env({})
    assert s == Settings()
    assert (s.cache_entries, s.workers, s.tile_deadline, s.remote_tile_deadline) == (256, None, 5.0, 20.0)
    assert s.log_level == "warning" and s.debug is False and s.client_prefix is None
    assert s.terrascope_hosts == ("services.terrascope.be",)
    assert s.terrascope_stac_url == "https://stac.terrascope.be"
    assert s.earth_search_url == "https://earth-search.aws.element84.com/v1"
    assert s.workspace == "~/leafmap_tiles_workspace" and s.data is None


def test_values_and_unparsable_numbers():
    env = {
        "LEAFMAP_TILES_CACHE_ENTRIES": "32",
        "LEAFMAP_TILES_WORKERS": "3",
        "LEAFMAP_TILES_TILE_DEADLINE": "2.5",
        "LEAFMAP_TILES_REMOTE_TILE_DEADLINE": "abc",  # not a number: the default
        "LEAFMAP_TILES_TERRASCOPE_HOSTS": " a.example , b.example:8443 ,",
        "LEAFMAP_TILES_DEBUG": "1",
        "LEAFMAP_TILES_CLIENT_PREFIX": "/proxy/{port}/",
    }
    s = Settings.from_env(env)
    assert (s.cache_entries, s.workers, s.tile_deadline, s.remote_tile_deadline) == (32, 3, 2.5, 20.0)
    assert s.terrascope_hosts == ("a.example", "b.example:8443")
    assert s.debug is True and s.client_prefix == "/proxy/{port}/"
    # "0" is "unset", as LEAFMAP_TILES_WORKERS=0 always was
    assert Settings.from_env({"LEAFMAP_TILES_WORKERS": "0", "LEAFMAP_TILES_CACHE_ENTRIES": "0"}).workers is None


def test_one_workers_variable_two_documented_defaults():
    cores = os.cpu_count() or 2
    assert settings.session_workers(Settings()) == max(2, cores)
    assert settings.serve_workers(Settings()) == max(4, 3 * cores)
    assert settings.session_workers(Settings(workers=7)) == settings.serve_workers(Settings(workers=7)) == 7


def test_data_folder_old_name_still_read():
    assert Settings.from_env({"LEAFMAP_TILES_SHARED_DATA": "/old"}).data == "/old"
    assert Settings.from_env({"LEAFMAP_TILES_DATA": "/new", "LEAFMAP_TILES_SHARED_DATA": "/old"}).data == "/new"


def test_readers_of_the_settings_follow_the_environment(monkeypatch):
    from leafmap_tiles.providers import earth_search, terrascope
    from leafmap_tiles.render.engine import default_cache_entries
    from leafmap_tiles.server.app import default_deadlines

    monkeypatch.setenv("LEAFMAP_TILES_CACHE_ENTRIES", "17")
    monkeypatch.setenv("LEAFMAP_TILES_TILE_DEADLINE", "3")
    monkeypatch.setenv("LEAFMAP_TILES_TERRASCOPE_HOSTS", "x.example")
    monkeypatch.setenv("LEAFMAP_TILES_EARTH_SEARCH_URL", "http://127.0.0.1:1/stac/")
    assert default_cache_entries() == 17
    assert default_deadlines() == (3.0, 20.0)
    assert terrascope.download_hosts() == ["x.example"]
    assert earth_search.stac_url() == "http://127.0.0.1:1/stac"


def test_no_other_module_reads_the_variables():
    """The one place: no module but settings.py looks a LEAFMAP_TILES_ variable up, in
    ``os.environ`` or in any mapping (``env.get("LEAFMAP_TILES_...")``, ``getenv``,
    ``env["LEAFMAP_TILES_..."]``)."""
    import re
    from pathlib import Path

    root = Path(settings.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if path.name == "settings.py":
            continue
        text = path.read_text()
        if re.search(r"(?:\.get|getenv|\.pop|setdefault)\(\s*[\"']LEAFMAP_TILES_|\[\s*[\"']LEAFMAP_TILES_", text):
            offenders.append(str(path.relative_to(root)))
    assert offenders == []
