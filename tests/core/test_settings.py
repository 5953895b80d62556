"""leafmap_tiles.settings: every LEAFMAP_TILES_* variable, its default, old names."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

from leafmap_tiles import settings
from leafmap_tiles.errors import SettingsError
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


def test_values():
    env = {
        "LEAFMAP_TILES_CACHE_ENTRIES": "32",
        "LEAFMAP_TILES_WORKERS": " 3 ",
        "LEAFMAP_TILES_TILE_DEADLINE": "2.5",
        "LEAFMAP_TILES_REMOTE_TILE_DEADLINE": "",  # empty: unset
        "LEAFMAP_TILES_MAX_AREA_PIXELS": "1000",
        "LEAFMAP_TILES_REMOTE_DB_CACHE_TTL": "0.5",
        "LEAFMAP_TILES_REMOTE_RASTER_TTL": "60",
        "LEAFMAP_TILES_TERRASCOPE_HOSTS": " a.example , b.example:8443 ,",
        "LEAFMAP_TILES_DEBUG": "1",
        "LEAFMAP_TILES_CLIENT_PREFIX": "/proxy/{port}/",
    }
    s = Settings.from_env(env)
    assert (s.cache_entries, s.workers, s.tile_deadline, s.remote_tile_deadline) == (32, 3, 2.5, 20.0)
    assert (s.max_area_pixels, s.remote_db_cache_ttl, s.remote_raster_ttl) == (1000, 0.5, 60.0)
    assert s.terrascope_hosts == ("a.example", "b.example:8443")
    assert s.debug is True and s.client_prefix == "/proxy/{port}/"


def test_what_zero_means():
    """0 is the default where a zero would stop the server working (as it always was);
    a TTL of 0 is a real TTL: check every time (as the stores' cache_ttl=0)."""
    zeros = {name: "0" for name in settings.NUMBERS}
    s = Settings.from_env(zeros)
    assert (s.cache_entries, s.workers, s.tile_deadline, s.remote_tile_deadline, s.max_area_pixels) == \
        (256, None, 5.0, 20.0, 50_000_000)
    assert (s.remote_db_cache_ttl, s.remote_raster_ttl) == (0.0, 0.0)
    assert Settings.from_env({"LEAFMAP_TILES_TILE_DEADLINE": "0.0"}).tile_deadline == 5.0


@pytest.mark.parametrize("name", sorted(settings.NUMBERS))
@pytest.mark.parametrize("value, why", [
    ("-3", "is negative"), ("-0.5", "is negative"), ("nan", "is not a finite number"),
    ("inf", "is not a finite number"), ("-inf", "is not a finite number"), ("abc", "is not a number"),
    ("5s", "is not a number"), ("\u0663", "is not a number"), ("\u00b2", "is not a number"), ("  ", None),
])
def test_bad_numbers_name_the_variable_value_and_what_is_allowed(name, value, why):
    if why is None:  # blank: unset
        assert Settings.from_env({name: value}) == Settings()
        return
    with pytest.raises(SettingsError) as info:
        Settings.from_env({name: value})
    msg = str(info.value)
    rule = settings.NUMBERS[name]
    assert msg.startswith(f"{name}={value!r} {why}: give ")
    assert f"of {rule.unit} >= 0 (0: {rule.zero}; empty: the default)" in msg
    assert isinstance(info.value, ValueError) and "\n" not in msg


@pytest.mark.parametrize("name, value, what, allowed", [
    ("LEAFMAP_TILES_LOG_LEVEL", "loud", "the log level", "critical, error, warning, info, debug"),
    ("LEAFMAP_TILES_LOG_LEVEL", "trace", "the log level", "critical, error, warning, info, debug"),
    ("LEAFMAP_TILES_RESAMPLING", "magic", "resampling", "nearest, linear, bilinear, cubic, average"),
    ("LEAFMAP_TILES_REPROJECTION", "average", "reprojection", "nearest, linear, bilinear, cubic"),
])
def test_bad_words_name_the_variable_value_and_what_is_allowed(name, value, what, allowed):
    """A log level uvicorn does not know crashed the session server's child inside
    uvicorn.Config (the kernel only saw that no port came); a bad resampling was a
    StoreError that did not name the variable."""
    with pytest.raises(SettingsError) as info:
        Settings.from_env({name: value})
    assert str(info.value).startswith(f"{name}={value!r}: {what} must be one of {allowed} (case ignored; ")
    assert "\n" not in str(info.value)


def test_words_are_read_in_any_case():
    s = Settings.from_env({"LEAFMAP_TILES_LOG_LEVEL": "INFO", "LEAFMAP_TILES_RESAMPLING": " Nearest ",
                           "LEAFMAP_TILES_REPROJECTION": "LINEAR"})
    assert (s.log_level, s.resampling, s.reprojection) == ("info", "nearest", "linear")
    assert settings.tile_methods(settings=s) == ("nearest", "bilinear")
    assert (Settings().log_level, Settings().resampling, Settings().reprojection) == ("warning", "average", "bilinear")


def test_a_bad_log_level_is_said_in_the_kernel_before_a_child_starts(monkeypatch):
    from leafmap_tiles.client.server import TileServer

    monkeypatch.setenv("LEAFMAP_TILES_LOG_LEVEL", "loud")
    server = TileServer()
    try:
        with pytest.raises(SettingsError, match="^LEAFMAP_TILES_LOG_LEVEL='loud': the log level must be one of"):
            server.start()
        assert server.pid is None and not server.alive()
    finally:
        server.close()


def test_a_child_that_ends_before_its_port_is_said_so():
    """Not "no port reported by the child within 60 s" at once for a child that exited."""
    from leafmap_tiles.client.server import _readline_with_timeout
    from leafmap_tiles.errors import TileServerError

    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"], stdout=subprocess.PIPE)
    try:
        with pytest.raises(TileServerError, match=r"the child exited \(exit code 3\) before it reported its port; "
                                                  "set LEAFMAP_TILES_DEBUG=1"):
            _readline_with_timeout(proc, 60)
    finally:
        proc.stdout.close()
        proc.wait(10)


@pytest.mark.parametrize("database, words", [
    ("s3://", "'s3://': expected s3://bucket/key"),
    ("notes.md", "not a Terracotta database: {tmp}/notes.md (file is not a database); create() or leafmap-tiles "
                 "ingest makes one"),
    ("other.sqlite", "not a Terracotta database: {tmp}/other.sqlite (no such table: terracotta); create() or "
                     "leafmap-tiles ingest makes one"),
    # malformed URLs let urlparse's ValueError out as a traceback (a re-check of issue 17)
    ("postgresql://u@[::1/db", "malformed database URL 'postgresql://u@[::1/db': Invalid IPv6 URL"),
    ("mysql://h:99999/db", "malformed database URL: Port out of range 0-65535"),
])
def test_cli_serve_a_bad_database_is_one_line_and_exit_2(tmp_path, database, words):
    import sqlite3

    (tmp_path / "notes.md").write_text("# not a database\n" * 200)
    con = sqlite3.connect(tmp_path / "other.sqlite")
    con.execute("CREATE TABLE other (a INTEGER)")
    con.commit()
    con.close()
    proc = subprocess.run([sys.executable, "-m", "leafmap_tiles.cli", "serve", "-d", database, "--port", "0"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [f"leafmap-tiles serve: error: {words.format(tmp=tmp_path)}"]
    assert proc.stdout == ""


def test_counts_must_be_whole_numbers():
    for name, rule in settings.NUMBERS.items():
        if rule.kind is int:
            with pytest.raises(SettingsError, match=f"^{name}='2.5' is not a whole number: give a whole number"):
                Settings.from_env({name: "2.5"})
        else:
            assert Settings.from_env({name: "2.5"}) != Settings()
    assert math.isclose(Settings.from_env({"LEAFMAP_TILES_TILE_DEADLINE": "1e-1"}).tile_deadline, 0.1)


def test_a_bad_setting_stops_a_server_before_it_starts(monkeypatch):
    """The kernel's server is not started (no process) and the session app is not made."""
    from leafmap_tiles.client.server import TileServer
    from leafmap_tiles.server.app import default_deadlines

    monkeypatch.setenv("LEAFMAP_TILES_TILE_DEADLINE", "-1")
    with pytest.raises(SettingsError, match="LEAFMAP_TILES_TILE_DEADLINE='-1' is negative"):
        default_deadlines()
    server = TileServer()
    try:
        with pytest.raises(SettingsError, match="LEAFMAP_TILES_TILE_DEADLINE"):
            server.start()
        assert server.pid is None and not server.alive()
    finally:
        server.close()


@pytest.mark.parametrize("command", [["serve", "-d", "no.sqlite", "--port", "0"], ["ingest", "x_{k}.tif", "-o", "x.sqlite"]])
def test_cli_prints_a_bad_setting_as_one_line(tmp_path, command):
    env = dict(os.environ, LEAFMAP_TILES_WORKERS="-3")
    proc = subprocess.run([sys.executable, "-m", "leafmap_tiles.cli", *command], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"leafmap-tiles {command[0]}: error: LEAFMAP_TILES_WORKERS='-3' is negative: give a whole number of "
        "threads >= 0 (0: each server's default; empty: the default)"]
    assert proc.stdout == "" and list(tmp_path.iterdir()) == []  # nothing started, nothing written


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
