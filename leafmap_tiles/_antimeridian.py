"""Longitude coverage of geographic rasters whose valid pixels wrap across 180°.

A global-width EPSG:4326 raster (west -180, east 180) may have data only near the
antimeridian, e.g. Fiji or the Bering Strait on both sides of 180°.  Its bounds
are then the whole globe, and the convex hull of its valid pixels is one polygon
across longitude 0.  The functions here find the longitudes actually covered: the
complement of the widest longitude gap without data, taken around the circle.
Used by the tile server (bounds to zoom to) and by the key store (footprints).
"""

from __future__ import annotations

import numpy as np

GLOBAL_WIDTH_DEG = 359.0  # a geographic raster at least this wide may wrap


def is_global_width(crs, bounds) -> bool:
    """Whether a raster in ``crs`` with native ``bounds`` (W, S, E, N) spans (nearly)
    all longitudes in a geographic CRS, so that its data may wrap across 180°."""
    return bool(crs is not None and crs.is_geographic and abs(bounds[2] - bounds[0]) >= GLOBAL_WIDTH_DEG)


def wrapped_span(lons: np.ndarray, pixel_deg: float) -> tuple[float, float] | None:
    """``(west, east)`` EPSG:4326 of longitudes ``lons`` (pixel centres, degrees, any
    order) whose pixels are ``pixel_deg`` wide, when they wrap across the antimeridian:
    the widest gap between neighbouring columns is inside (-180, 180), wider than the
    gap across 180°, and at least two pixels wide.  Then west > east (west is the
    first covered longitude east of the gap).  ``None`` when they do not wrap."""
    if lons.size < 2:
        return None
    lon = np.unique(((np.asarray(lons, dtype="float64") + 180.0) % 360.0) - 180.0)
    if lon.size < 2:
        return None
    gaps = np.diff(lon) - pixel_deg  # empty longitudes between neighbouring columns
    wrap_gap = lon[0] + 360.0 - lon[-1] - pixel_deg
    i = int(np.argmax(gaps))
    if gaps[i] <= max(wrap_gap, 2 * pixel_deg):
        return None
    half = pixel_deg / 2.0
    return float(lon[i + 1] - half), float(lon[i] + half)


def data_span(lons: np.ndarray, pixel_deg: float) -> tuple[float, float]:
    """``(west, east)`` EPSG:4326 covered by pixels centred at ``lons``: the wrapped
    span of :func:`wrapped_span` (west > east) when they wrap across 180°, else from
    the westernmost to the easternmost pixel edge."""
    span = wrapped_span(lons, pixel_deg)
    if span is not None:
        return span
    lon = ((np.asarray(lons, dtype="float64") + 180.0) % 360.0) - 180.0
    half = pixel_deg / 2.0
    return max(float(lon.min()) - half, -180.0), min(float(lon.max()) + half, 180.0)


def split_at_gap(lons: np.ndarray, span: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Boolean selections (east side: west of 180° from ``span[0]``; west side: from
    -180° to ``span[1]``) of ``lons`` for a ``span`` from :func:`wrapped_span`."""
    lon = ((np.asarray(lons, dtype="float64") + 180.0) % 360.0) - 180.0
    cut = (span[0] + span[1]) / 2.0  # inside the gap
    return lon > cut, lon <= cut
