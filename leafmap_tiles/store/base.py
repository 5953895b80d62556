"""The key store's public API (Terracotta's driver API), independent of the database.

:class:`KeyStore` checks and normalises arguments, computes metadata, and leaves
the storage to a back end that implements its abstract methods (the ``_db_*`` hooks,
:meth:`KeyStore.get_metadata` and :meth:`KeyStore.connect`): the SQL stores
(:class:`~.sql.SQLStore`: :class:`~.sqlite.SQLiteStore`, PostgreSQL, MySQL, and the
read-only copy of a database on S3, :class:`~.remote.RemoteSQLiteStore`) and a remote
Terracotta server (:class:`~.http.RemoteStore`).  A read-only store mixes in
:class:`ReadOnly`, which refuses every write.

Transactions: every :meth:`KeyStore.insert` and :meth:`KeyStore.delete` is one
database transaction, committed when it returns; on any error (a bad file, a
crash, a lost connection) nothing of it is written.  Metadata is computed before
the transaction starts, so writers hold the database lock only for a few
milliseconds and several processes can ingest into one database at once.
:meth:`KeyStore.connect` keeps one connection open for a block of calls (as in
Terracotta); it does not merge them into one transaction.
"""

from __future__ import annotations

import abc
import contextlib
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import DatasetNotFoundError, InvalidKeyError, StoreError
from . import layout
from .metadata import compute_metadata as _compute_metadata

if TYPE_CHECKING:
    from .ingest import IngestResult

#: Shape to which a raster is downsampled when metadata is computed lazily on
#: first request (as Terracotta's ``LAZY_LOADING_MAX_SHAPE``).
LAZY_LOADING_MAX_SHAPE = (1024, 1024)

KeysArg = Sequence[str] | Mapping[str, str]
WhereArg = Sequence[str] | Mapping[str, "str | Sequence[str]"]


class KeyStore(abc.ABC):
    """A Terracotta-compatible key store; get one with :func:`leafmap_tiles.store.open`.

    Datasets are identified by a tuple of key values, one per key name, in the
    order given to :meth:`create`.  Wherever keys are taken, they may be given as
    a sequence of values in key order or as a mapping ``{key_name: value}``.
    """

    #: ``"sqlite"``, ``"postgresql"`` or ``"mysql"``.
    provider: str = ""

    def __init__(self, path: str) -> None:
        self.path = path
        self._key_names: tuple[str, ...] | None = None

    # ------------------------------------------------------------ back end hooks
    @abc.abstractmethod
    def _db_create(self, keys: Sequence[str], descriptions: Mapping[str, str], exist_ok: bool) -> None:
        """Create the tables for key names ``keys`` (checked) as :meth:`create` says."""

    @abc.abstractmethod
    def _db_version(self) -> str:
        """The Terracotta version the database records."""

    @abc.abstractmethod
    def _db_keys(self) -> "OrderedDict[str, str]":
        """``{key name: description}`` in key order, as :meth:`get_keys` says."""

    @abc.abstractmethod
    def _db_datasets(
        self, where: dict[str, list[str]], page: int, limit: int | None, order_by: list[str], ascending: bool
    ) -> dict[tuple[str, ...], str]:
        """``{key values: path}`` of the datasets whose key ``k`` is one of
        ``where[k]`` for each ``k`` (checked key names), sorted and paged."""

    @abc.abstractmethod
    def _db_insert(self, keys: dict[str, str], path: str, encoded: dict[str, Any] | None) -> None:
        """Add or replace the dataset ``keys`` (every key name) and its encoded
        metadata (:func:`.layout.encode_metadata`; None: none) in one transaction."""

    @abc.abstractmethod
    def _db_delete(self, keys: dict[str, str]) -> int:
        """Remove the dataset ``keys`` and its metadata in one transaction; how many
        datasets were removed (0 or 1)."""

    @abc.abstractmethod
    def connect(self, verify: bool = True) -> contextlib.AbstractContextManager[Any]:
        """Context manager keeping one connection open for the calls inside it.

        Args:
            verify: check the database version on entry (Terracotta's meaning).

        Raises:
            InvalidDatabaseError: the database does not exist or has another version.
        """

    # ------------------------------------------------------------ creation, keys
    @property
    def db_version(self) -> str:
        """Terracotta version recorded in the database (e.g. ``"0.10.1"``)."""
        return self._db_version()

    def create(
        self,
        keys: Sequence[str],
        *,
        key_descriptions: Mapping[str, str] | None = None,
        exist_ok: bool = False,
    ) -> None:
        """Create the tables of an empty Terracotta database with these key names.

        Args:
            keys: key names in order, each ``\\w+`` and not reserved.
            key_descriptions: optional ``{key_name: text}``; others get ``""``.
            exist_ok: if the database exists already with exactly these key names
                (same order), do nothing instead of failing.  Safe against another
                process creating it at the same moment.

        Raises:
            InvalidKeyError: bad key names (see :func:`.layout.check_key_names`).
            InvalidDatabaseError: the database exists (with other keys, or at all
                when ``exist_ok`` is false).
        """
        keys = list(keys) if not isinstance(keys, str) else keys
        layout.check_key_names(keys, key_descriptions)
        self._db_create(keys, dict(key_descriptions or {}), exist_ok)
        self._key_names = None

    def get_keys(self) -> "OrderedDict[str, str]":
        """``OrderedDict`` of ``{key_name: description}`` in key order.

        Raises:
            InvalidDatabaseError: the database does not exist or is not Terracotta's.
        """
        return self._db_keys()

    @property
    def key_names(self) -> tuple[str, ...]:
        """Key names in order (cached after the first read)."""
        if self._key_names is None:
            self._key_names = tuple(self.get_keys())
        return self._key_names

    # ------------------------------------------------------------ queries
    def get_datasets(
        self,
        where: WhereArg | None = None,
        page: int = 0,
        limit: int | None = None,
        order_by: Sequence[str] | None = None,
        ascending: bool = True,
    ) -> dict[tuple[str, ...], str]:
        """Datasets matching ``where``, as ``{key_values_tuple: path}``.

        Args:
            where: ``{key_name: value}`` where a value may be a list of values
                (OR within a key, AND across keys; an empty list matches nothing),
                or a sequence of values for the first keys in order.
            page: with ``limit``, skip ``page * limit`` results.
            limit: at most this many results (``None``: all).
            order_by: key names to sort by (default: all keys in order).
            ascending: sort order.

        Raises:
            InvalidKeyError: unknown key names in ``where`` or ``order_by``.
            StoreError: negative ``page`` or ``limit``.
        """
        keys = self._as_dict(where, require_all=False, multi=True)
        normalized = {k: ([v] if isinstance(v, str) else [str(x) for x in v]) for k, v in keys.items()}
        if order_by is not None:
            if isinstance(order_by, str):
                order_by = [order_by]
            unknown = set(order_by) - set(self.key_names)
            if unknown:
                raise InvalidKeyError(
                    f"Encountered unrecognized keys: {', '.join(sorted(unknown))} "
                    f"(available keys: {self.key_names})"
                )
            order = list(order_by)
        else:
            order = list(self.key_names)
        if page < 0 or (limit is not None and limit < 0):
            raise StoreError(f"page and limit must not be negative (got page={page}, limit={limit})")
        return self._db_datasets(normalized, int(page), limit, order, bool(ascending))

    @abc.abstractmethod
    def get_metadata(self, keys: KeysArg) -> dict[str, Any]:
        """Metadata of one dataset (see :mod:`.metadata` for the fields and units).

        A dataset inserted with ``skip_metadata=True`` gets its metadata computed
        now on a raster downsampled to :data:`LAZY_LOADING_MAX_SHAPE` (approximate
        statistics, as in Terracotta), which a writable store then stores.

        Raises:
            InvalidKeyError: wrong number of keys or unknown key names.
            DatasetNotFoundError: no such dataset.
        """

    # ------------------------------------------------------------ writes
    def compute_metadata(
        self,
        path: str | os.PathLike[str],
        *,
        extra_metadata: Any = None,
        use_chunks: bool | None = None,
        max_shape: Sequence[int] | None = None,
    ) -> dict[str, Any]:
        """Metadata of band 1 of a raster; see :func:`.metadata.compute_metadata`."""
        return _compute_metadata(path, extra_metadata=extra_metadata, use_chunks=use_chunks, max_shape=max_shape)

    def insert(
        self,
        keys: KeysArg,
        path: str | os.PathLike[str],
        *,
        override_path: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        skip_metadata: bool = False,
    ) -> None:
        """Add a dataset, or replace the one with the same keys, in one transaction.

        Args:
            keys: one value per key name (sequence in key order, or mapping).
            path: raster to compute metadata from.
            override_path: path stored instead of ``path`` (e.g. a URL).
            metadata: precomputed metadata dict; computed from ``path`` if omitted.
            skip_metadata: store no metadata (computed on first :meth:`get_metadata`).

        Raises:
            InvalidKeyError: wrong number of keys, unknown key names, or a value
                that is not a non-empty string.
            SourceNotFoundError, InvalidSourceError: when metadata is computed and
                the raster cannot be read; the database is left unchanged.
            InvalidDatabaseError: no database, or it cannot be written.
        """
        keys_d = self._as_dict(keys, require_all=True)
        for name, value in keys_d.items():
            if not isinstance(value, str) or not value:
                raise InvalidKeyError(f"key value for {name!r} must be a non-empty string, got {value!r}")
        if metadata is None and not skip_metadata:
            metadata = self.compute_metadata(path)
        encoded = layout.encode_metadata(metadata) if metadata is not None else None
        self._db_insert(keys_d, str(override_path or os.fspath(path)), encoded)

    def delete(self, keys: KeysArg) -> None:
        """Remove a dataset and its metadata in one transaction.

        Raises:
            InvalidKeyError: wrong number of keys or unknown key names.
            DatasetNotFoundError: no such dataset (nothing is changed).
        """
        keys_d = self._as_dict(keys, require_all=True)
        if self._db_delete(keys_d) == 0:
            raise DatasetNotFoundError(f"No dataset found with keys {keys_d}")

    def ingest(
        self,
        pattern: str,
        *,
        rgb_key: str | None = None,
        skip_metadata: bool = False,
        skip_existing: bool = False,
        key_descriptions: Mapping[str, str] | None = None,
        progress: bool = False,
    ) -> IngestResult:
        """Insert every file matching a Terracotta raster pattern, creating the database if needed.

        See :func:`.ingest.ingest` for the pattern rules, arguments, return value
        and raised exceptions.
        """
        from .ingest import ingest

        return ingest(
            self,
            pattern,
            rgb_key=rgb_key,
            skip_metadata=skip_metadata,
            skip_existing=skip_existing,
            key_descriptions=key_descriptions,
            progress=progress,
        )

    # ------------------------------------------------------------ helpers
    def _as_dict(self, keys: Any, *, require_all: bool, multi: bool = False) -> dict[str, Any]:
        names = self.key_names
        if keys is None:
            keys = {}
        if isinstance(keys, Mapping):
            out = dict(keys)
        elif isinstance(keys, Sequence) and not isinstance(keys, str):
            if len(keys) > len(names):
                raise InvalidKeyError(f"Got {len(keys)} key values for keys {names}")
            out = dict(zip(names, keys))
        else:
            raise InvalidKeyError(f"Encountered unknown key type {type(keys).__name__}, expected Mapping or Sequence")
        unknown = set(out) - set(names)
        if unknown:
            raise InvalidKeyError(f"Encountered unrecognized keys {sorted(unknown)} (available keys: {names})")
        if require_all and len(out) != len(names):
            raise InvalidKeyError(f"Got wrong number of keys (available keys: {names})")
        if not multi:
            return out
        for name, value in out.items():
            if not isinstance(value, str) and not (
                isinstance(value, Sequence) and all(isinstance(v, str) for v in value)
            ):
                raise InvalidKeyError(f"value for key {name!r} must be a string or a list of strings, got {value!r}")
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"


class ReadOnly(abc.ABC):
    """Mixin (before the :class:`KeyStore` base) of a store that cannot be written:
    ``create``, ``insert``, ``delete`` and ``ingest`` (and the write hooks behind them)
    raise :class:`~leafmap_tiles.errors.ReadOnlyStoreError` with the store's own
    ``_refuse(what)`` message (why it is read-only, what to do instead)."""

    @abc.abstractmethod
    def _refuse(self, what: str) -> NoReturn:
        """Raise :class:`~leafmap_tiles.errors.ReadOnlyStoreError` saying why this store
        is read-only and what to do instead; ``what`` names the write refused."""

    def _db_create(self, keys: Sequence[str], descriptions: Mapping[str, str], exist_ok: bool) -> None:
        self._refuse("create")

    def _db_insert(self, keys: dict[str, str], path: str, encoded: dict[str, Any] | None) -> None:
        self._refuse("insert")

    def _db_delete(self, keys: dict[str, str]) -> int:
        self._refuse("delete")

    def create(self, *args: Any, **kwargs: Any) -> None:
        """Refused: raises :class:`~leafmap_tiles.errors.ReadOnlyStoreError`."""
        self._refuse("create")

    def insert(self, *args: Any, **kwargs: Any) -> None:
        """Refused: raises :class:`~leafmap_tiles.errors.ReadOnlyStoreError`."""
        self._refuse("insert")

    def delete(self, *args: Any, **kwargs: Any) -> None:
        """Refused: raises :class:`~leafmap_tiles.errors.ReadOnlyStoreError`."""
        self._refuse("delete")

    def ingest(self, *args: Any, **kwargs: Any) -> None:
        """Refused: raises :class:`~leafmap_tiles.errors.ReadOnlyStoreError`."""
        self._refuse("ingest")
