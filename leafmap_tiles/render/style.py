"""Style of a tile request: band selection, stretch range, colormap, nodata.

Styles travel in tile URLs as query parameters (all strings):

``indexes=4,1,2``  1-based band indexes (1 or 3 bands; 4 when the 4th is alpha)
``expression=(b4-b1)/(b4+b1)``  band math, evaluated in float64; ``;`` separates bands
``vmin=0.1`` / ``vmax=0.9``  stretch range; comma lists give one value per band
``colormap=RdYlGn``  matplotlib name, a JSON list of colours / ``{value: colour}`` map, or
the id of a colormap registered with the server (``cm:<hex>``, short URLs for any colormap)
``stretch=none``  how a missing vmin/vmax is filled: ``percentile`` (2nd/98th),
``minmax``, ``none`` (the integer dtype's range, e.g. 0..255); default ``none``
for 8-bit RGB(A), ``percentile`` otherwise
``nodata=0``  replaces the file's nodata tag (``nan`` allowed for float data)
``resampling=nearest``  any rasterio resampling name
``tile_size=256``  256 or 512 pixels

:func:`parse_style` validates them against a source's :class:`SourceInfo` and raises
:class:`~leafmap_tiles.errors.StyleError` with a message naming the problem.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import numpy as np

from leafmap_tiles.errors import StyleError
from leafmap_tiles.render.colormaps import REGISTERED_PREFIX, ResolvedColormap, resolve_colormap

RESAMPLING = {"nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode", "gauss", "rms"}
STYLE_KEYS = {"indexes", "expression", "vmin", "vmax", "stretch", "colormap", "nodata", "resampling", "tile_size"}
STRETCHES = ("percentile", "minmax", "none")


@dataclass
class Style:
    """A validated style.  ``indexes`` is a tuple of 1-based band indexes read from the
    file (for an expression: the bands it uses); ``vmin``/``vmax`` hold one value per
    output band or None (defaults come from ``stretch``, see the module docstring)."""

    indexes: tuple[int, ...] | None = None
    expression: str | None = None
    vmin: tuple[float, ...] | None = None
    vmax: tuple[float, ...] | None = None
    stretch: str | None = None
    colormap: ResolvedColormap | None = None
    colormap_spec: str | None = None
    nodata: float | None = None
    resampling: str = "nearest"
    tile_size: int = 256
    extra: dict = field(default_factory=dict)

    @property
    def explicit(self) -> bool:
        return self.colormap is not None and self.colormap.kind == "explicit"

    def stats_key(self) -> tuple:
        """What the default stretch depends on (one statistics computation per key)."""
        return (self.expression, self.indexes, self.nodata)


def _parts(value) -> list | None:
    """``"1,2"`` / ``[1, 2]`` / ``1`` -> list of items; None or "" -> None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return [p for p in value.split(",") if p.strip() != ""]
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _non_ascii(value) -> bool:
    """A string with a character that is not ASCII: ``float()`` and ``int()`` also take
    other scripts' digits ("١" is 1, "²" raises later), which no URL parameter means."""
    if isinstance(value, (list, tuple)):
        return any(_non_ascii(v) for v in value)
    return isinstance(value, str) and not value.isascii()


def _floats(value, name: str) -> tuple[float, ...] | None:
    parts = _parts(value)
    if parts is None:
        return None
    bad = f"{name} must be a number or a comma-separated list of numbers, got {value!r}"
    if _non_ascii(parts):
        raise StyleError(bad)
    try:
        vals = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        raise StyleError(bad) from None
    if any(not math.isfinite(v) for v in vals):
        raise StyleError(f"{name} must be finite, got {value!r}")
    return vals


def _indexes(value) -> tuple[int, ...] | None:
    parts = _parts(value)
    if parts is None:
        return None
    if _non_ascii(parts):
        raise StyleError(f"indexes must be integers, got {value!r}")
    out = []
    for p in parts:
        try:
            f = float(p)
        except (TypeError, ValueError):
            raise StyleError(f"indexes must be integers, got {value!r}") from None
        if not f.is_integer():
            raise StyleError(f"indexes must be integers, got {value!r}")
        out.append(int(f))
    return tuple(out)


def _check_nodata(nodata, dtype: str) -> float | None:
    if nodata is None or nodata == "":
        return None
    if isinstance(nodata, str) and nodata.lower() == "nan":
        value = float("nan")
    elif _non_ascii(nodata):
        raise StyleError(f"nodata must be a number or 'nan', got {nodata!r}")
    else:
        try:
            value = float(nodata)
        except (TypeError, ValueError):
            raise StyleError(f"nodata must be a number or 'nan', got {nodata!r}") from None
    dt = np.dtype(dtype)
    if np.issubdtype(dt, np.integer):
        info = np.iinfo(dt)
        if math.isnan(value) or not value.is_integer() or not (info.min <= value <= info.max):
            raise StyleError(
                f"nodata={nodata!r} cannot be held by this {dt.name} raster (valid: integers {info.min}..{info.max})"
            )
    elif np.issubdtype(dt, np.floating) and not math.isnan(value):
        finfo = np.finfo(dt)
        if not (-finfo.max <= value <= finfo.max):
            raise StyleError(f"nodata={nodata!r} is outside the range of {dt.name}")
    return value


def parse_style(params: dict, info, colormaps=None) -> Style:
    """Validate style ``params`` (query strings or Python values) for a source.

    ``info`` is the source's :class:`~leafmap_tiles.render.engine.SourceInfo`
    (``count``, ``dtype``, ``has_palette``, ``alpha_index``).  ``colormaps`` maps
    registered colormap ids (``"cm:<hex>"``, see :data:`REGISTERED_PREFIX`) to their
    :class:`ResolvedColormap`.  Raises StyleError.
    """
    unknown = set(params) - STYLE_KEYS
    if unknown:
        raise StyleError(f"unknown style parameter(s): {', '.join(sorted(unknown))}")
    count = info.count
    expression = params.get("expression") or None
    indexes = _indexes(params.get("indexes"))
    if expression is not None and indexes is not None:
        raise StyleError("give either indexes or expression, not both")
    if indexes is not None:
        if len(indexes) == 0:
            raise StyleError("indexes is empty")
        bad = [i for i in indexes if i < 1 or i > count]
        if bad:
            raise StyleError(
                f"band index {bad[0]} is out of range: this raster has {count} band(s), "
                f"indexes are 1-based (1..{count})"
            )
        if len(indexes) not in (1, 3):
            raise StyleError(f"indexes must select 1 band or 3 bands (r, g, b), got {len(indexes)}")
    n_out = None
    if expression is not None:
        from rio_tiler.expression import get_expression_blocks, parse_expression

        try:
            used = tuple(parse_expression(expression))
            blocks = get_expression_blocks(expression)
        except Exception as exc:  # rio-tiler raises several types
            raise StyleError(f"invalid expression {expression!r}: {exc}") from None
        if not used:
            raise StyleError(f"expression {expression!r} uses no band (write bands as b1, b2, ...)")
        bad = [i for i in used if i < 1 or i > count]
        if bad:
            raise StyleError(f"expression uses band b{bad[0]} but this raster has {count} band(s)")
        if len(blocks) not in (1, 3):
            raise StyleError("expression must give 1 band or 3 bands separated by ';'")
        _check_expression(expression, blocks, used)
        indexes = used
        n_out = len(blocks)
    else:
        n_out = len(indexes) if indexes else (3 if info.visible_count >= 3 else 1)

    vmin = _floats(params.get("vmin"), "vmin")
    vmax = _floats(params.get("vmax"), "vmax")
    for name, vals in (("vmin", vmin), ("vmax", vmax)):
        if vals is not None and len(vals) not in (1, n_out):
            raise StyleError(f"{name} has {len(vals)} values for {n_out} output band(s)")
    if vmin is not None and len(vmin) == 1:
        vmin = vmin * n_out
    if vmax is not None and len(vmax) == 1:
        vmax = vmax * n_out
    if vmin is not None and vmax is not None:
        for a, b in zip(vmin, vmax):
            if a >= b:
                raise StyleError(f"vmin must be less than vmax, got vmin={a:g}, vmax={b:g}")

    stretch = params.get("stretch") or None
    if stretch is not None:
        if stretch not in STRETCHES:
            raise StyleError(f"unknown stretch {stretch!r}; use one of {', '.join(STRETCHES)}")
        if stretch == "none" and (expression is not None or not np.issubdtype(np.dtype(info.dtype), np.integer)):
            raise StyleError(
                f"stretch='none' needs integer bands (this style gives {'an expression' if expression else info.dtype}); "
                "give vmin/vmax or stretch='percentile'"
            )

    cmap_spec = params.get("colormap")
    colormap = None
    if cmap_spec is not None and cmap_spec != "":
        if isinstance(cmap_spec, str) and cmap_spec.startswith(REGISTERED_PREFIX):
            colormap = (colormaps or {}).get(cmap_spec)
            if colormap is None:
                raise StyleError(
                    f"unknown colormap id {cmap_spec!r}: not registered with this tile server "
                    "(register it with TileServer.register_colormap)"
                )
        else:
            colormap = resolve_colormap(cmap_spec)
        if n_out != 1:
            raise StyleError(
                f"colormap applies to a single band, but this style gives {n_out} bands; "
                "select one band with indexes=<n>"
            )
        if not isinstance(cmap_spec, str):
            import json

            cmap_spec = json.dumps(cmap_spec)
    nodata = _check_nodata(params.get("nodata"), info.dtype)
    resampling = params.get("resampling") or None
    if resampling is not None and resampling not in RESAMPLING:
        raise StyleError(f"unknown resampling {resampling!r}; use one of {', '.join(sorted(RESAMPLING))}")
    if resampling is None:
        resampling = "nearest"
    if _non_ascii(params.get("tile_size")):
        raise StyleError(f"tile_size must be 256 or 512, got {params.get('tile_size')!r}")
    try:
        tile_size = int(params.get("tile_size") or 256)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(float("inf"))
        raise StyleError(f"tile_size must be 256 or 512, got {params.get('tile_size')!r}") from None
    if tile_size not in (256, 512):
        raise StyleError(f"tile_size must be 256 or 512, got {tile_size}")
    return Style(
        indexes=indexes,
        expression=expression,
        vmin=vmin,
        vmax=vmax,
        stretch=stretch,
        colormap=colormap,
        colormap_spec=cmap_spec,
        nodata=nodata,
        resampling=resampling,
        tile_size=tile_size,
    )


def evaluate_blocks(blocks, names, data: np.ndarray) -> np.ndarray:
    """Evaluate rio-tiler expression ``blocks`` (one per output band) with numexpr
    over ``data`` (bands named ``names``, e.g. ``b4``), in float64.  Unlike
    rio-tiler's ``apply_expression`` the result keeps NaN/inf (0/0, log of a negative)
    so that such pixels are treated as nodata, not drawn as 0."""
    import numexpr

    local = {name: np.asarray(band, dtype="float64") for name, band in zip(names, data)}
    shape = data.shape[1:]
    with np.errstate(all="ignore"):
        out = [np.asarray(numexpr.evaluate(b.strip(), local_dict=local), dtype="float64") for b in blocks if b.strip()]
        # a block without a band (a constant) is one value: spread over the pixels
        return np.stack([r if r.shape == shape else np.broadcast_to(r, shape) for r in out])


#: Values evaluated per numexpr call by :func:`evaluate_values`: 8,192 float64 values
#: are 64 KiB, so that the float64 copies of the inputs and numexpr's result stay below
#: glibc's mmap threshold (the servers fix it at 128 KiB) and come from reused heap
#: memory instead of fresh pages (an area series of 40 frames of 78,000 pixels spent a
#: third of the server's CPU time in the page faults of such copies).
VALUES_CHUNK = 8192


def evaluate_values(blocks, names, bands, chunk: int = VALUES_CHUNK) -> list[np.ndarray]:
    """:func:`evaluate_blocks` for 1-D arrays of values (e.g. the pixels inside a
    polygon): ``bands`` is one 1-D array (any numeric dtype) per name of ``names``, all
    of one length ``n``; returns one float64 array of ``n`` values per block, NaN/inf
    kept.  Each value is computed as :func:`evaluate_blocks` computes it (float64
    inputs, numexpr).  Bands of a dtype that float64 holds exactly (8-32-bit integers,
    float16/32/64) go into numexpr as they are and are converted there, a block of
    values at a time; others (64-bit integers) are converted here, ``chunk`` values at a
    time, so that no float64 copy of a whole band is made (see :data:`VALUES_CHUNK`)."""
    import numexpr

    exprs = [b.strip() for b in blocks if b.strip()]
    n = len(bands[0]) if len(bands) else 0
    outs = [np.empty(n, dtype="float64") for _ in exprs]
    local = dict(zip(names, bands))
    with np.errstate(all="ignore"):
        if all(np.can_cast(np.asarray(b).dtype, np.float64, "safe") and np.asarray(b).dtype.kind != "b"
               for b in bands):
            for expr, out in zip(exprs, outs):
                compiled = _compiled_expression(expr, tuple(names))
                args = [local[name] for name in compiled.input_names]
                out[...] = compiled(*args, casting="safe", ex_uses_vml=False)
            return outs
        for i in range(0, n, chunk):
            part = {name: np.asarray(band[i:i + chunk], dtype="float64") for name, band in local.items()}
            for expr, out in zip(exprs, outs):
                out[i:i + chunk] = numexpr.evaluate(expr, local_dict=part)
    return outs


_compiled = threading.local()  # per thread: (expression, band names) -> numexpr.NumExpr


def _compiled_expression(expr: str, names: tuple):
    """numexpr's compiled form of ``expr`` (inputs: the names of ``names`` it uses, as
    float64), made once per expression and thread: numexpr.evaluate parses and checks
    the text at every call, and a compiled expression must not run in two threads at
    once (it keeps its work buffers: the process crashed with a double free)."""
    import numexpr

    cache = getattr(_compiled, "exprs", None)
    if cache is None:
        cache = _compiled.exprs = {}
    key = (expr, names)
    compiled = cache.get(key)
    if compiled is None:
        # numexpr.evaluate's own defaults here (its truediv "auto" finds no ``division``
        # in this module; float64 inputs divide truly either way), sanitized as it does
        context = {"optimization": "aggressive", "truediv": False}
        used = set(numexpr.necompiler.getExprNames(expr, context)[0])
        compiled = numexpr.NumExpr(expr, signature=[(name, np.float64) for name in names if name in used], **context)
        if len(cache) > 64:
            cache.clear()
        cache[key] = compiled
    return compiled


def numexpr_on_calling_thread() -> None:
    """In a server process: numexpr evaluates on the thread that calls it.

    The servers already run tiles and statistics on several threads at once; numexpr's
    own thread pool (one thread per core by default) then only adds its start-up per
    call and its global lock, which runs the callers' evaluations one after another.
    Measured on 78,000 values of an NDVI expression in 8,192-value chunks
    (:func:`evaluate_values`): 2.6 ms with numexpr's 2 threads, 0.38 ms with one, and a
    40-frame area series stopped using the second core (benchmarks/README.md, "Area
    and point time series").  Same arithmetic, same values.  Called by the server
    processes at start (never in the user's kernel)."""
    import numexpr

    numexpr.set_num_threads(1)


def _check_expression(expression: str, blocks, used) -> None:
    apply_expression = evaluate_blocks
    n = max(used)
    names = [f"b{i}" for i in range(1, n + 1)]
    probe = np.ones((n, 2, 2), dtype="float64")
    try:
        with np.errstate(all="ignore"):
            apply_expression(blocks, names, probe)
    except Exception as exc:
        raise StyleError(f"invalid expression {expression!r}: {exc}") from None


def band_labels(style: Style, indexes: tuple[int, ...] | list[int]) -> list[str]:
    """Names of the bands a style draws: the expression's blocks (``"b1*2"``, one per
    ``;``-separated part) when it has one, else ``"b<i>"`` for each 1-based index of
    ``indexes``.  The point and area answers name their values by these."""
    if style.expression:
        from rio_tiler.expression import get_expression_blocks

        return list(get_expression_blocks(style.expression))
    return [f"b{i}" for i in indexes]


def style_to_params(style: Style) -> dict:
    """Inverse of :func:`parse_style`: the canonical query parameters of a style."""
    out: dict[str, str] = {}
    if style.expression:
        out["expression"] = style.expression
    elif style.indexes:
        out["indexes"] = ",".join(str(i) for i in style.indexes)
    if style.vmin is not None:
        out["vmin"] = ",".join(repr(float(v)) for v in style.vmin)
    if style.vmax is not None:
        out["vmax"] = ",".join(repr(float(v)) for v in style.vmax)
    if style.stretch:
        out["stretch"] = style.stretch
    if style.colormap_spec:
        out["colormap"] = style.colormap_spec
    if style.nodata is not None:
        out["nodata"] = "nan" if math.isnan(style.nodata) else repr(style.nodata)
    if style.resampling != "nearest":
        out["resampling"] = style.resampling
    if style.tile_size != 256:
        out["tile_size"] = str(style.tile_size)
    return out
