"""Map view helpers: the centre and zoom that fit bounds in a map of a given size."""

from __future__ import annotations

import math

DEFAULT_HEIGHT = "600px"  # a Map's default height: room for the slider, colorbar and panels
DEFAULT_SIZE = (800, 600)  # px, a notebook map (about the width of a JupyterLab cell)


def map_size(m) -> tuple[int, int]:
    """(width, height) px of map ``m`` from its layout when given in px, else the
    default for the missing value."""
    out = list(DEFAULT_SIZE)
    for i, attr in enumerate(("width", "height")):
        value = str(getattr(m.layout, attr, None) or "").strip()
        if value.endswith("px"):
            try:
                out[i] = max(int(float(value[:-2])), 64)
            except ValueError:
                pass
    return out[0], out[1]


def _merc_y(lat: float) -> float:
    lat = max(min(lat, 85.0511), -85.0511)
    s = math.sin(math.radians(lat))
    return 0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)


def fit(bounds, size=DEFAULT_SIZE, max_zoom: int = 22) -> tuple[tuple[float, float], int]:
    """((lat, lon) centre, zoom) showing ``bounds`` = (west, south, east, north) in
    EPSG:4326 in a ``size`` = (width, height) px Web Mercator map of 256 px tiles.
    West > east means the bounds cross the antimeridian."""
    w, s, e, n = bounds
    if e < w:
        e += 360.0
    lon = (w + e) / 2.0
    if lon > 180:
        lon -= 360.0
    y0, y1 = _merc_y(n), _merc_y(s)
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y0 + y1) / 2))))
    dx = max((e - w) / 360.0, 1e-12)
    dy = max(y1 - y0, 1e-12)
    zx = math.log2(size[0] / 256.0 / dx)
    zy = math.log2(size[1] / 256.0 / dy)
    zoom = int(math.floor(min(zx, zy)))
    return (lat, lon), max(0, min(zoom, max_zoom))
