"""Ingest: every raster matching a pattern into a key store (``terracotta ingest``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import InvalidDatabaseError, PatternError, StoreError
from .patterns import find_files


@dataclass
class IngestResult:
    """What :func:`ingest` did.

    Attributes:
        keys: key names of the database, in order.
        inserted: key tuples written (in the database's key order).
        skipped_existing: key tuples left alone because of ``skip_existing``.
        unmatched: files found by the pattern's glob whose names break the key
            rules (Terracotta skips these silently).
        reasons: ``{path: why}`` for each unmatched file (which key, which character).
    """

    keys: tuple[str, ...]
    inserted: list[tuple[str, ...]] = field(default_factory=list)
    skipped_existing: list[tuple[str, ...]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)


def ingest(
    store,
    pattern: str,
    *,
    rgb_key: str | None = None,
    skip_metadata: bool = False,
    skip_existing: bool = False,
    key_descriptions: Mapping[str, str] | None = None,
    progress: bool = False,
) -> IngestResult:
    """Insert every file matching ``pattern`` (rules in :mod:`.patterns`) into ``store``.

    The database is created with the pattern's keys if it does not exist (safe
    when several processes do it at once).  Each file is one transaction: if a
    file cannot be read, the files before it stay ingested and the error is raised.

    Args:
        store: a :class:`~.base.KeyStore`.
        pattern: e.g. ``"rasters/{sensor}_{date}_{band}.tif"``.
        rgb_key: key moved to the last position (Terracotta's RGB key); default:
            the pattern's order.
        skip_metadata: store no metadata (computed on first request).
        skip_existing: leave datasets whose keys exist already untouched
            (default: overwrite them).
        key_descriptions: ``{key_name: text}`` for a new database.
        progress: show a tqdm progress bar on stderr.

    Returns:
        an :class:`IngestResult`.

    Raises:
        PatternError: invalid pattern, no file, duplicate keys, unknown ``rgb_key``.
        InvalidDatabaseError: the database exists with other key names or order.
        SourceNotFoundError, InvalidSourceError: a raster cannot be read.
    """
    match = find_files(pattern)
    keys = list(match.keys)
    files = dict(match.files)
    if rgb_key is not None:
        if rgb_key not in keys:
            raise PatternError(f"RGB key {rgb_key!r} not found in raster pattern keys {tuple(keys)}")
        idx = keys.index(rgb_key)
        keys = keys[:idx] + keys[idx + 1:] + [rgb_key]
        files = {k[:idx] + k[idx + 1:] + (k[idx],): v for k, v in files.items()}
    if key_descriptions:
        unknown = set(key_descriptions) - set(keys)
        if unknown:
            raise StoreError(f"key descriptions for keys not in the pattern: {sorted(unknown)}")

    try:
        store.create(keys, key_descriptions=key_descriptions, exist_ok=True)
    except InvalidDatabaseError as exc:
        raise InvalidDatabaseError(f"Cannot ingest {pattern!r}: {exc}") from exc

    result = IngestResult(tuple(keys), unmatched=list(match.unmatched), reasons=dict(match.reasons))
    todo = sorted(files.items(), key=lambda kv: kv[1])
    if skip_existing:
        existing = store.get_datasets()
        result.skipped_existing = [k for k, _ in todo if k in existing]
        todo = [(k, p) for k, p in todo if k not in existing]

    items = todo
    if progress:
        from tqdm import tqdm

        items = tqdm(todo, desc="Ingesting raster files", unit="file")
    with store.connect():
        for key_values, path in items:
            store.insert(key_values, path, skip_metadata=skip_metadata)
            result.inserted.append(key_values)
    return result
