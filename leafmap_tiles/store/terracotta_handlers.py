"""The JSON answers of Terracotta's API as plain functions over a key store (no HTTP;
the routes of :mod:`leafmap_tiles.server.terracotta_api` call them on a worker thread),
and the short-lived cache of each dataset's ``(path, metadata)`` that every route uses.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from leafmap_tiles.errors import (
    AuthenticationError,
    DatasetNotFoundError,
    InvalidKeyError,
    InvalidSourceError,
    SourceNotFoundError,
    SourceTimeoutError,
    SourceUnreachableError,
    StoreError,
    for_dataset,
)

#: A dataset's metadata as the key store keeps it (bounds, range, mean, ... metadata).
Metadata = dict[str, Any]

__all__ = ["DatasetCache", "datasets", "keys", "metadata", "metadata_json", "open_store"]

log = logging.getLogger("leafmap_tiles.server.terracotta")

METADATA_TTL = 10.0  # seconds a dataset's (path, metadata) is reused without asking the store


class DatasetCache:
    """Key store access with a short-lived, bounded (LRU) cache of ``(path, metadata)``
    per dataset; safe to use from every worker thread."""

    def __init__(self, store: Any) -> None:
        from cachetools import LRUCache

        from leafmap_tiles import settings

        self.store = store
        self._cache: LRUCache[tuple[str, ...], tuple[float, str, Metadata]] = LRUCache(max(16, settings.current().cache_entries))
        self._lock = threading.Lock()

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(self.store.key_names)

    def fresh(self, keys: Sequence[str]) -> tuple[str, Metadata] | None:
        """``(path, metadata)`` of these key values when the cache holds them from less
        than :data:`METADATA_TTL` seconds ago, else None (then :meth:`lookup` asks the
        store).  Never blocks on the store: the routes call it on the event loop and
        go to a worker thread only on a miss."""
        with self._lock:  # held only around the LRU's own bookkeeping, never a query
            hit = self._cache.get(tuple(keys))
        if hit is not None and time.monotonic() - hit[0] < METADATA_TTL:
            return hit[1], hit[2]
        return None

    def lookup(self, keys: Sequence[str]) -> tuple[str, Metadata]:
        """``(path, metadata)`` of the dataset with these key values (metadata computed
        here for datasets ingested with ``--skip-metadata``).

        Raises:
            InvalidKeyError: not one value per key.
            DatasetNotFoundError: no such dataset.
            UnreadableDataset, SourceTimeoutError, ...: its file failed
                (:func:`leafmap_tiles.errors.for_dataset`).
        """
        names = self.key_names
        if len(keys) != len(names):
            raise InvalidKeyError(f"Got wrong number of keys (available keys: {list(names)})")
        tkeys = tuple(keys)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(tkeys)
        if hit is not None and now - hit[0] < METADATA_TTL:
            return hit[1], hit[2]
        found = self.store.get_datasets(dict(zip(names, keys)))
        if not found:
            raise DatasetNotFoundError(f"No dataset found for keys {dict(zip(names, keys))}")
        path = next(iter(found.values()))
        try:
            md = self.store.get_metadata(list(keys))
        except (SourceNotFoundError, InvalidSourceError, SourceTimeoutError, SourceUnreachableError,
                AuthenticationError) as exc:
            name = "/".join(keys)
            log.debug("dataset %s cannot be read: %s", name, exc)
            raise for_dataset(name, exc) from None
        with self._lock:
            self._cache[tkeys] = (now, path, md)  # an LRU: bounded
        return path, md


def metadata_json(md: Metadata, key_names: Sequence[str], keys: Sequence[str],
                  columns: list[str] | None) -> dict[str, Any]:
    """Terracotta's ``/metadata`` answer for one dataset (only ``columns`` when given)."""
    out = {
        "bounds": [float(v) for v in md["bounds"]],
        "convex_hull": md["convex_hull"],
        "valid_percentage": float(md["valid_percentage"]),
        "range": [float(v) for v in md["range"]],
        "mean": float(md["mean"]),
        "stdev": float(md["stdev"]),
        "percentiles": [float(v) for v in md["percentiles"]],
        "metadata": md["metadata"],
    }
    if columns:
        out = {c: out[c] for c in columns}
    out["keys"] = dict(zip(key_names, keys))
    return out


def keys(store: Any) -> list[dict[str, str]]:
    """``/keys``: each key's name and (when it has one) description, in key order."""
    return [{"key": k, **({"description": d} if d else {})} for k, d in store.get_keys().items()]


def datasets(cache: DatasetCache, where: dict[str, Any], *, limit: int, page: int, order_by: list[str] | None,
             ascending: bool) -> list[dict[str, str]]:
    """``/datasets``: key values (``{key: value}``) of one page of the datasets matching
    ``where`` (``{key: value or [values]}``)."""
    found = cache.store.get_datasets(where or None, page=page, limit=limit, order_by=order_by, ascending=ascending)
    names = cache.key_names
    return [dict(zip(names, k)) for k in found]


def metadata(cache: DatasetCache, keys: Sequence[str], columns: list[str] | None) -> dict[str, Any]:
    """``/metadata/{keys}``: the metadata of one dataset."""
    _, md = cache.lookup(keys)
    return metadata_json(md, cache.key_names, keys, columns)


def open_store(store_or_pattern: Any, rgb_key: str | None) -> tuple[Any, str | None]:
    """``(key store, temporary database or None)`` for a
    :class:`~leafmap_tiles.store.KeyStore`, a database path/URL, or a raster pattern
    (ingested without metadata into a temporary SQLite database, which the caller
    deletes).  Raises :class:`StoreError` for a missing or foreign database, or a
    pattern that matches no file."""
    from leafmap_tiles import store as store_mod
    from leafmap_tiles.store.base import KeyStore

    if isinstance(store_or_pattern, KeyStore):
        return store_or_pattern, None
    text = os.fspath(store_or_pattern)
    if "{" in text:
        import tempfile

        fd, db = tempfile.mkstemp(suffix=".sqlite", prefix="leafmap_tiles_serve_")
        os.close(fd)
        os.unlink(db)
        ks = store_mod.open(db)
        result = ks.ingest(text, rgb_key=rgb_key, skip_metadata=True)
        if not result.inserted:
            raise StoreError(f"no file matches the raster pattern {text!r}")
        if result.unmatched:  # as `ingest` reports them: a file silently left out surprises
            import logging

            from leafmap_tiles.store.patterns import describe_unmatched

            logging.getLogger("leafmap_tiles.serve").warning(
                "%d file(s) found by the pattern's wildcards are not served: their names do not fit "
                "it (key values are letters and digits only):\n%s", len(result.unmatched),
                describe_unmatched(result.unmatched, result.reasons))
        return ks, db
    ks = store_mod.open(text)
    ks.get_keys()  # fails early for a missing or foreign database
    return ks, None
