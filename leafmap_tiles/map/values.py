"""Pixel values in physical units: scale/offset of a layer applied to the server's
point answers (``TileServer.points``).  No widgets here."""

from __future__ import annotations

import math


def scale_offset(layer, band: str | None = None, result: dict | None = None) -> tuple[float, float]:
    """(scale, offset) that turn a raw value of ``layer`` into physical units.

    Order: the layer's own ``scale``/``offset`` attributes (e.g. STAC ``raster:scale`` /
    ``raster:offset``); else, for a plain band (not an expression), the file's tags
    (``info["scales"]``/``info["offsets"]``, or those in the point ``result``); else
    (1, 0).  ``band`` is a band label such as ``"b2"``."""
    s, o = getattr(layer, "scale", None), getattr(layer, "offset", None)
    if s is not None or o is not None:
        return (1.0 if s is None else float(s)), (0.0 if o is None else float(o))
    style = getattr(layer, "style", None) or {}
    if style.get("expression") or band is None or not band.startswith("b") or not band[1:].isdigit():
        return 1.0, 0.0
    i = int(band[1:]) - 1
    info = getattr(layer, "info", None) or {}
    scales = (result or {}).get("scales") or info.get("scales") or []
    offsets = (result or {}).get("offsets") or info.get("offsets") or []
    s = float(scales[i]) if i < len(scales) and scales[i] is not None else 1.0
    o = float(offsets[i]) if i < len(offsets) and offsets[i] is not None else 0.0
    return s, o


def physical(value, scale: float, offset: float):
    """``value * scale + offset``; ``None`` (nodata) and non-finite values stay ``None``."""
    if value is None:
        return None
    v = float(value)
    if not math.isfinite(v):
        return None
    if scale == 1.0 and offset == 0.0:
        return value
    return v * scale + offset


def band_values(layer, result: dict) -> list[tuple[str, object]]:
    """``[(band label, physical value or None), ...]`` of one point ``result``."""
    out = []
    bands = result.get("bands") or [f"b{i + 1}" for i in range(len(result.get("values") or []))]
    for band, raw in zip(bands, result.get("values") or []):
        s, o = scale_offset(layer, band, result)
        label = (getattr(layer, "band_labels", None) or {}).get(band, band)  # e.g. a STAC asset name
        out.append((label, physical(raw, s, o)))
    return out


def wrap_lon(lon: float) -> float:
    """``lon`` (degrees) in [-180, 180): the same meridian on the map's first world copy."""
    lon = float(lon)
    return lon if -180.0 <= lon < 180.0 else (lon + 180.0) % 360.0 - 180.0


def query(layers, lon: float, lat: float) -> list[dict | None]:
    """One batch request for the point answers of ``layers`` (raster tile layers of
    one server); ``None`` for a layer that is not ours.  Duplicate (source, style) pairs
    are asked once."""
    keyed = []
    server = None
    for layer in layers:
        sid = getattr(layer, "source_id", None)
        if sid is None or getattr(layer, "server", None) is None:
            keyed.append(None)
            continue
        server = server or layer.server
        keyed.append((sid, tuple(sorted((layer.style or {}).items()))))
    unique = list(dict.fromkeys(k for k in keyed if k is not None))
    if not unique:
        return [None] * len(keyed)
    # a click on another copy of the world (lon beyond +-180) is the same place
    results = server.points([(sid, dict(style)) for sid, style in unique], wrap_lon(lon), lat)
    by_key = dict(zip(unique, results))
    return [None if k is None else by_key[k] for k in keyed]


def format_value(v) -> str:
    """A value as a person reads it: ``"nodata"`` for None, integers as they are,
    floats to 4 significant digits (``0.3981``, ``1234``), one decimal from 10 000 up
    (``12345.7``)."""
    if v is None:
        return "nodata"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return "nodata"
        if v == int(v) and abs(v) < 1e15:
            return str(int(v))
        if abs(v) >= 1e4:
            return f"{v:.1f}"
        return f"{v:.4g}"
    return str(v)


def units_of(layer) -> str | None:
    """The units of ``layer``'s values when known: its ``units`` attribute or
    ``metadata["units"]`` (e.g. from STAC ``raster:bands[].unit``), else None."""
    units = getattr(layer, "units", None) or (getattr(layer, "metadata", None) or {}).get("units")
    return str(units) if units else None
