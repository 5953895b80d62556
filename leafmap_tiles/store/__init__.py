"""Terracotta-compatible key store: rasters in a database keyed by ordered string keys.

>>> from leafmap_tiles import store
>>> ks = store.open("terracotta.sqlite")      # or "postgresql://user:pw@host/db"
>>> ks.ingest("rasters/{sensor}_{date}_{band}.tif")
>>> ks.get_datasets({"band": ["red", "nir"]})
>>> ks.get_metadata(["S2", "20200601", "nir"])["range"]

Modules: :mod:`.layout` (Terracotta's tables and row encoding), :mod:`.metadata`
(statistics of a raster), :mod:`.base` (the driver API), :mod:`.sql` (SQLAlchemy
back end, PostgreSQL, MySQL), :mod:`.sqlite` (SQLite file), :mod:`.patterns`
(raster patterns), :mod:`.ingest` (pattern to database), :mod:`.remote` (a
read-only SQLite file on S3).
"""

from __future__ import annotations

import os
import urllib.parse

from ..errors import StoreError
from .base import KeyStore
from .metadata import compute_metadata

__all__ = ["open", "connect", "KeyStore", "compute_metadata"]


def connect(url: str, timeout: float = 30.0) -> KeyStore:
    """A running Terracotta-compatible server (``leafmap-tiles serve`` or Terracotta
    itself) as a read-only key store: keys, datasets and metadata over HTTP; its
    datasets' tiles are rendered by that server (:class:`~.http.RemoteStore`), so
    :meth:`Map.add_dataset` and :meth:`Map.dataset_layers` accept it.

    Args:
        url: the server's root, ``http(s)://host:port[/prefix]``, or ``host:port``
            (read as ``http://host:port``, as ``terracotta connect`` does).
        timeout: seconds per request.

    Raises:
        StoreError: neither an http(s) URL nor ``host:port``.  Requests raise ``SourceUnreachableError``
            (server down), ``InvalidDatabaseError`` (not a Terracotta answer).
    """
    from .http import RemoteStore

    return RemoteStore(url, timeout=timeout)


def open(path_or_url: str | os.PathLike) -> KeyStore:  # noqa: A001 - mirrors terracotta.get_driver
    """Open a key store; nothing is read or created until it is used.

    Args:
        path_or_url: a file path (or ``sqlite:///path``) for SQLite;
            ``postgresql://user:password@host:port/database`` or
            ``mysql://user:password@host:port/database`` for SQL servers;
            ``s3://bucket/key.sqlite`` for a Terracotta SQLite file on S3, read-only
            (:class:`~.remote.RemoteSQLiteStore`: downloaded on first use, downloaded
            again when the object changes; endpoint and credentials as in
            :mod:`leafmap_tiles.s3`).

    Returns:
        a :class:`KeyStore`; call :meth:`KeyStore.create` (or :meth:`KeyStore.ingest`)
        to make a new database.

    Raises:
        StoreError: empty path, or an unsupported URL scheme.
        S3ConfigurationError: an ``s3://`` URL without bucket or key, or S3 settings
            that cannot be used (e.g. an unknown ``AWS_PROFILE``).
    """
    text = os.fspath(path_or_url)
    if not text:
        raise StoreError("Database url or path must not be empty")
    try:
        scheme = urllib.parse.urlparse(text).scheme.split("+")[0].lower()
    except ValueError as exc:  # e.g. "postgresql://u@[::1/db": an unclosed IPv6 address
        raise StoreError(f"malformed database URL {text[:80]!r}: {exc}") from None
    if scheme == "postgresql":
        from .sql import PostgreSQLStore

        return PostgreSQLStore(text)
    if scheme == "s3":
        from .. import s3
        from .remote import RemoteSQLiteStore

        s3.settings()
        return RemoteSQLiteStore(text)
    if scheme == "mysql":
        from .sql import MySQLStore

        return MySQLStore(text)
    if scheme in ("", "sqlite", "file") or (len(scheme) == 1 and os.name == "nt"):
        from .sqlite import SQLiteStore

        from .. import _paths

        return SQLiteStore(_paths.from_file_url(text))  # a file:// URL is the local file it names
    hint = "; for a running Terracotta server use store.connect(url)" if scheme in ("http", "https") else ""
    raise StoreError(
        f"unsupported key store URL scheme {scheme!r}: use a file path, postgresql://, mysql:// or s3://{hint}"
    )
