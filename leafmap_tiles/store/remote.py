"""A Terracotta SQLite database on S3 (``s3://bucket/db.sqlite``), read-only.

As Terracotta's remote SQLite driver does, the file is downloaded once into a local
temporary copy that every query reads, and downloaded again when it may have
changed; writes are refused.  Unlike Terracotta, which downloads the whole file
again whenever its copy is older than ``REMOTE_DB_CACHE_TTL`` seconds, the object's
``ETag``/size/``Last-Modified`` are asked (one HEAD request) at most every
:attr:`RemoteSQLiteStore.cache_ttl` seconds, and the file is downloaded again only
when they changed.  A new copy replaces the old one atomically; queries already
running finish on the old one.  When the check fails (the endpoint is down) the copy
that was there is kept and the check is tried again after ``cache_ttl``.  A download
is opened as a Terracotta SQLite database and its schema checked
(:func:`validate_copy`) before it replaces the copy: a broken or foreign object
(an upload cut short, another file under the same key) is refused with a warning
in the log, the old copy keeps serving, and that version of the object is not
downloaded again (a later, good upload is).

The object is read through GDAL's ``/vsis3/`` with the S3 settings of
:mod:`leafmap_tiles.s3` (endpoint, ``AWS_*`` credentials, profiles), given to GDAL
for the downloading thread only.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
import weakref

from ..errors import (
    InvalidDatabaseError,
    LeafmapTilesError,
    ReadOnlyStoreError,
    VSIError,
)
from . import layout
from .base import ReadOnly
from .sqlite import SQLiteStore

log = logging.getLogger("leafmap_tiles.store")

#: Seconds between two checks whether the remote database changed
#: (``LEAFMAP_TILES_REMOTE_DB_CACHE_TTL`` overrides; Terracotta's setting of the same
#: purpose is ``REMOTE_DB_CACHE_TTL``, 600 s, after which it downloads again).
DEFAULT_CACHE_TTL = 10.0


def _default_ttl() -> float:
    from leafmap_tiles import settings

    return settings.current().remote_db_cache_ttl


def validate_copy(path: str, url: str) -> None:
    """Check that the local file ``path`` (downloaded from ``url``) is a Terracotta
    0.10 SQLite database: it opens read-only, passes SQLite's ``quick_check``, has a
    ``terracotta`` version row of 0.10.x, at least one key in ``key_names``, and
    ``datasets`` / ``metadata`` tables with a column per key (and ``path``).

    Raises:
        InvalidDatabaseError: with what is wrong.
    """
    import sqlite3
    import urllib.parse

    def bad(why: str) -> InvalidDatabaseError:
        return InvalidDatabaseError(f"{url} is not a valid Terracotta database: {why}")

    try:
        conn = sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise bad(str(exc)) from None
    try:
        try:
            check = conn.execute("PRAGMA quick_check").fetchall()
            if check != [("ok",)]:
                raise bad("SQLite integrity check failed: " + "; ".join(str(r[0]) for r in check[:3]))
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            missing = {"terracotta", "key_names", "datasets", "metadata"} - tables
            if missing:
                raise bad(f"no table {', '.join(sorted(missing))}")
            row = conn.execute("SELECT version FROM terracotta").fetchone()
            try:
                layout.check_version(row[0] if row else None, url)
            except InvalidDatabaseError as exc:
                raise bad(str(exc)) from None
            keys = [r[0] for r in conn.execute("SELECT key_name FROM key_names ORDER BY idx")]
            if not keys:
                raise bad("no keys")
            for table, need in (("datasets", keys + ["path"]), ("metadata", keys)):
                cols = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
                lacking = [c for c in need if c not in cols]
                if lacking:
                    raise bad(f"table {table} has no column {', '.join(lacking)}")
            conn.execute("SELECT COUNT(*) FROM datasets").fetchone()
        except sqlite3.Error as exc:  # "file is not a database", "database disk image is malformed"
            raise bad(str(exc)) from None
    finally:
        conn.close()


class RemoteSQLiteStore(ReadOnly, SQLiteStore):
    """Read-only Terracotta key store whose SQLite file is an S3 object.

    Get one with ``leafmap_tiles.store.open("s3://bucket/key.sqlite")``.

    Args:
        url: ``s3://bucket/key``.
        cache_ttl: seconds between two checks for a new version of the object
            (default :data:`DEFAULT_CACHE_TTL`); 0 checks before every query.
        cache_dir: folder of the local copy (default: a new temporary folder,
            removed with the store or at exit).

    Raises (on first use, not here):
        S3AccessDeniedError: the endpoint refused the credentials (403).
        InvalidDatabaseError: no such object or bucket, or not a Terracotta database.
    """

    provider = "sqlite-remote"

    def __init__(self, url: str, cache_ttl: float | None = None, cache_dir: str | None = None,
                 clock=time.monotonic) -> None:
        from .. import s3

        self.url = str(url)
        self._vsi = s3.vsi_path(self.url)
        self.cache_ttl = _default_ttl() if cache_ttl is None else float(cache_ttl)
        self._clock = clock
        self._dir = tempfile.mkdtemp(prefix="leafmap_tiles_remote_db_", dir=cache_dir)
        self._finalizer = weakref.finalize(self, shutil.rmtree, self._dir, True)
        self._local_path = os.path.join(self._dir, "db.sqlite")
        self._version: tuple | None = None  # (etag, size, last-modified) of the copy
        self._rejected: tuple | None = None  # a version that was not a valid database
        self._checked_at = -float("inf")
        self._update_lock = threading.Lock()
        #: how many times the object was downloaded (1 after the first use)
        self.downloads = 0
        # SQLStore's state; the path shown in messages is the URL
        super(SQLiteStore, self).__init__(self.url)
        self._metadata_cache: dict[tuple, dict] = {}

    # ---------------------------------------------------------------- the copy
    @property
    def local_path(self) -> str:
        """The local copy that queries read (it exists after the first query)."""
        return self._local_path

    def _remote_version(self) -> tuple:
        from .. import _gdal, s3

        with _gdal.thread_options(s3.gdal_options()):
            headers = _gdal.vsi_headers(self._vsi)
        return (headers.get("etag"), headers.get("content-length"), headers.get("last-modified"))

    def _error(self, exc: Exception) -> LeafmapTilesError:
        """What a failed check or download tells the user: the class of
        :func:`leafmap_tiles.gdal_errors.classify` (a refusal: ``S3AccessDeniedError``),
        as a database error for anything else (:func:`leafmap_tiles.errors.for_database`)."""
        from ..errors import for_database
        from ..gdal_errors import classify

        if not isinstance(exc, VSIError):  # the local copy could not be written (disk full ...)
            return InvalidDatabaseError(f"Could not retrieve database {self.url}: {exc}")
        return for_database(self.url, classify(self._vsi, exc), detail=exc.strerror or str(exc))

    def refresh(self, force: bool = False) -> bool:
        """Download the object again if it changed (or always, with ``force``) since
        the copy was made; returns whether a new copy was made.

        Raises:
            S3AccessDeniedError, InvalidDatabaseError: as the first use (also when
                the object is not a valid Terracotta database, :func:`validate_copy`);
                once a copy exists, a failed check or a broken new object keeps it
                (a warning in the log) and returns False.
        """
        from .. import _gdal, s3

        with self._update_lock:
            have_copy = self._version is not None and os.path.exists(self._local_path)
            part = self._local_path + ".part"
            try:
                version = self._remote_version()
                self._checked_at = self._clock()
                if not force and version == self._version and os.path.exists(self._local_path):
                    return False
                if not force and have_copy and version == self._rejected:
                    return False  # that broken object was refused already (and logged)
                with _gdal.thread_options(s3.gdal_options()):
                    _gdal.vsi_download(self._vsi, part)
                validate_copy(part, self.url)
            except (OSError, LeafmapTilesError) as exc:
                # a VSIError is what GDAL said (classified here); other errors of the tree keep their class
                err = self._error(exc) if isinstance(exc, VSIError) or not isinstance(exc, LeafmapTilesError) else exc
                if os.path.exists(part):
                    os.remove(part)
                broken = isinstance(exc, InvalidDatabaseError) and "not a valid Terracotta database" in str(exc)
                if broken:
                    self._rejected = version
                if have_copy:
                    self._checked_at = self._clock()
                    if broken:
                        log.warning("%s: the new version of the object (ETag %s) is refused, keeping the "
                                    "local copy of ETag %s: %s", self.url, version[0], self._version[0], err)
                    else:
                        log.warning("%s: keeping the local copy, the check failed: %s", self.url, err)
                    return False
                raise err from None
            os.replace(part, self._local_path)
            self._rejected = None
            self._version = version
            self.downloads += 1
            # connections of the pool read the old file: new ones open the new copy
            self.dispose()
            self._key_names = None
            self._tables = None
            self._verified = False
            self._metadata_cache.clear()
            return True

    def _maybe_refresh(self) -> None:
        if self._version is not None and self._clock() - self._checked_at < self.cache_ttl:
            return
        self.refresh()

    # ---------------------------------------------------------------- SQLiteStore hooks
    def _open_connection(self):
        self._maybe_refresh()
        return super()._open_connection()

    def _database_exists(self) -> bool:
        return os.path.isfile(self._local_path)

    def _connect_dbapi(self):
        import sqlite3
        import urllib.parse

        uri = f"file:{urllib.parse.quote(self._local_path)}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=self.BUSY_TIMEOUT, check_same_thread=False)
        conn.isolation_level = None
        return conn

    def _create_database(self) -> None:
        self._refuse("create")

    # ---------------------------------------------------------------- read-only
    def _refuse(self, what: str):
        raise ReadOnlyStoreError(f"{self.url} is read-only (a database on S3): cannot {what}; "
                                 "write a local copy and upload it")

    def _db_insert(self, keys, path, encoded) -> None:
        self._refuse("store metadata")

    def get_metadata(self, keys):
        """Metadata of one dataset, as :meth:`KeyStore.get_metadata`; metadata missing
        from the database is computed (downsampled, as Terracotta) and kept in memory
        only, since the database is read-only."""
        keys_d = self._as_dict(keys, require_all=True)
        row = self._db_metadata_row(keys_d)
        if row is not None:
            return layout.decode_metadata(row)
        kv = tuple(keys_d[k] for k in self.key_names)
        hit = self._metadata_cache.get(kv)
        if hit is not None:
            return hit
        from ..errors import DatasetNotFoundError
        from .base import LAZY_LOADING_MAX_SHAPE

        found = self._db_datasets({k: [v] for k, v in keys_d.items()}, 0, None, list(self.key_names), True)
        if not found:
            raise DatasetNotFoundError(f"No dataset found with keys {keys_d}")
        (path,) = found.values()
        md = self.compute_metadata(path, max_shape=LAZY_LOADING_MAX_SHAPE)
        row = dict(layout.encode_metadata(md), path=path)
        out = layout.decode_metadata(row)
        self._metadata_cache[kv] = out
        return out

    def close(self) -> None:
        """Close its connections and remove the local copy (also done at exit)."""
        self.dispose()
        self._finalizer()

    def __repr__(self) -> str:
        return f"RemoteSQLiteStore({self.url!r})"
