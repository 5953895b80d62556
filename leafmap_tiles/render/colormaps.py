"""Colormap resolution: matplotlib names, colour lists and explicit value maps.

A colormap is given as one of
- a matplotlib name in matplotlib's own spelling (``"RdYlGn"``, ``"viridis_r"``);
- a list of colours (any matplotlib colour: names, ``"#rrggbb[aa]"``, RGB(A) tuples
  in 0..1 or 0..255) interpolated linearly, or exactly 256 colours used as they are;
- a mapping ``{value: colour}`` for categorical data: exact colours, no stretch,
  nearest resampling, values not in the map are transparent.

``resolve_colormap`` returns a :class:`ResolvedColormap`: a 256x4 uint8 lookup table
(applied after the ``vmin``/``vmax`` rescale to 0..255) or an explicit map.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from leafmap_tiles.errors import StyleError


@dataclass(frozen=True)
class ResolvedColormap:
    """``kind`` is ``"lut"`` (``lut`` is a (256, 4) uint8 RGBA table) or
    ``"explicit"`` (``explicit`` maps a data value to an (r, g, b, a) 0..255 tuple)."""

    kind: str
    lut: np.ndarray | None = None
    explicit: dict | None = None


def _to_rgba255(colour) -> tuple[int, int, int, int]:
    from matplotlib.colors import to_rgba

    if isinstance(colour, (list, tuple)) and len(colour) in (3, 4) and any(
        isinstance(c, (int, float)) and c > 1 for c in colour
    ):
        vals = [int(round(float(c))) for c in colour]
        if any(v < 0 or v > 255 for v in vals):
            raise StyleError(f"colour {colour!r} has a component outside 0..255")
        return tuple(vals + [255] * (4 - len(vals)))  # type: ignore[return-value]
    try:
        r, g, b, a = to_rgba(colour)
    except (ValueError, TypeError) as exc:
        raise StyleError(f"invalid colour {colour!r} in colormap: {exc}") from None
    return tuple(int(round(v * 255)) for v in (r, g, b, a))  # type: ignore[return-value]


@lru_cache(maxsize=256)
def _named_lut(name: str) -> np.ndarray:
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        names = list(matplotlib.colormaps)
        lower = {n.lower(): n for n in names}
        close = [lower[c] for c in difflib.get_close_matches(name.lower(), list(lower), n=3)]
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise StyleError(
            f"unknown colormap {name!r}: not a matplotlib colormap name "
            f"(names are case-sensitive, e.g. 'RdYlGn', 'viridis_r').{hint}"
        ) from None
    lut = (cmap(np.linspace(0.0, 1.0, 256)) * 255.0).round().astype(np.uint8)
    lut.setflags(write=False)
    return lut


def _list_lut(colours: list) -> np.ndarray:
    from matplotlib.colors import LinearSegmentedColormap

    if len(colours) < 2:
        raise StyleError("a colormap given as a list needs at least 2 colours")
    rgba = np.array([_to_rgba255(c) for c in colours], dtype=np.uint8)
    if len(rgba) == 256:
        return rgba
    cmap = LinearSegmentedColormap.from_list("custom", rgba / 255.0, N=256)
    return (cmap(np.linspace(0.0, 1.0, 256)) * 255.0).round().astype(np.uint8)


def _number(key) -> float | int:
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        return key
    try:
        f = float(key)
    except (TypeError, ValueError):
        raise StyleError(f"explicit colormap key {key!r} is not a number") from None
    return int(f) if f.is_integer() else f


def resolve_colormap(spec) -> ResolvedColormap:
    """Resolve a colormap specification (see module docstring) or a JSON string of a
    list/mapping (as sent in a tile URL).

    Raises :class:`~leafmap_tiles.errors.StyleError` for unknown names, invalid
    colours or non-numeric explicit keys.
    """
    if isinstance(spec, str):
        s = spec.strip()
        if s[:1] in "[{":
            try:
                spec = json.loads(s)
            except (ValueError, RecursionError) as exc:
                raise StyleError(f"colormap is not valid JSON: {exc}") from None
        else:
            return ResolvedColormap("lut", lut=_named_lut(s))
    if isinstance(spec, dict):
        if not spec:
            raise StyleError("explicit colormap is empty")
        explicit = {_number(k): _to_rgba255(v) for k, v in spec.items()}
        return ResolvedColormap("explicit", explicit=explicit)
    if isinstance(spec, (list, tuple)):
        return ResolvedColormap("lut", lut=_list_lut(list(spec)))
    raise StyleError(f"unsupported colormap {spec!r}: give a matplotlib name, a list of colours or a {{value: colour}} dict")


def apply_explicit(data: np.ndarray, mask: np.ndarray, explicit: dict) -> np.ndarray:
    """Map ``data`` (2D) through an explicit ``{value: rgba}`` map; returns (H, W, 4)
    uint8.  Pixels whose value is not a key, or where ``mask`` is True, get alpha 0."""
    out = np.zeros(data.shape + (4,), dtype=np.uint8)
    for value, rgba in explicit.items():
        sel = data == value
        out[sel] = rgba
    out[mask] = 0
    return out
