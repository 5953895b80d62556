"""leafmap's (TiTiler's) style keywords turned into ours."""

from __future__ import annotations

from leafmap_tiles.errors import StyleError


def leafmap_style(kwargs: dict) -> dict:
    """``kwargs`` with leafmap's ``rescale="0,255"`` (or ``(0, 255)``; one range, or
    ``"0,3000;0,2000;0,1000"`` per band) as ``vmin``/``vmax``, ``colormap_name`` as
    ``colormap`` and ``nodata``/``expression`` as they are.  Raises ``StyleError`` for
    a malformed ``rescale``."""
    out = dict(kwargs)
    rescale = out.pop("rescale", None)
    if rescale is not None:
        parts = rescale if isinstance(rescale, (list, tuple)) and rescale and isinstance(rescale[0], (list, tuple)) \
            else [rescale]
        if isinstance(rescale, str):
            parts = [p for p in rescale.split(";") if p.strip()]
        lo, hi = [], []
        try:
            for p in parts:
                a, b = (float(v) for v in (p.split(",") if isinstance(p, str) else p))
                lo.append(a)
                hi.append(b)
        except (TypeError, ValueError):
            raise StyleError(f"rescale must be 'min,max' (or 'min,max;min,max;...' per band), got {rescale!r}") from None
        out.setdefault("vmin", lo[0] if len(lo) == 1 else lo)
        out.setdefault("vmax", hi[0] if len(hi) == 1 else hi)
    name = out.pop("colormap_name", None)
    if name is not None:
        from leafmap_tiles.map.datasets import matplotlib_name

        out.setdefault("colormap", matplotlib_name(name))  # TiTiler's "rdylgn" is matplotlib's "RdYlGn"
    return out
