"""The style parameters of a tile URL, as the kernel writes them: a layer's
``indexes``, ``vmin``/``vmax`` and ``colormap`` checked and turned into URL text.

Shared by adding a layer (:mod:`leafmap_tiles.map.layers`) and restyling it
(:mod:`leafmap_tiles.map.restyle`); the server checks them against the file.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from leafmap_tiles.errors import StyleError

__all__ = ["colormap_param", "index_list", "number_list"]


def colormap_param(colormap: Any, server: Any = None) -> Any:
    """The ``colormap`` style parameter of a tile URL: a matplotlib name stays a name;
    a ``matplotlib.colors.Colormap`` becomes its table (its ``N`` colours and its
    ``set_under``/``set_over``/``set_bad`` colours); a list of colours or a ``{value:
    colour}`` dict stays as given.  With ``server`` every non-name colormap is
    registered there and the parameter is its short id (``"cm:<hex>"``), so the URL
    stays short (a 256-colour list would be about 5,000 characters); without, it is
    the JSON of the specification."""
    import json

    if colormap is None or isinstance(colormap, str):
        return colormap
    from matplotlib.colors import Colormap

    from leafmap_tiles.render.colormaps import colormap_table_spec

    spec: Any
    if isinstance(colormap, Colormap):
        spec = colormap_table_spec(colormap)
    elif isinstance(colormap, dict):
        spec = {str(k): _colour_json(v) for k, v in colormap.items()}
    elif isinstance(colormap, (list, tuple)):
        spec = [_colour_json(c) for c in colormap]
    else:
        raise StyleError(f"unsupported colormap {colormap!r}: give a matplotlib name, a Colormap, a list of colours or a {{value: colour}} dict")
    if server is not None:
        return server.register_colormap(spec)
    return json.dumps(spec)


def _colour_json(c: Any) -> str | list[float]:
    if isinstance(c, str):
        return c
    if isinstance(c, (list, tuple)):
        return [float(v) for v in c]
    raise StyleError(f"invalid colour {c!r}")



def index_list(indexes: Any) -> list[int] | None:
    """``indexes`` as a list of ints (an int, list, tuple or numpy array of integral
    numbers); StyleError for anything else (1.5, "a", True, empty)."""
    if indexes is None:
        return None
    if isinstance(indexes, np.ndarray):
        indexes = indexes.tolist()
    items = indexes if isinstance(indexes, (list, tuple)) else [indexes]
    out = []
    for i in items:
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, float, np.integer, np.floating)) \
                or not float(i).is_integer():
            raise StyleError(f"indexes must be integers (1-based band numbers), got {indexes!r}")
        out.append(int(i))
    if not out:
        raise StyleError("indexes is empty")
    return out


def number_list(v: Any, name: str) -> str | None:
    """``vmin``/``vmax`` (a number, a list/tuple of numbers or a numpy array) as the
    comma-separated text of a tile URL, e.g. ``"0.0,10.5"``; None stays None;
    StyleError naming ``name`` for anything else."""
    if v is None:
        return None
    if isinstance(v, np.ndarray):
        v = v.tolist()
    items = v if isinstance(v, (list, tuple)) else [v]
    try:
        vals = [float(x) for x in items]
    except (TypeError, ValueError):
        raise StyleError(f"{name} must be a number or a list of numbers, got {v!r}") from None
    return ",".join(repr(x) for x in vals)
