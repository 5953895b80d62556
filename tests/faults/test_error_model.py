"""The parts of the error model alone: the GDAL classifier, the status table, path
scrubbing, the rate-limited log and the remote back-off (a fake clock: no waiting)."""

from __future__ import annotations

import logging
import os

import pytest

from leafmap_tiles.errors import (
    AuthenticationError,
    BadRequestError,
    DatasetNotFoundError,
    InvalidSourceError,
    SourceNotFoundError,
    SourceTimeoutError,
    SourceUnreachableError,
    StyleError,
    ClientGoneError,
    LeafmapTilesError,
    RenderDeadlineError,
    TileOutsideBoundsError,
    UnknownSourceError,
    UnreadableDataset,
    from_name,
)
from leafmap_tiles.gdal_errors import classify
from leafmap_tiles.render.remote import RemoteHealth
from leafmap_tiles.server.errors import RateLimitedLog, scrub, status_for

URL = "http://example.invalid/a.tif"
READ_FAIL = "TIFFFillTile:Read error at row 256, col 256, tile 63; got 0 bytes, expected 4782"


def _chained(outer: str, inner: str) -> Exception:
    """An exception as rasterio 1.4 raises it: the GDAL errors of the call chained."""
    try:
        try:
            raise RuntimeError(inner)
        except RuntimeError as cause:
            raise OSError(outer) from cause
    except OSError as exc:
        return exc


@pytest.mark.parametrize("path, exc, elapsed, cls", [
    # a read that GDAL reports like a truncated file, but took the HTTP timeout: a timeout
    (URL, _chained("Read failed. See previous exception for details.", READ_FAIL), 6.0, SourceTimeoutError),
    # the same words quickly, or on a local file: a corrupt file
    (URL, _chained("Read failed. See previous exception for details.", READ_FAIL), 0.1, InvalidSourceError),
    ("/data/a.tif", _chained("Read failed. See previous exception for details.", READ_FAIL), 60.0, InvalidSourceError),
    (URL, OSError("CURL error: Operation timed out after 3005 milliseconds with 0 bytes received"), 3.0,
     SourceTimeoutError),
    (URL, OSError("CURL error: Failed to connect to 127.0.0.1 port 1: Connection refused"), 0.0,
     SourceUnreachableError),
    (URL, OSError("CURL error: Recv failure: Connection reset by peer"), 0.0, SourceUnreachableError),
    (URL, OSError("CURL error: Could not resolve host: example.invalid"), 0.0, SourceUnreachableError),
    (URL, OSError("HTTP response code: 503"), 0.0, SourceUnreachableError),
    (URL, OSError("HTTP response code: 401"), 0.0, AuthenticationError),
    (URL, OSError("HTTP response code: 404"), 0.0, SourceNotFoundError),
    ("/data/a.tif", OSError("'/data/a.tif' not recognized as being in a supported file format."), 0.0,
     InvalidSourceError),
    # the wording of hosts that refuse without GDAL's "HTTP response code" (was providers.stac's rule)
    (URL, OSError("CURL error: The requested URL returned error: 403 Forbidden"), 0.0, AuthenticationError),
    # a "403" in the URL itself is not an answer
    ("http://example.invalid/403/a.tif", OSError("http://example.invalid/403/a.tif: TIFFReadDirectory failed"),
     0.0, InvalidSourceError),
    # GDAL's words for a file that is not there (was providers.stac's rule too)
    ("/data/gone.tif", OSError("/data/gone.tif: No such file or directory"), 0.0, SourceNotFoundError),
    # ... but a host that cannot be reached stays unreachable, whatever GDAL adds
    (URL, _chained("'/vsicurl/http://example.invalid/a.tif' does not exist in the file system, and is not "
                   "recognized as a supported dataset name.", "CURL error: Connection refused"), 0.0,
     SourceUnreachableError),
])
def test_classify(path, exc, elapsed, cls, monkeypatch):
    monkeypatch.setenv("GDAL_HTTP_TIMEOUT", "10")
    monkeypatch.setenv("GDAL_HTTP_CONNECTTIMEOUT", "5")
    err = classify(path, exc, "read", elapsed=elapsed)
    assert type(err) is cls, (err, cls)
    assert path in str(err)  # the kernel sees which file; servers scrub it for the browser
    if cls is InvalidSourceError and "Read error" in READ_FAIL and path == URL:
        assert "got 0 bytes" in str(err)  # the root cause, not "see previous exception"


def test_status_table():
    assert status_for(BadRequestError("x")) == 400
    assert status_for(StyleError("x")) == 400
    assert status_for(UnknownSourceError("x")) == 404
    assert status_for(DatasetNotFoundError("x")) == 404
    assert status_for(AuthenticationError("x")) == 401
    assert status_for(SourceTimeoutError("x")) == 504
    assert status_for(SourceUnreachableError("x")) == 502
    # a file the request names (registration) vs one the server already serves
    assert status_for(InvalidSourceError("x"), registering=True) == 400
    assert status_for(InvalidSourceError("x")) == 500
    assert status_for(SourceNotFoundError("x")) == 500
    assert status_for(KeyError("bug")) == 500
    # the classes that were defined by the routes or as control flow are in the one tree
    assert status_for(RenderDeadlineError("x")) == 503
    assert status_for(ClientGoneError("x")) == 503
    assert status_for(UnreadableDataset("x")) == 500
    for cls in (RenderDeadlineError, ClientGoneError, UnreadableDataset, TileOutsideBoundsError):
        assert issubclass(cls, LeafmapTilesError) and from_name(cls.__name__, "m").__class__ is cls


def test_one_path_rule():
    from leafmap_tiles._paths import check_local_path, is_remote, to_gdal_path

    for remote in ("http://h/a.tif", "https://h/a.tif", "s3://b/k.tif", "gs://b/k", "az://c/k",
                   "/vsicurl/http://h/a.tif", "/vsimem/x.tif", "ftp://h/a.tif"):
        assert is_remote(remote), remote
        check_local_path(remote)  # not checked
    for local in ("/data/a.tif", "a.tif", "file:///data/a.tif", r"C:\data\a.tif"):
        assert not is_remote(local), local
    assert is_remote(("/data/a.tif", "https://h/b.tif")) and not is_remote(["/a.tif", "/b.tif"])
    assert to_gdal_path("s3://b/k.tif") == "/vsis3/b/k.tif" and to_gdal_path("gs://b/k") == "/vsigs/b/k"
    with pytest.raises(SourceNotFoundError):
        check_local_path("/nonexistent/leafmap_tiles/a.tif")


def test_scrub():
    names = {"/home/u/x.tif": "source s1"}
    assert scrub("/home/u/x.tif: pixel data cannot be read (TIFFFillTile: x.tif)", names) == \
        "source s1: pixel data cannot be read (TIFFFillTile: <file>)"
    assert scrub("/vsicurl/http://a.b/c.tif: no answer") == "<url>: no answer"
    assert scrub("https://user@host.example/path/c.tif?x=1 failed") == "<url> failed"
    assert scrub("cannot open /srv/data/rasters/a_1 now") == "cannot open <file> now"
    assert scrub(r"C:\data\x.tif is bad") == "<file> is bad"
    assert scrub("rel/dir/a_1.tif cannot") == "<file> cannot"
    for keep in ("tile 3/4/5 does not exist", "see /colormap for names", "dataset a/2 cannot be read",
                 "listed by /swagger.json", "nodata=-1 is not valid for uint8"):
        assert scrub(keep) == keep


def test_scrub_leaves_no_part_of_a_name_with_spaces():
    """_FILE_NAME stopped at a space: "(shade copy.tif: ...)" became "(shade <file>: ...)"."""
    gdal = "pixel data cannot be read (shade copy.tif: TIFFReadDirectory:Failed to read directory at offset 7)"
    assert scrub(gdal) == "pixel data cannot be read (<file>: TIFFReadDirectory:Failed to read directory at offset 7)"
    # a source's own file name becomes its name, as its path does; not inside a longer name
    names = {"/d/secret dir/shade copy.tif": "source s1", "shade copy.tif": "source s1", "a.tif": "source s2"}
    assert scrub("/d/secret dir/shade copy.tif: not found; " + gdal, names) == \
        "source s1: not found; pixel data cannot be read (source s1: TIFFReadDirectory:Failed to read directory at offset 7)"
    assert scrub("data.tif and a.tif", names) == "<file> and source s2"
    assert scrub("'/d/my rasters/shade copy.tif' not recognized as being in a supported file format") == \
        "'<file>' not recognized as being in a supported file format"
    assert scrub("my old scene.vrt: No such file or directory") == "<file>: No such file or directory"
    assert scrub("cannot open the file named foo.tif") == "cannot open the file named <file>"


def test_http_layer_refusals_are_a_class_of_the_tree():
    """The servers' ``"error": "HTTPError"`` (404 route, 405 method, 403 token) is a
    class, not a string; the kernel raises it, still a TileServerError/RuntimeError."""
    from starlette.exceptions import HTTPException

    from leafmap_tiles.errors import HTTPError, TileServerError, from_name
    from leafmap_tiles.server.errors import error_response

    err = from_name("HTTPError", "Not Found")
    assert type(err) is HTTPError and isinstance(err, TileServerError) and isinstance(err, RuntimeError)
    answer = error_response({}, HTTPException(405))
    assert answer.status_code == 405 and answer.body == b'{"message":"Method Not Allowed","error":"HTTPError"}'


def test_rate_limited_log(caplog):
    now = [0.0]
    log = RateLimitedLog(logging.getLogger("leafmap_tiles.test"), burst=3, window=10.0, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="leafmap_tiles.test")
    written = [log(logging.WARNING, f"line {i}") for i in range(10)]
    assert written == [True] * 3 + [False] * 7
    now[0] = 10.0
    assert log(logging.WARNING, "later")
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == ["line 0", "line 1", "line 2", "later (7 similar line(s) left out)"]


def test_remote_backoff_probe_and_recovery(monkeypatch):
    cleared = []
    monkeypatch.setattr("leafmap_tiles.render.remote.clear_gdal_cache", cleared.append)
    monkeypatch.setenv("GDAL_HTTP_TIMEOUT", "10")
    monkeypatch.setenv("GDAL_HTTP_CONNECTTIMEOUT", "5")
    now = [100.0]
    h = RemoteHealth(first=1.0, maximum=30.0, clock=lambda: now[0])
    h.check(URL)  # never failed: passes
    h.failed(URL, SourceTimeoutError(f"{URL}: no answer"))
    assert cleared == [URL]
    with pytest.raises(SourceTimeoutError, match="next retry in 1 s"):
        h.check(URL)
    now[0] += 1.0
    h.check(URL)  # the probe, after GDAL's cache for the URL was cleared
    assert cleared == [URL, URL]
    with pytest.raises(SourceTimeoutError):
        h.check(URL)  # others wait for the probe
    h.failed(URL, SourceUnreachableError(f"{URL}: refused"))  # probe failed: 2 s back-off
    now[0] += 1.5
    with pytest.raises(SourceUnreachableError):
        h.check(URL)
    now[0] += 0.5
    h.check(URL)  # probe
    now[0] += 2 * 5.0 + 1.0  # its outcome never reported: another caller may probe
    h.check(URL)
    h.ok(URL)
    h.check(URL)
    h.check(URL)
    assert h.failing() == []
    for _ in range(10):
        h.failed(URL, SourceTimeoutError("x"))
    now[0] += 29.0
    with pytest.raises(SourceTimeoutError):
        h.check(URL)  # capped at 30 s
    now[0] += 1.0
    h.check(URL)
    h.reset(URL)
    assert h.failing() == []


# ---------------------------------------------------------------- one classifier (issue 17)

S3_DB = "/vsis3/bucket/db.sqlite"


@pytest.mark.parametrize("errno, message, cls", [
    # GDAL's VSI error numbers (what the S3 key store's HEAD/download raise) ...
    (9, "InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records.",
     "S3AccessDeniedError"),
    (6, "Access Denied", "S3AccessDeniedError"),
    (8, "The specified key does not exist.", "SourceNotFoundError"),
    (1, "/vsis3/bucket/db.sqlite: stat failed", "SourceNotFoundError"),
    # ... or only S3's words and codes, as another call words them
    (0, "HTTP error code 403 on the request", "S3AccessDeniedError"),
    (0, "NoSuchBucket: The specified bucket does not exist", "SourceNotFoundError"),
    (0, "server said 404", "SourceNotFoundError"),
])
def test_classify_vsi_errors(errno, message, cls):
    from leafmap_tiles.errors import VSIError

    exc = VSIError(errno, message)
    assert isinstance(exc, LeafmapTilesError) and isinstance(exc, OSError) and exc.errno == errno
    err = classify(S3_DB, exc)  # a VSIError is what GDAL said: classified, not passed through
    assert type(err).__name__ == cls
    assert "s3://bucket/db.sqlite" in str(err) and message in str(err)


def test_the_s3_store_takes_the_classifier_class():
    """store/remote.py no longer reads GDAL's words: classify, then for_database."""
    from leafmap_tiles.errors import InvalidDatabaseError, S3AccessDeniedError, VSIError, for_database

    denied = for_database("s3://bucket/db.sqlite", classify(S3_DB, VSIError(9, "InvalidAccessKeyId")))
    assert type(denied) is S3AccessDeniedError and "403" in str(denied)
    missing = for_database("s3://bucket/db.sqlite", classify(S3_DB, VSIError(7, "NoSuchBucket")))
    assert type(missing) is InvalidDatabaseError
    assert str(missing).startswith("Could not retrieve database s3://bucket/db.sqlite: no such object or bucket")
    other = for_database("s3://bucket/db.sqlite", classify(S3_DB, VSIError(3, "internal error")))
    assert type(other) is InvalidDatabaseError and "internal error" in str(other)


@pytest.mark.parametrize("exc, kind", [
    (OSError("'x.tif' not recognized as being in a supported file format."), "not_raster"),
    (OSError("x.tif: TIFFReadDirectory: Failed to read directory at offset 8"), "not_raster"),
    (OSError("x.tif: Cannot read TIFF header."), "not_raster"),
    (OSError("x.tif: Not a TIFF or MDI file, bad magic number 8224 (0x2020)"), "not_raster"),
    (OSError("HTTP response code: 401"), "auth"),
    (OSError("HTTP response code: 404"), "not_found"),
    (OSError("CURL error: Operation timed out after 3005 milliseconds"), "timeout"),
    (OSError("CURL error: Connection refused"), "error"),
    (InvalidSourceError("http://h/x.tif is not a raster format that GDAL can read (...)"), "not_raster"),
    (AuthenticationError("refused"), "auth"),
    (SourceTimeoutError("slow"), "timeout"),
    (SourceUnreachableError("down"), "error"),
])
def test_error_kind_of_a_header_read(exc, kind):
    from leafmap_tiles.collections.headers import classify_error
    from leafmap_tiles.gdal_errors import error_kind

    assert error_kind(exc, "http://h/x.tif") == kind
    assert classify_error(exc, "http://h/x.tif") == kind  # the collections' name for it


def test_is_outside():
    from rio_tiler.errors import PointOutsideBounds, TileOutsideBounds

    from leafmap_tiles.gdal_errors import is_outside

    assert is_outside(PointOutsideBounds("x")) and is_outside(TileOutsideBounds("x"))
    proj = RuntimeError("Point outside of projection domain")
    assert is_outside(proj) and not is_outside(proj, domain=False)
    assert not is_outside(OSError("TIFFFillTile: Read error"))


# ---------------------------------------------------------------- one path rule (issue 17)

def test_file_urls_are_local_files(tmp_path, monkeypatch):
    from leafmap_tiles import _paths

    monkeypatch.chdir(tmp_path)
    assert _paths.from_file_url("file:///data/a.tif") == "/data/a.tif"
    assert _paths.from_file_url("FILE:///data/a.tif") == "/data/a.tif"
    assert _paths.from_file_url("file://localhost/data/a.tif") == "/data/a.tif"
    assert _paths.from_file_url("file:///data/my%20scene%231.tif") == "/data/my scene#1.tif"
    assert _paths.from_file_url("file://rel/a.tif") == "rel/a.tif"  # as store.open always read it
    assert _paths.from_file_url("/data/a.tif") == "/data/a.tif" and _paths.from_file_url("a.tif") == "a.tif"
    assert _paths.local_path("file:///data/a.tif") == "/data/a.tif"
    assert _paths.local_path("a.tif") == str(tmp_path / "a.tif")
    assert _paths.local_path("~/a.tif") == os.path.expanduser("~/a.tif")
    # a file:// URL of a file that is there is checked as that file
    f = tmp_path / "x y.tif"
    f.write_bytes(b"II*\x00")
    _paths.check_local_path(f.as_uri())
    assert f.as_uri().endswith("x%20y.tif") and _paths.local_path(f.as_uri()) == str(f)
    with pytest.raises(SourceNotFoundError, match="not found: /nonexistent/a.tif"):
        _paths.check_local_path("file:///nonexistent/a.tif")
    (tmp_path / "empty.tif").write_bytes(b"")
    with pytest.raises(InvalidSourceError, match="empty"):
        _paths.check_local_path((tmp_path / "empty.tif").as_uri())


def test_one_url_to_gdal_path_rule(tmp_path, monkeypatch):
    """The four helpers that were (``_paths.to_gdal_path``, ``render.remote.gdal_path``,
    ``client.stack.gdal_path``, ``s3.vsi_path``) are one, with each caller's form."""
    from leafmap_tiles import _paths, s3
    from leafmap_tiles.errors import S3ConfigurationError

    monkeypatch.chdir(tmp_path)
    to = _paths.to_gdal_path
    url = "https://h.example/a.tif?token=x&b=1"
    assert to(url) == url  # add_raster: GDAL reads URLs itself
    assert to(url, vsicurl=True) == "/vsicurl/" + url  # GDAL's cache key, a VRT member: query kept
    assert to("http://h/a.tif", vsicurl=True) == "/vsicurl/http://h/a.tif"
    for u, want in (("s3://b/k/a.tif", "/vsis3/b/k/a.tif"), ("gs://b/a.tif", "/vsigs/b/a.tif"),
                    ("az://c/a.tif", "/vsiaz/c/a.tif")):
        assert to(u) == to(u, vsicurl=True) == want
    for kept in ("/vsis3/b/k.tif", "/vsicurl/https://h/a.tif", "/vsimem/x.tif", "ftp://h/a.tif"):
        assert to(kept) == to(kept, vsicurl=True) == kept
    assert to("file:///data/a%20b.tif") == "/data/a b.tif"
    assert to("a.tif") == str(tmp_path / "a.tif")
    # s3.vsi_path: the same path, after checking bucket and key
    assert s3.vsi_path("s3://b/k/a.tif") == to("s3://b/k/a.tif") and s3.vsi_path("/vsis3/b/k") == "/vsis3/b/k"
    for bad in ("s3://bucket-only", "s3://b/", "https://h/a.tif"):
        with pytest.raises(S3ConfigurationError):
            s3.vsi_path(bad)


def test_one_rule_each_for_vsicurl_http_s3_and_mosaics():
    """``/vsicurl/`` stripped, "is this http(s)?", "is this on S3?" and "a mosaic's
    members" were written in several modules, some case-sensitive; now one helper each."""
    from leafmap_tiles import _gdal, _hosts, _paths
    from leafmap_tiles.protocol import Mosaic
    from leafmap_tiles.server import gdalenv

    assert _paths.from_vsicurl("/vsicurl/https://h/a.tif?x=1") == "https://h/a.tif?x=1"
    assert _paths.from_vsicurl("https://h/a.tif") == "https://h/a.tif" and _paths.from_vsicurl("/d/a.tif") == "/d/a.tif"
    for url in ("http://h/a.tif", "HTTPS://h/a.tif", "Http://h/"):
        assert _paths.is_http_url(url)
    for other in ("/vsicurl/http://h/a.tif", "s3://b/k", "ftp://h/a.tif", "/d/http://x", ""):
        assert not _paths.is_http_url(other)
    for on_s3 in ("s3://b/k.tif", "S3://b/k.tif", "/vsis3/b/k.tif", Mosaic(["/d/a.tif", "s3://b/k.tif"]),
                  ["/d/a.tif", "/vsis3/b/k.tif"]):
        assert _paths.is_s3(on_s3), on_s3
    for not_s3 in ("/d/a.tif", "https://s3.amazonaws.com/b/k.tif", "/vsigs/b/k", Mosaic(["/d/a.tif", "/d/b.tif"]),
                   None, 5, ()):
        assert not _paths.is_s3(not_s3), not_s3
    assert _paths.is_remote(Mosaic(["/d/a.tif", "https://h/b.tif"])) and _paths.is_remote(["/d/a", "/vsimem/x"])
    assert not _paths.is_remote(Mosaic(["/d/a.tif", "/d/b.tif"])) and not _paths.is_remote(None)
    # GDAL matches path-specific options on the literal /vsicurl/ form; rasterio opens
    # HTTPS://h/a.tif as /vsicurl/https://h/a.tif, so the scheme is lowered (a tryout saw
    # credentials no longer sent for an upper-case scheme when it was kept as written)
    assert _gdal._vsi("HTTPS://H.example/") == "/vsicurl/https://H.example/" == \
        _paths.to_gdal_path("HTTPS://H.example/", vsicurl=True)
    assert _gdal._vsi("/vsis3/b/") == "/vsis3/b/"
    assert gdalenv._url_prefix("/vsicurl/HTTPS://h.example:8443/a/b.tif") == "https://h.example:8443/"
    assert gdalenv._url_prefix("http://[::1/x.tif") is None and gdalenv._url_prefix("s3://b/k") is None
    assert _hosts.url_host("/vsicurl/https://H.example/a.tif") == ("h.example", 443)
    assert _hosts.url_host("http://[::1/x.tif") == ("", None) and not _hosts.host_matches("http://[::1/x", "::1")


def test_a_vrt_stack_names_members_by_their_gdal_paths(tmp_path):
    """client/stack.py writes the members' GDAL paths: a file:// URL is its local file."""
    from leafmap_tiles.client.stack import build_stack
    from tests.conftest import data

    src = data("cog.tif")
    out = build_stack([{"name": "a", "path": "file://" + src}, {"name": "b", "path": src}], str(tmp_path))
    text = open(out["path"]).read()
    assert text.count(f">{src}</SourceFilename>") == 2 and "file:" not in text
