"""Key stores in relational databases through SQLAlchemy, with Terracotta's tables.

:class:`SQLStore` holds the queries shared by every database; subclasses say how
to reach one: :class:`~.sqlite.SQLiteStore` (a file), :class:`PostgreSQLStore`
(``postgresql://user:password@host:port/database``, driver psycopg2) and
:class:`MySQLStore` (``mysql://user:password@host:port/database``, driver pymysql).

Column types are the ones Terracotta's SQLAlchemy tables produce for each
dialect: key columns ``VARCHAR(n)`` (``n`` = 256 in SQLite, ``2730 // 4 // len(keys)``
in PostgreSQL, ``767 // 4 // len(keys)`` in MySQL, utf8mb4 there), ``path`` and
``description`` ``VARCHAR(8000)``, numbers ``FLOAT(53)``, JSON ``TEXT``,
percentiles ``BLOB``/``BYTEA``.
"""

from __future__ import annotations

import abc
import contextlib
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..errors import DatasetNotFoundError, InvalidDatabaseError, StoreError
from . import layout
from .base import LAZY_LOADING_MAX_SHAPE, KeyStore

_NOT_A_DATABASE = (
    "Could not connect to database {path}. Make sure that it is a Terracotta "
    "database and that create() (or an ingest) has made it"
)


def _reason(exc: BaseException) -> str:
    """What the database driver said, on one line: SQLAlchemy's ``str()`` adds the SQL
    text and a link on lines of their own (``[SQL: SELECT version FROM terracotta]``)."""
    orig = getattr(exc, "orig", None)
    lines = str(orig if orig is not None else exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def load_sqlalchemy():
    """The ``sqlalchemy`` module; :class:`StoreError` naming the install when missing."""
    try:
        import sqlalchemy
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise StoreError("SQL key stores need SQLAlchemy: pip install sqlalchemy") from exc
    return sqlalchemy


class SQLStore(KeyStore):
    """Terracotta key store in a relational database (abstract: use a subclass)."""

    #: Most characters of a key value (SQLite; servers derive it from the key count).
    KEY_SIZE = 256
    #: Attempts of one write when the server reports a conflict or deadlock.
    WRITE_ATTEMPTS = 5

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self._engine = None
        self._engine_lock = threading.Lock()
        self._local = threading.local()
        self._tables: dict[str, Any] | None = None
        self._verified = False

    # ---------------------------------------------------------------- dialect hooks
    @abc.abstractmethod
    def _make_engine(self):
        """The SQLAlchemy engine of this store's database (each dialect builds its own)."""

    def _database_exists(self) -> bool:
        """Whether the database itself (file, or server database) exists."""
        return True

    def _create_database(self) -> None:
        """Make the empty database (file or server database) if it is missing."""

    def _key_size(self, n_keys: int) -> int:
        return self.KEY_SIZE

    def _string(self, size: int):
        return load_sqlalchemy().types.String(size)

    def _text(self):
        return load_sqlalchemy().types.Text()

    def _creation_lock(self, conn) -> None:
        """Serialise concurrent ``create`` calls (inside the creating transaction)."""

    def _is_retryable(self, exc: Exception) -> bool:
        return False

    # ---------------------------------------------------------------- connections
    @property
    def engine(self):
        with self._engine_lock:
            if self._engine is None:
                self._engine = self._make_engine()
            return self._engine

    def dispose(self) -> None:
        """Close pooled connections (e.g. before forking or when done)."""
        with self._engine_lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    @contextlib.contextmanager
    def connect(self, verify: bool = True) -> Iterator[Any]:
        """Keep one connection open for this thread for the calls inside the block.

        Each insert/delete inside is still its own committed transaction.

        Raises:
            InvalidDatabaseError: no database, or it has another version (if ``verify``).
        """
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        conn = self._open_connection()
        self._local.conn = conn
        try:
            if verify:
                self._verify(conn)
            yield conn
        finally:
            self._local.conn = None
            conn.close()

    def _open_connection(self):
        sqla = load_sqlalchemy()
        if not self._database_exists():
            raise InvalidDatabaseError(_NOT_A_DATABASE.format(path=self.path))
        try:
            return self.engine.connect()
        except sqla.exc.OperationalError as exc:
            raise InvalidDatabaseError(_NOT_A_DATABASE.format(path=self.path) + f": {_reason(exc)}") from exc

    @contextlib.contextmanager
    def _connection(self, write: bool = False, verify: bool = True) -> Iterator[Any]:
        """A connection in a transaction that commits at exit and rolls back on error."""
        current = getattr(self._local, "conn", None)
        conn = current if current is not None else self._open_connection()
        try:
            if verify:
                self._verify(conn)
            conn.execution_options(leafmap_tiles_write=write)
            with conn.begin():
                yield conn
        finally:
            if current is None:
                conn.close()

    def _verify(self, conn) -> None:
        if self._verified:
            return
        version = self._read_version(conn)
        layout.check_version(version, self.path)
        self._verified = True

    def _read_version(self, conn) -> str | None:
        sqla = load_sqlalchemy()
        try:
            with conn.begin():
                return conn.execute(sqla.text("SELECT version FROM terracotta")).scalar()
        except sqla.exc.DatabaseError as exc:  # no such table, "file is not a database" ...
            raise InvalidDatabaseError(f"not a Terracotta database: {self.path} ({_reason(exc)}); "
                                       "create() or leafmap-tiles ingest makes one") from exc

    def _write(self, work) -> Any:
        """Run ``work(conn)`` in one write transaction, retrying on conflicts."""
        sqla = load_sqlalchemy()
        for attempt in range(self.WRITE_ATTEMPTS):
            try:
                with self._connection(write=True) as conn:
                    return work(conn)
            except sqla.exc.DBAPIError as exc:
                if attempt + 1 < self.WRITE_ATTEMPTS and self._is_retryable(exc):
                    time.sleep(0.05 * (attempt + 1))
                    continue
                raise InvalidDatabaseError(f"Could not write to database {self.path}: {_reason(exc)}") from exc
        raise AssertionError("unreachable")

    # ---------------------------------------------------------------- tables
    def _build_tables(self, keys: Sequence[str], metadata_obj=None) -> dict[str, Any]:
        sqla = load_sqlalchemy()
        md = metadata_obj if metadata_obj is not None else sqla.MetaData()
        key_size = self._key_size(len(keys))
        kinds = {
            "real": lambda: sqla.types.Float(precision=53),
            "text": self._text,
            "blob": sqla.types.LargeBinary,
        }
        return {
            "terracotta": sqla.Table(
                "terracotta", md, sqla.Column("version", self._string(255), primary_key=True)
            ),
            "key_names": sqla.Table(
                "key_names",
                md,
                sqla.Column("key_name", self._string(key_size), primary_key=True),
                sqla.Column("description", self._string(8000)),
                sqla.Column("idx", sqla.types.Integer, unique=True),
            ),
            "datasets": sqla.Table(
                "datasets",
                md,
                *[sqla.Column(k, self._string(key_size), primary_key=True) for k in keys],
                sqla.Column("path", self._string(8000)),
            ),
            "metadata": sqla.Table(
                "metadata",
                md,
                *[sqla.Column(k, self._string(key_size), primary_key=True) for k in keys],
                *[sqla.Column(name, kinds[kind]()) for name, kind in layout.METADATA_COLUMNS],
            ),
        }

    def _table(self, name: str):
        if self._tables is None:
            self._tables = self._build_tables(self.key_names)
        return self._tables[name]

    # ---------------------------------------------------------------- KeyStore hooks
    def _db_create(self, keys: Sequence[str], descriptions: Mapping[str, str], exist_ok: bool) -> None:
        sqla = load_sqlalchemy()
        self._create_database()
        md = sqla.MetaData()
        tables = self._build_tables(keys, md)

        def work(conn):
            self._creation_lock(conn)
            inspector = sqla.inspect(conn)
            if inspector.has_table("terracotta") or inspector.has_table("key_names"):
                if not exist_ok:
                    raise InvalidDatabaseError(f"Database {self.path} exists already")
                return False
            md.create_all(conn, checkfirst=False)
            conn.execute(tables["terracotta"].insert().values(version=layout.TERRACOTTA_VERSION))
            conn.execute(
                tables["key_names"].insert(),
                [{"key_name": k, "description": descriptions.get(k, ""), "idx": i} for i, k in enumerate(keys)],
            )
            return True

        try:
            with self._connection(write=True, verify=False) as conn:
                created = work(conn)
        except sqla.exc.DBAPIError as exc:
            raise InvalidDatabaseError(f"Could not create database {self.path}: {_reason(exc)}") from exc
        self._tables = None
        self._key_names = None
        if not created:
            existing = self.key_names
            if tuple(existing) != tuple(keys):
                raise InvalidDatabaseError(
                    f"Database {self.path} has keys {existing}, not {tuple(keys)}; "
                    "use another database or keys in the same order"
                )

    def _db_version(self) -> str:
        with self.connect(verify=False) as conn:
            return str(self._read_version(conn))

    def _db_keys(self) -> "OrderedDict[str, str]":
        sqla = load_sqlalchemy()
        try:
            with self._connection() as conn:
                rows = conn.execute(
                    sqla.text("SELECT key_name, description FROM key_names ORDER BY idx")
                ).all()
        except sqla.exc.DBAPIError as exc:
            raise InvalidDatabaseError(f"Could not retrieve keys from database {self.path}: {_reason(exc)}") from exc
        return OrderedDict((row[0], row[1]) for row in rows)

    def _key_filter(self, table, keys: Mapping[str, Any]):
        return [table.c[k] == v for k, v in keys.items()]

    def _db_datasets(self, where, page, limit, order_by, ascending):
        sqla = load_sqlalchemy()
        table = self._table("datasets")
        conditions = [
            sqla.or_(*[table.c[k] == v for v in values]) if values else sqla.false()
            for k, values in where.items()
        ]
        columns = [table.c[k] for k in order_by]
        if not ascending:
            columns = [sqla.desc(c) for c in columns]
        stmt = sqla.select(table).where(*conditions).order_by(*columns)
        if limit is not None:
            stmt = stmt.limit(limit).offset(page * limit)
        with self._connection() as conn:
            rows = conn.execute(stmt).mappings().all()
        names = self.key_names
        return {tuple(row[k] for k in names): row["path"] for row in rows}

    def get_metadata(self, keys: Any) -> dict[str, Any]:
        """Metadata of one dataset, as :meth:`KeyStore.get_metadata`; metadata missing
        from the database (``skip_metadata=True``) is computed now, downsampled to
        :data:`~.base.LAZY_LOADING_MAX_SHAPE`, and stored.

        Raises:
            InvalidKeyError: wrong number of keys or unknown key names.
            DatasetNotFoundError: no such dataset.
        """
        keys_d = self._as_dict(keys, require_all=True)
        row = self._db_metadata_row(keys_d)
        if row is not None:
            return layout.decode_metadata(row)
        found = self._db_datasets({k: [v] for k, v in keys_d.items()}, 0, None, list(self.key_names), True)
        if not found:
            raise DatasetNotFoundError(f"No dataset found with keys {keys_d}")
        (path,) = found.values()
        metadata = self.compute_metadata(path, max_shape=LAZY_LOADING_MAX_SHAPE)
        self._db_insert(keys_d, path, layout.encode_metadata(metadata))
        row = self._db_metadata_row(keys_d)
        assert row is not None
        return layout.decode_metadata(row)

    def _db_metadata_row(self, keys: dict[str, str]) -> dict[str, Any] | None:
        """The ``metadata`` table's row of the dataset ``keys`` (every key name),
        None when it has none."""
        sqla = load_sqlalchemy()
        table = self._table("metadata")
        stmt = sqla.select(table).where(*self._key_filter(table, keys))
        with self._connection() as conn:
            row = conn.execute(stmt).mappings().first()
        return dict(row) if row is not None else None

    def _db_insert(self, keys, path, encoded):
        datasets = self._table("datasets")
        metadata = self._table("metadata")

        def work(conn):
            conn.execute(datasets.delete().where(*self._key_filter(datasets, keys)))
            conn.execute(datasets.insert().values(**keys, path=path))
            # unlike Terracotta, drop old metadata even when none is given: it
            # described the file that was there before
            conn.execute(metadata.delete().where(*self._key_filter(metadata, keys)))
            if encoded is not None:
                conn.execute(metadata.insert().values(**keys, **encoded))

        self._write(work)

    def _db_delete(self, keys) -> int:
        datasets = self._table("datasets")
        metadata = self._table("metadata")

        def work(conn):
            n = conn.execute(datasets.delete().where(*self._key_filter(datasets, keys))).rowcount
            conn.execute(metadata.delete().where(*self._key_filter(metadata, keys)))
            return n

        return self._write(work)


# -------------------------------------------------------------------- SQL servers


class _ServerStore(SQLStore):
    DIALECT = ""
    DRIVER = ""
    DEFAULT_PORT = 0
    MAX_PRIMARY_KEY_SIZE = 0
    TIMEOUT_KEY = "connect_timeout"
    CONNECT_TIMEOUT = 10

    def __init__(self, url: str) -> None:
        self.url = self._parse_url(url)
        if not self.url.database or "/" in self.url.database.strip("/"):
            raise StoreError(f"a database name is needed in {self.DIALECT} URL, e.g. {self.DIALECT}://host/db")
        # never keep the password in path / repr
        super().__init__(
            f"{self.DIALECT}://{self.url.host}:{self.url.port or self.DEFAULT_PORT}/{self.url.database}"
        )

    @classmethod
    def _parse_url(cls, url: str):
        sqla = load_sqlalchemy()
        parsed = urllib.parse.urlparse(url)
        scheme = parsed.scheme.split("+")[0]
        if scheme != cls.DIALECT:
            raise StoreError(f'unsupported URL scheme "{parsed.scheme}" for {cls.__name__}')
        try:
            port = parsed.port
        except ValueError as exc:  # "mysql://h:99999/db": a port out of range
            raise StoreError(f"malformed database URL: {exc}") from None
        return sqla.engine.URL.create(
            drivername=f"{cls.DIALECT}+{cls.DRIVER}",
            username=urllib.parse.unquote(parsed.username) if parsed.username else None,
            password=urllib.parse.unquote(parsed.password) if parsed.password else None,
            host=parsed.hostname,
            port=port,
            database=parsed.path[1:],
            query=dict(urllib.parse.parse_qsl(parsed.query)),
        )

    def _make_engine(self):
        sqla = load_sqlalchemy()
        try:
            return sqla.create_engine(
                self.url,
                connect_args={self.TIMEOUT_KEY: self.CONNECT_TIMEOUT},
                pool_pre_ping=True,
            )
        except ImportError as exc:
            raise StoreError(f"{self.DIALECT} key stores need the {self.DRIVER} package: {exc}") from exc

    def _key_size(self, n_keys: int) -> int:
        return self.MAX_PRIMARY_KEY_SIZE // n_keys

    def _admin_url(self):
        return self.url.set(database="postgres" if self.DIALECT == "postgresql" else "")

    def _create_database(self) -> None:
        sqla = load_sqlalchemy()
        engine = sqla.create_engine(
            self._admin_url(),
            isolation_level="AUTOCOMMIT",
            connect_args={self.TIMEOUT_KEY: self.CONNECT_TIMEOUT},
        )
        try:
            with engine.connect() as conn:
                if not self._server_has_database(conn):
                    try:
                        conn.execute(sqla.text(f"CREATE DATABASE {self._quote_db()}"))
                    except sqla.exc.DBAPIError:
                        if not self._server_has_database(conn):  # lost a race: fine
                            raise
        except sqla.exc.DBAPIError as exc:
            raise InvalidDatabaseError(f"Could not create database {self.path}: {_reason(exc)}") from exc
        finally:
            engine.dispose()

    def _quote_db(self) -> str:
        return self._admin_engine_preparer().quote_identifier(self.url.database)

    @abc.abstractmethod
    def _admin_engine_preparer(self):
        """The dialect's identifier preparer, to quote the database name."""

    @abc.abstractmethod
    def _server_has_database(self, conn) -> bool:
        """Whether the server behind ``conn`` (an admin connection) has the database."""


class PostgreSQLStore(_ServerStore):
    """Key store in a PostgreSQL database, ``postgresql://user:password@host:port/db``.

    ``create()`` makes the database on the server if it is missing (the user needs
    CREATEDB then), then Terracotta's tables.
    """

    provider = "postgresql"
    DIALECT = "postgresql"
    DRIVER = "psycopg2"
    DEFAULT_PORT = 5432
    MAX_PRIMARY_KEY_SIZE = 2730 // 4

    def _admin_engine_preparer(self):
        from sqlalchemy.dialects import postgresql

        return postgresql.dialect().identifier_preparer

    def _server_has_database(self, conn) -> bool:
        sqla = load_sqlalchemy()
        found = conn.execute(
            sqla.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": self.url.database}
        ).first()
        return found is not None

    def _creation_lock(self, conn) -> None:
        sqla = load_sqlalchemy()
        conn.execute(sqla.text("SELECT pg_advisory_xact_lock(7247365)"))

    def _is_retryable(self, exc) -> bool:
        code = getattr(getattr(exc, "orig", None), "pgcode", None)
        # unique_violation (two inserts of one key), serialization failure, deadlock
        return code in ("23505", "40001", "40P01")


class MySQLStore(_ServerStore):
    """Key store in a MySQL database, ``mysql://user:password@host:port/db`` (needs pymysql).

    Not tested against a live server in this project's CI.
    """

    provider = "mysql"
    DIALECT = "mysql"
    DRIVER = "pymysql"
    DEFAULT_PORT = 3306
    MAX_PRIMARY_KEY_SIZE = 767 // 4
    CHARSET = "utf8mb4"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = self.url.update_query_dict({"charset": self.CHARSET})

    def _string(self, size: int):
        from sqlalchemy.dialects.mysql import VARCHAR

        return VARCHAR(size, charset=self.CHARSET)

    def _text(self):
        from sqlalchemy.dialects.mysql import TEXT

        return TEXT(charset=self.CHARSET)

    def _admin_engine_preparer(self):
        from sqlalchemy.dialects import mysql

        return mysql.dialect().identifier_preparer

    def _server_has_database(self, conn) -> bool:
        sqla = load_sqlalchemy()
        found = conn.execute(
            sqla.text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :n"),
            {"n": self.url.database},
        ).first()
        return found is not None

    def _is_retryable(self, exc) -> bool:
        code = (getattr(getattr(exc, "orig", None), "args", None) or [None])[0]
        return code in (1062, 1213, 1205)  # duplicate key, deadlock, lock wait timeout



_sqla = load_sqlalchemy  # the name before issue 17 (branches written before it)
