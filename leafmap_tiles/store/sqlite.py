"""Key store in one SQLite file, byte-compatible with Terracotta 0.10's SQLite driver.

Concurrency: every write runs in a ``BEGIN IMMEDIATE`` transaction (the write
lock is taken at its start, so two writers never deadlock) and waits up to
:attr:`SQLiteStore.BUSY_TIMEOUT` seconds for another writer; readers see only
committed data.  The journal mode stays SQLite's default (``delete``), as in
files Terracotta writes.  Connections are pooled per store object and are safe to
use from several threads; do not share one store object across ``fork``.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from pathlib import Path

from ..errors import InvalidDatabaseError
from .sql import SQLStore, load_sqlalchemy


class SQLiteStore(SQLStore):
    """Terracotta key store in an SQLite file (which may not exist yet)."""

    provider = "sqlite"
    KEY_SIZE = 256
    #: Seconds a write waits for another process's write to finish.
    BUSY_TIMEOUT = 60.0

    def __init__(self, path: str | os.PathLike) -> None:
        path = os.fspath(path)
        if path.startswith("sqlite:///"):
            path = path[len("sqlite:///"):]
        if not path:
            raise InvalidDatabaseError("Database path must not be empty")
        super().__init__(os.path.normpath(os.path.realpath(path)))

    def _database_exists(self) -> bool:
        return os.path.isfile(self.path)

    def _create_database(self) -> None:
        if os.path.isdir(self.path):
            raise InvalidDatabaseError(f"{self.path} is a directory, not an SQLite file")
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # an empty file is a valid empty SQLite database
        with open(self.path, "ab"):
            pass

    def _connect_dbapi(self) -> sqlite3.Connection:
        mode = "rw" if os.access(self.path, os.W_OK) else "ro"
        uri = f"file:{urllib.parse.quote(self.path)}?mode={mode}"
        conn = sqlite3.connect(uri, uri=True, timeout=self.BUSY_TIMEOUT, check_same_thread=False)
        conn.isolation_level = None  # transactions are begun explicitly, see _on_begin
        return conn

    def _make_engine(self):
        sqla = load_sqlalchemy()
        engine = sqla.create_engine(
            "sqlite://",
            creator=self._connect_dbapi,
            poolclass=sqla.pool.QueuePool,
            pool_size=4,
            max_overflow=16,
        )

        @sqla.event.listens_for(engine, "begin")
        def _on_begin(conn):
            write = conn.get_execution_options().get("leafmap_tiles_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    def _is_retryable(self, exc) -> bool:
        return "database is locked" in str(exc)
