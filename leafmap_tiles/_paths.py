"""Which paths are remote and which are local files: the one rule of every part.

A *remote* path is read over the network by GDAL: an ``http(s)://``, ``s3://``,
``gs://``, ``az://`` (or any other ``scheme://`` except ``file://``) URL, or a GDAL
virtual-file-system path (``/vsicurl/...``, ``/vsis3/...``, and every other ``/vsi``
prefix, e.g. ``/vsimem/``, which is not a local file either).  Anything else is a
local file path, checked by :func:`check_local_path` before GDAL sees it (so the
user gets ``SourceNotFoundError`` rather than GDAL's wording).

A ``file://`` URL is the local file it names (:func:`from_file_url`):
``file:///data/a.tif`` is ``/data/a.tif``, percent-escapes decoded
(``pathlib.Path.as_uri()`` writes a space as ``%20``).

A source of several files (a mosaic) is remote when any of its files is.

:func:`to_gdal_path` is the one translation of a URL into the path GDAL opens
(``s3://`` -> ``/vsis3/``, ``gs://`` -> ``/vsigs/``, ``az://`` -> ``/vsiaz/``, and
with ``vsicurl=True`` ``http(s)://`` -> ``/vsicurl/http(s)://``, the form GDAL's
caches are keyed by and a VRT names its members by); :func:`leafmap_tiles.s3.vsi_path`
adds the check that an ``s3://`` URL has a bucket and a key.  :func:`from_vsicurl` is its
inverse for ``/vsicurl/`` paths, :func:`is_http_url` and :func:`is_s3` the one test of
"http(s)?" and "on S3?" (schemes in any case), :func:`check_url` refuses a URL that cannot
be split into its parts.  A mosaic's members are :func:`leafmap_tiles.protocol.members`.
"""

from __future__ import annotations

import os
import re
import urllib.parse

from leafmap_tiles.errors import InvalidSourceError, SourceIsDirectoryError, SourceNotFoundError
from leafmap_tiles.protocol import members, source_path

__all__ = ["REMOTE_PREFIXES", "check_local_path", "check_url", "from_file_url", "from_vsicurl", "is_file_url",
           "is_http_url", "is_remote", "is_remote_path", "is_s3", "local_path", "to_gdal_path"]

#: Prefixes of the remote paths users give most (see :func:`is_remote_path` for the rule).
REMOTE_PREFIXES: tuple[str, ...] = ("http://", "https://", "s3://", "gs://", "az://", "/vsi")

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_remote_path(path: str) -> bool:
    """Whether the one path ``path`` is a URL (any ``scheme://`` but ``file://``) or a
    GDAL ``/vsi`` path rather than a local file."""
    if path.startswith(REMOTE_PREFIXES):
        return True
    return bool(_SCHEME.match(path)) and not path.lower().startswith("file://")


def is_remote(path: object) -> bool:
    """Whether ``path`` (a string, or a mosaic: :class:`~leafmap_tiles.protocol.Mosaic`,
    or the list of paths JSON carries) names any remote path (:func:`is_remote_path`);
    anything else (None, a number) is not remote."""
    if isinstance(path, str):
        return is_remote_path(path)
    checked = source_path(path)
    return checked is not None and any(is_remote_path(p) for p in members(checked))


def is_http_url(path: str) -> bool:
    """Whether ``path`` is an ``http://`` or ``https://`` URL (any case of the scheme)."""
    return path[:8].lower().startswith(("http://", "https://"))


def from_vsicurl(path: str) -> str:
    """The URL of a ``/vsicurl/`` path (``/vsicurl/https://h/a.tif`` -> ``https://h/a.tif``),
    the inverse of ``to_gdal_path(url, vsicurl=True)``; any other path unchanged."""
    return path[len("/vsicurl/"):] if path.startswith("/vsicurl/") else path


def is_s3_url(path: str) -> bool:
    """Whether ``path`` is an ``s3://`` URL (any case of the scheme; not a ``/vsis3/`` path)."""
    return path[:5].lower() == "s3://"


def is_s3(path: object) -> bool:
    """Whether ``path`` is on S3: an ``s3://`` URL (any case of the scheme) or a
    ``/vsis3/`` path; a mosaic (or the list of paths JSON carries) when any member is."""
    if isinstance(path, str):
        return is_s3_url(path) or path.startswith("/vsis3/")
    checked = source_path(path)
    return checked is not None and any(is_s3(p) for p in members(checked))


def is_file_url(path: str) -> bool:
    """Whether ``path`` is a ``file://`` URL (any case of the scheme)."""
    return path[:7].lower() == "file://"


def from_file_url(path: str) -> str:
    """The local path a ``file://`` URL names (percent-escapes decoded; a
    ``localhost`` host dropped: ``file://localhost/data/a.tif`` is ``/data/a.tif``);
    any other ``path`` is returned unchanged.  ``file://data/a.tif`` (no third slash)
    is read as the relative path ``data/a.tif``, as the key store always did."""
    if not is_file_url(path):
        return path
    rest = urllib.parse.unquote(path[7:])
    if rest[:10].lower() == "localhost/":
        rest = rest[9:]
    return rest


def local_path(path: str) -> str:
    """The absolute path of a local file given as a path (``~`` expanded, relative to
    the current directory) or a ``file://`` URL (:func:`from_file_url`)."""
    return os.path.abspath(os.path.expanduser(from_file_url(path)))


def check_local_path(path: str) -> None:
    """Raise the specific error for a local ``path`` (or a ``file://`` URL, checked as
    the file it names) that cannot be a raster file; remote paths
    (:func:`is_remote_path`) are not checked.

    Raises:
        SourceNotFoundError: nothing exists at ``path``.
        SourceIsDirectoryError: ``path`` is a directory.
        InvalidSourceError: ``path`` is an empty file (0 bytes).
    """
    if is_remote_path(path):
        return
    path = from_file_url(path)
    if not os.path.exists(path):
        raise SourceNotFoundError(f"raster file not found: {path}")
    if os.path.isdir(path):
        raise SourceIsDirectoryError(f"{path} is a directory, not a raster file")
    if os.path.getsize(path) == 0:
        raise InvalidSourceError(f"{path} is an empty file (0 bytes), not a raster")


def check_url(path: str) -> None:
    """Raise :class:`InvalidSourceError` for a URL (``scheme://...``, also after
    ``/vsicurl/``) that cannot be split into its parts (``http://[::1/x.tif``: an
    unclosed IPv6 address; ``http://h:port/``: a port that is not a number from 0 to
    65535); other paths are not checked.  Code that asks a URL's host
    (:mod:`leafmap_tiles._hosts`, the server's credentials) may then split it freely.

    Raises:
        InvalidSourceError: ``path`` is such a malformed URL; the message names it.
    """
    url = from_vsicurl(path)
    if not _SCHEME.match(url):
        return
    try:
        urllib.parse.urlsplit(url).port  # noqa: B018  (.port raises for a bad port)
    except ValueError as exc:
        raise InvalidSourceError(f"malformed URL {path!r}: {exc}") from None


_VSI_SCHEMES = (("s3://", "/vsis3/"), ("gs://", "/vsigs/"), ("az://", "/vsiaz/"))


def to_gdal_path(path: str, vsicurl: bool = False) -> str:
    """The path GDAL opens for ``path``: ``s3://bucket/key`` -> ``/vsis3/bucket/key``,
    ``gs://`` -> ``/vsigs/``, ``az://`` -> ``/vsiaz/``; ``http(s)://`` URLs unchanged
    (GDAL reads them itself) or, with ``vsicurl``, ``/vsicurl/`` + the URL (scheme in
    lower case, query string kept), the name GDAL's caches and a VRT's members use; ``/vsi`` paths and
    other ``scheme://`` URLs unchanged; a local path or ``file://`` URL made the
    absolute local path (:func:`local_path`).  Nothing is checked (see
    :func:`leafmap_tiles.s3.vsi_path` for an ``s3://`` URL's bucket and key)."""
    if is_http_url(path):
        # the scheme in lower case, as rasterio opens such a URL (``HTTP://h/a.tif`` is read
        # as ``/vsicurl/http://h/a.tif``): the form GDAL's caches and path-specific
        # options (credentials) are matched on
        scheme, rest = path.split("://", 1)
        return f"/vsicurl/{scheme.lower()}://{rest}" if vsicurl else path
    low = path[:8].lower()
    for scheme, vsi in _VSI_SCHEMES:
        if low.startswith(scheme):
            return vsi + path[len(scheme):]
    if is_remote_path(path):
        return path
    return local_path(path)
