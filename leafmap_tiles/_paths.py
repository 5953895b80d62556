"""Which paths are remote and which are local files: the one rule of every part.

A *remote* path is read over the network by GDAL: an ``http(s)://``, ``s3://``,
``gs://``, ``az://`` (or any other ``scheme://`` except ``file://``) URL, or a GDAL
virtual-file-system path (``/vsicurl/...``, ``/vsis3/...``, and every other ``/vsi``
prefix, e.g. ``/vsimem/``, which is not a local file either).  Anything else is a
local file path, checked by :func:`check_local_path` before GDAL sees it (so the
user gets ``SourceNotFoundError`` rather than GDAL's wording).

A source of several files (a mosaic) is remote when any of its files is.
"""

from __future__ import annotations

import os
import re

from leafmap_tiles.errors import InvalidSourceError, SourceIsDirectoryError, SourceNotFoundError

__all__ = ["REMOTE_PREFIXES", "check_local_path", "is_remote", "is_remote_path", "to_gdal_path"]

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
    """Whether ``path`` (a string, or a tuple/list of them for a mosaic) names any
    remote path (:func:`is_remote_path`); anything else (None, a number) is not remote."""
    if isinstance(path, str):
        return is_remote_path(path)
    if isinstance(path, (tuple, list)):
        return any(is_remote(p) for p in path)
    return False


def check_local_path(path: str) -> None:
    """Raise the specific error for a local ``path`` that cannot be a raster file;
    remote paths (:func:`is_remote_path`) are not checked.

    Raises:
        SourceNotFoundError: nothing exists at ``path``.
        SourceIsDirectoryError: ``path`` is a directory.
        InvalidSourceError: ``path`` is an empty file (0 bytes).
    """
    if is_remote_path(path):
        return
    if not os.path.exists(path):
        raise SourceNotFoundError(f"raster file not found: {path}")
    if os.path.isdir(path):
        raise SourceIsDirectoryError(f"{path} is a directory, not a raster file")
    if os.path.getsize(path) == 0:
        raise InvalidSourceError(f"{path} is an empty file (0 bytes), not a raster")


def to_gdal_path(url: str) -> str:
    """``s3://bucket/key`` -> ``/vsis3/bucket/key``, ``gs://`` -> ``/vsigs/``; other
    paths unchanged (GDAL reads ``http(s)://`` URLs itself)."""
    if url.startswith("s3://"):
        return "/vsis3/" + url[5:]
    if url.startswith("gs://"):
        return "/vsigs/" + url[5:]
    return url

