"""Re-export of :mod:`leafmap_tiles.gdal_errors`, the one classifier of GDAL failures
(kept here because the render modules have always imported it from this place), and
the check that a raster's CRS is on the Earth."""

from leafmap_tiles.errors import InvalidSourceError
from leafmap_tiles.gdal_errors import NETWORK_ERRORS, check_local, classify, http_timeout, is_remote

__all__ = ["NETWORK_ERRORS", "check_earth_crs", "check_local", "classify", "http_timeout", "is_remote"]


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
