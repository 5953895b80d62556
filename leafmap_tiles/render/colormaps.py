"""Colormap resolution: matplotlib names, colour lists and explicit value maps.

A colormap is given as one of
- a matplotlib name in matplotlib's own spelling (``"RdYlGn"``, ``"viridis_r"``);
- a list of colours (any matplotlib colour: names, ``"#rrggbb[aa]"``, RGB(A) tuples
  in 0..1 or 0..255) interpolated linearly, or exactly 256 colours used as they are;
- a mapping ``{value: colour}`` for categorical data: exact colours, no stretch,
  nearest resampling, values not in the map are transparent;
- a table ``{"colors": [[r, g, b, a], ...], "under": rgba, "over": rgba, "bad": rgba}``
  (0..255 each; what the kernel sends for a ``matplotlib.colors.Colormap``: its ``N``
  colours and its ``set_under``/``set_over``/``set_bad`` colours).

``resolve_colormap`` returns a :class:`ResolvedColormap`: an ``(N, 4)`` uint8 table
with under/over/bad colours, or an explicit map.  Values are coloured exactly as
``matplotlib.pyplot.imshow(data, cmap=..., vmin=..., vmax=...)`` colours them
(:func:`lut_index`): ``Normalize(vmin, vmax)``, then entry ``min(floor(N x), N - 1)``;
below ``vmin`` the under colour, above ``vmax`` the over colour (by default the first
and last entries), nodata the bad colour (by default transparent).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from leafmap_tiles.errors import StyleError

REGISTERED_PREFIX = "cm:"  # a registered colormap's id in a tile URL: "cm:" + 20 hex digits


def colormap_id(spec) -> str:
    """Content id of a colormap specification (the JSON-able forms of the module
    docstring): the same spec always gets the same id, on any server."""
    import hashlib

    canon = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return REGISTERED_PREFIX + hashlib.sha1(canon.encode()).hexdigest()[:20]


@dataclass(frozen=True, eq=False)
class ResolvedColormap:
    """``kind`` is ``"lut"`` (``lut`` is an (N, 4) uint8 RGBA table, N = the
    matplotlib colormap's ``N``; ``under``/``over`` are RGBA 0..255 tuples or None for
    the first/last entry; ``bad`` is the RGBA of nodata pixels) or ``"explicit"``
    (``explicit`` maps a data value to an (r, g, b, a) 0..255 tuple)."""

    kind: str
    lut: np.ndarray | None = None
    explicit: dict | None = None
    under: tuple | None = None
    over: tuple | None = None
    bad: tuple = (0, 0, 0, 0)

    @property
    def n(self) -> int:
        return 0 if self.lut is None else int(len(self.lut))

    @property
    def bad_visible(self) -> bool:
        return self.kind == "lut" and self.bad[3] > 0

    def table(self) -> np.ndarray:
        """``(N + 3, 4)`` uint8: the N colours, then under, over and bad (the layout
        of matplotlib's own ``Colormap._lut``)."""
        lut = self.lut
        under = lut[0] if self.under is None else self.under
        over = lut[-1] if self.over is None else self.over
        return np.vstack([lut, np.array([under, over, self.bad], dtype=np.uint8)])


def lut_index(cmap: ResolvedColormap, data: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Index into ``cmap.table()`` of every value of ``data`` (2D), computed as
    matplotlib computes it: ``matplotlib.colors.Normalize(vmin, vmax)`` (same dtype
    rules: float32 kept, small integers in float32), times ``N``, truncated; ``1.0``
    is the last entry; below 0 is ``N`` (under), at or above ``N`` is ``N + 1``
    (over), NaN is ``N + 2`` (bad).  A custom under/over colour equal to the default
    keeps the plain index (so a default colormap needs only N palette entries)."""
    from matplotlib.colors import Normalize

    n = cmap.n
    with np.errstate(invalid="ignore", over="ignore"):
        x = np.asarray(Normalize(vmin=float(vmin), vmax=float(vmax))(data).data)
        x = x * x.dtype.type(n) if x.dtype.kind == "f" else x.astype("float64") * n
        x[x == n] = n - 1
        under = x < 0
        over = x >= n
        bad = np.isnan(x)
        idx = np.zeros(x.shape, dtype=np.int32)
        ok = ~(under | over | bad)
        idx[ok] = x[ok].astype(np.int32)
    idx[under] = 0 if cmap.under is None else n
    idx[over] = n - 1 if cmap.over is None else n + 1
    idx[bad] = n + 2
    return idx


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
    lut = _mpl_table(cmap)
    lut.setflags(write=False)
    return lut


def _mpl_table(cmap) -> np.ndarray:
    """The (N, 4) uint8 colours of a matplotlib Colormap, as ``cmap(i, bytes=True)``
    gives them (truncated, not rounded, like matplotlib)."""
    return np.asarray(cmap(np.arange(cmap.N), bytes=True), dtype=np.uint8)


def _rgba255_strict(value, what: str) -> tuple[int, int, int, int]:
    """An [r, g, b, a] list of integers 0..255 (the table form has no 0..1 colours)."""
    if (not isinstance(value, (list, tuple)) or len(value) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer()
                       and 0 <= v <= 255 for v in value)):
        raise StyleError(f"{what} must be [r, g, b, a] with integers 0..255, got {value!r}")
    return tuple(int(v) for v in value)  # type: ignore[return-value]


def _rgba_or_none(value, what: str) -> tuple | None:
    return None if value is None else _rgba255_strict(value, what)


def _table_spec(spec: dict) -> ResolvedColormap:
    colours = spec.get("colors")
    if not isinstance(colours, (list, tuple)) or len(colours) < 1:
        raise StyleError("colormap table needs 'colors': a list of at least one colour")
    if len(colours) > 65536:
        raise StyleError(f"colormap table has {len(colours)} colours; at most 65536")
    unknown = set(spec) - {"colors", "under", "over", "bad"}
    if unknown:
        raise StyleError(f"unknown colormap table field(s): {', '.join(sorted(unknown))}")
    lut = np.array([_rgba255_strict(c, "a colormap table colour") for c in colours], dtype=np.uint8).reshape(-1, 4)
    lut.setflags(write=False)
    bad = _rgba_or_none(spec.get("bad"), "'bad'") or (0, 0, 0, 0)
    return ResolvedColormap("lut", lut=lut, under=_rgba_or_none(spec.get("under"), "'under'"),
                            over=_rgba_or_none(spec.get("over"), "'over'"), bad=bad)


def colormap_table_spec(cmap) -> dict:
    """The JSON-able table of a ``matplotlib.colors.Colormap``: its ``N`` colours and
    its under/over/bad colours (None where they are the defaults: first/last entry,
    transparent), all as 0..255 RGBA lists.  The tile server colours with it exactly
    as matplotlib colours with ``cmap``."""
    from matplotlib.colors import to_rgba

    lut = _mpl_table(cmap)

    def byte(c):
        return [int(v) for v in (np.asarray(to_rgba(c)) * 255).astype(np.uint8)]  # matplotlib's truncation

    under, over, bad = byte(cmap.get_under()), byte(cmap.get_over()), byte(cmap.get_bad())
    return {
        "colors": lut.tolist(),
        "under": None if under == lut[0].tolist() else under,
        "over": None if over == lut[-1].tolist() else over,
        "bad": None if bad == [0, 0, 0, 0] else bad,
    }


def _list_lut(colours: list) -> np.ndarray:
    from matplotlib.colors import LinearSegmentedColormap

    if len(colours) < 2:
        raise StyleError("a colormap given as a list needs at least 2 colours")
    rgba = np.array([_to_rgba255(c) for c in colours], dtype=np.uint8)
    if len(rgba) == 256:
        return rgba
    return _mpl_table(LinearSegmentedColormap.from_list("custom", rgba / 255.0, N=256))


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
    if isinstance(spec, dict) and "colors" in spec:
        return _table_spec(spec)
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
