"""Re-export of :mod:`leafmap_tiles.gdal_errors`, the one classifier of GDAL failures
(kept here because the render modules have always imported it from this place)."""

from leafmap_tiles.gdal_errors import NETWORK_ERRORS, check_local, classify, http_timeout, is_remote

__all__ = ["NETWORK_ERRORS", "check_local", "classify", "http_timeout", "is_remote"]
