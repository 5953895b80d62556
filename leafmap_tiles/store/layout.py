"""Terracotta 0.10's database layout: names, checks and the row encoding.

Everything that decides what the bytes on disk look like lives here, so that the
SQLite back end (:mod:`.sqlite`) and the SQL-server back end (:mod:`.sql`) write
the same rows:

- table ``terracotta``: one column ``version``, one row (``"0.10.1"``);
- table ``key_names``: ``key_name``, ``description`` (``""`` when none), ``idx``
  (0-based key order);
- table ``datasets``: one column per key (in key order, the primary key), ``path``;
- table ``metadata``: one column per key, then :data:`METADATA_COLUMNS`.

Encoding quirk kept on purpose: Terracotta writes the bounds tuple
``(west, south, east, north)`` positionally into the columns ``bounds_north``,
``bounds_east``, ``bounds_south``, ``bounds_west`` (so ``bounds_north`` holds the
west longitude) and reads it back in the same order.  We do the same, so that a
database written by either tool reads back the same bounds in the other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidDatabaseError, InvalidKeyError

#: Version written into the ``terracotta`` table; Terracotta accepts a database
#: whose major.minor version equals its own.
TERRACOTTA_VERSION = "0.10.1"
COMPATIBLE_VERSION_PREFIX = ("0", "10")

#: Key names that clash with the query parameters of ``/datasets``.
RESERVED_KEYS = ("limit", "page", "order_by", "ascending")

#: ``(column name, kind)`` in Terracotta's order; kind is ``real``, ``text`` or ``blob``.
METADATA_COLUMNS: tuple[tuple[str, str], ...] = (
    ("bounds_north", "real"),
    ("bounds_east", "real"),
    ("bounds_south", "real"),
    ("bounds_west", "real"),
    ("convex_hull", "text"),
    ("valid_percentage", "real"),
    ("min", "real"),
    ("max", "real"),
    ("mean", "real"),
    ("stdev", "real"),
    ("percentiles", "blob"),
    ("metadata", "text"),
)
METADATA_COLUMN_NAMES = tuple(name for name, _ in METADATA_COLUMNS)
_BOUNDS_COLUMNS = ("bounds_north", "bounds_east", "bounds_south", "bounds_west")

#: Metadata keys a complete metadata dict must have (what ``compute_metadata`` returns).
METADATA_KEYS = (
    "bounds",
    "convex_hull",
    "valid_percentage",
    "range",
    "mean",
    "stdev",
    "percentiles",
    "metadata",
)

_KEY_RE = re.compile(r"^\w+$")


def check_key_names(keys: Sequence[str], key_descriptions: Mapping[str, str] | None = None) -> None:
    """Check key names as Terracotta's ``create`` does.

    Args:
        keys: key names in order; at least one.
        key_descriptions: optional ``{key_name: description}``.

    Raises:
        InvalidKeyError: no key, a repeated key, a name that is not ``\\w+``
            (letters, digits, underscore), a reserved name (:data:`RESERVED_KEYS`),
            or a description for a key not in ``keys``.
    """
    if isinstance(keys, str) or not isinstance(keys, Sequence):
        raise InvalidKeyError(f"keys must be a sequence of key names, not {keys!r}")
    if not keys:
        raise InvalidKeyError("at least one key name is needed")
    for key in keys:
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise InvalidKeyError(f"key names must be alphanumeric, got {key!r}")
        if key in RESERVED_KEYS:
            raise InvalidKeyError(f"key names cannot be one of {RESERVED_KEYS!s}, got {key!r}")
    if len(set(keys)) != len(keys):
        raise InvalidKeyError(f"key names must be unique, got {tuple(keys)}")
    unknown = set(key_descriptions or {}) - set(keys)
    if unknown:
        raise InvalidKeyError(f"key description dict contains unknown keys {sorted(unknown)}")


def check_version(version: str | None, where: str) -> None:
    """Raise :class:`InvalidDatabaseError` unless ``version`` is a 0.10.x version."""
    if version is None or tuple(str(version).split(".")[:2]) != COMPATIBLE_VERSION_PREFIX:
        raise InvalidDatabaseError(
            f"Version conflict: database {where} was created in v{version}, "
            f"but this store reads and writes v{'.'.join(COMPATIBLE_VERSION_PREFIX)}.x"
        )


def encode_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a metadata dict (as from :func:`~.metadata.compute_metadata`) into column values.

    ``percentiles`` become 99 little-endian float32 (396 bytes); ``convex_hull``
    and ``metadata`` become JSON text; ``bounds`` go positionally into
    ``bounds_north, bounds_east, bounds_south, bounds_west`` (see module docstring).

    Raises:
        StoreError: a key of :data:`METADATA_KEYS` is missing or malformed.
    """
    from ..errors import StoreError

    missing = [k for k in METADATA_KEYS if k not in metadata]
    if missing:
        raise StoreError(f"metadata lacks {missing}")
    bounds = tuple(float(v) for v in metadata["bounds"])
    if len(bounds) != 4:
        raise StoreError(f"metadata bounds must have 4 values, got {metadata['bounds']!r}")
    low, high = metadata["range"]
    encoded: dict[str, Any] = dict(zip(_BOUNDS_COLUMNS, bounds))
    encoded.update(
        convex_hull=json.dumps(_plain(metadata["convex_hull"])),
        valid_percentage=float(metadata["valid_percentage"]),
        min=float(low),
        max=float(high),
        mean=float(metadata["mean"]),
        stdev=float(metadata["stdev"]),
        percentiles=np.asarray(metadata["percentiles"], dtype="<f4").tobytes(),
        metadata=json.dumps(_plain(metadata["metadata"])),
    )
    return encoded


def decode_metadata(row: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`encode_metadata`: column values to the metadata dict.

    Returns ``{"bounds": (w, s, e, n) in EPSG:4326 degrees, "convex_hull": GeoJSON dict,
    "valid_percentage": float (0-100), "range": (min, max), "mean", "stdev",
    "percentiles": list of 99 floats (float32 precision), "metadata": any JSON value}``.
    """
    return {
        "bounds": tuple(row[c] for c in _BOUNDS_COLUMNS),
        "convex_hull": json.loads(row["convex_hull"]),
        "valid_percentage": row["valid_percentage"],
        "range": (row["min"], row["max"]),
        "mean": row["mean"],
        "stdev": row["stdev"],
        "percentiles": np.frombuffer(bytes(row["percentiles"]), dtype="<f4").tolist(),
        "metadata": json.loads(row["metadata"]),
    }


def _plain(value: Any) -> Any:
    """Make ``value`` JSON-serialisable (tuples, numpy scalars and arrays)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value
