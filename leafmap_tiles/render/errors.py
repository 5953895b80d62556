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


# Earth's ellipsoids (WGS 84, GRS 1980, Clarke, Airy, Bessel, Everest, Krassowsky, the
# authalic spheres ...) have semi-major axes between 6,370 and 6,380 km; other bodies'
# are far off (Venus 6,051.8 km, Mars 3,396.19 km, the Moon 1,737.4 km).
EARTH_SEMI_MAJOR_M = (6_350_000.0, 6_400_000.0)


def check_earth_crs(path: str, crs) -> None:
    """Raise :class:`InvalidSourceError` when ``crs`` (a rasterio CRS) is not on the
    Earth (its ellipsoid's semi-major axis is outside :data:`EARTH_SEMI_MAJOR_M`):
    such a raster cannot be placed on an Earth basemap."""
    import pyproj

    try:
        ell = pyproj.CRS.from_user_input(crs.to_wkt()).ellipsoid
    except Exception:
        return  # PROJ cannot tell; the bounds transform reports real problems
    if ell is None or ell.semi_major_metre is None:
        return
    a = float(ell.semi_major_metre)
    if not EARTH_SEMI_MAJOR_M[0] <= a <= EARTH_SEMI_MAJOR_M[1]:
        raise InvalidSourceError(
            f"{path}: its CRS ({crs.to_string() if crs.to_epsg() else pyproj.CRS.from_user_input(crs.to_wkt()).name}) "
            f"is on the ellipsoid {ell.name!r} with a semi-major axis of {a / 1000:,.1f} km, not the Earth's "
            "(about 6,378 km): a raster of another planet or moon cannot be shown on an Earth map"
        )
