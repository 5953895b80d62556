"""Turn GDAL/rasterio failures into the specific errors of :mod:`leafmap_tiles.errors`."""

from __future__ import annotations

import re

from leafmap_tiles.errors import (
    REMOTE_PREFIXES,
    AuthenticationError,
    InvalidSourceError,
    LeafmapTilesError,
    SourceNotFoundError,
    SourceTimeoutError,
)
from leafmap_tiles.errors import check_local_path as check_local  # noqa: F401  (re-export)


def is_remote(path: str) -> bool:
    return path.startswith(REMOTE_PREFIXES)


_HTTP_CODE = re.compile(r"HTTP (?:response )?code[: ]+(\d{3})", re.I)


def classify(path: str, exc: BaseException, during: str = "open") -> LeafmapTilesError:
    """Map an exception raised while opening/reading ``path`` to a specific error."""
    if isinstance(exc, LeafmapTilesError):
        return exc
    msg = str(exc)
    low = msg.lower()
    m = _HTTP_CODE.search(msg)
    code = int(m.group(1)) if m else None
    if code in (401, 403) or "401" in msg and "unauthorized" in low or "access denied" in low:
        return AuthenticationError(
            f"{path}: the server refused access (HTTP {code or 401}). Log in to the data provider first "
            "(e.g. leafmap_tiles.providers.terrascope.login()) or check the credentials."
        )
    if code == 404 or (is_remote(path) and ("404" in msg or "not found" in low)):
        return SourceNotFoundError(f"{path}: the server answered HTTP 404 (not found)")
    if "timed out" in low or "timeout" in low or "operation too slow" in low:
        return SourceTimeoutError(f"{path}: no answer from the server within the timeout ({msg.strip()})")
    if is_remote(path) and code is not None:
        return InvalidSourceError(f"{path}: the server answered HTTP {code}")
    if "not recognized as" in low or "not a supported file format" in low:
        return InvalidSourceError(f"{path} is not a raster format that GDAL can read ({msg.strip()})")
    if during == "read" or any(k in low for k in ("tiffread", "ireadblock", "read error", "truncat", "cannot read", "failed to read")):
        return InvalidSourceError(
            f"{path}: pixel data cannot be read, the file is truncated or corrupt ({msg.strip()})"
        )
    if is_remote(path) and ("could not resolve" in low or "couldn't connect" in low or "connection" in low):
        return SourceTimeoutError(f"{path}: cannot reach the server ({msg.strip()})")
    return InvalidSourceError(f"{path}: cannot open as a raster ({msg.strip()})")
