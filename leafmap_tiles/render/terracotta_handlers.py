"""The tiles of Terracotta's API as plain functions: key values and parsed parameters
in, PNG bytes out (no HTTP; the routes of :mod:`leafmap_tiles.server.terracotta_api`
parse the query and call these on a worker thread).

``lookup(keys)`` gives ``(path, metadata)`` of the dataset with those key values (the
key store's, see :class:`leafmap_tiles.store.terracotta_handlers.DatasetCache`); it
raises ``DatasetNotFoundError``/``InvalidKeyError``.  A file that cannot be read raises
:func:`leafmap_tiles.errors.for_dataset`'s error (the message names the dataset, never
the file).  A tile outside every dataset is a transparent PNG, never an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Optional

import numpy as np

from leafmap_tiles.errors import BadRequestError, LeafmapTilesError, TileOutsideBoundsError, for_dataset
from leafmap_tiles.render import expression as tc_expression
from leafmap_tiles.render import terracotta as tcr

__all__ = ["Lookup", "compute", "palette", "rgb", "singleband"]

log = logging.getLogger("leafmap_tiles.server.terracotta")

#: key values -> (path, metadata) of that dataset.
Lookup = Callable[[list[str]], tuple[str, dict[str, Any]]]
XYZ = Optional[tuple[int, int, int]]


#: (resampling, reprojection) of tiles: Terracotta's defaults (``average``, ``linear``)
DEFAULT_METHODS = ("average", "bilinear")


def _read(engine: Any, path: str, keys: Sequence[str], bounds: Any, shape: tuple[int, int],
          preserve_values: bool = False, methods: tuple[str, str] = DEFAULT_METHODS) -> np.ma.MaskedArray:
    try:
        return tcr.read_band1(engine, path, bounds, shape, preserve_values=preserve_values,
                              resampling=methods[0], reprojection=methods[1])
    except TileOutsideBoundsError:
        raise
    except LeafmapTilesError as exc:
        name = "/".join(keys)
        log.debug("dataset %s cannot be read: %s", name, exc)
        from leafmap_tiles._paths import is_remote_path

        raise for_dataset(name, exc, remote=isinstance(path, str) and is_remote_path(path)) from None


def singleband(engine: Any, lookup: Lookup, keys: list[str], xyz: XYZ, *, stretch_range: Any,
               colormap: str | None, explicit_color_map: list[Any] | None, tile_size: tuple[int, int],
               methods: tuple[str, str] = DEFAULT_METHODS) -> bytes:
    """PNG of one dataset: tile ``xyz`` (z, x, y), or the whole dataset when None
    (``preview.png``), stretched by ``stretch_range`` through ``colormap`` (grey when
    None), or with the exact colours of ``explicit_color_map`` (``[(value, rgba)]``,
    read with nearest resampling); ``methods`` are (resampling, reprojection)."""
    path, md = lookup(keys)
    bounds = None
    if xyz is not None:
        z, x, y = xyz
        if not tcr.tile_exists(md["bounds"], z, x, y):
            return tcr.empty_png(tile_size)
        bounds = tcr.tile_bounds(z, x, y)
    lo, hi = tcr.stretch_range(stretch_range, md)
    try:
        data = _read(engine, path, keys, bounds, tile_size, preserve_values=explicit_color_map is not None,
                     methods=methods)
    except TileOutsideBoundsError:
        return tcr.empty_png(tile_size)
    if explicit_color_map is not None:
        return tcr.explicit_png(data, explicit_color_map)
    return tcr.singleband_png(tcr.to_index(data, lo, hi), colormap)


def rgb(engine: Any, lookup: Lookup, some_keys: list[str], xyz: XYZ, *, bands: Sequence[tuple[str, str, Any]],
        tile_size: tuple[int, int], methods: tuple[str, str] = DEFAULT_METHODS) -> bytes:
    """PNG of three datasets whose key values are ``some_keys`` plus each band's last
    key value, as red, green, blue; ``bands`` are ``(channel, last key, stretch range)``."""
    looked = [lookup(some_keys + [last]) for _, last, _ in bands]
    stretched = []
    for (path, md), (channel, _, rng) in zip(looked, bands):
        lo, hi = tcr.stretch_range(rng, md)
        if hi < lo:
            raise BadRequestError(f"{channel}_range: Upper stretch bound must be higher than lower bound")
        stretched.append((path, md, lo, hi))
    if xyz is not None and not any(tcr.tile_exists(md["bounds"], *xyz) for _, md in looked):
        return tcr.empty_png(tile_size)
    read_bands: list[np.ma.MaskedArray | None] = []
    for (path, md, _, _), (_, last, _) in zip(stretched, bands):
        bounds = None
        if xyz is not None:
            if not tcr.tile_exists(md["bounds"], *xyz):
                read_bands.append(None)
                continue
            bounds = tcr.tile_bounds(*xyz)
        try:
            read_bands.append(_read(engine, path, some_keys + [last], bounds, tile_size, methods=methods))
        except TileOutsideBoundsError:
            read_bands.append(None)
    if all(d is None for d in read_bands):
        return tcr.empty_png(tile_size)
    fills = [engine.reader(path).dataset.nodata for path, _, _, _ in stretched]
    ranges = [(lo, hi) for _, _, lo, hi in stretched]
    return tcr.rgb_png(tcr.rgb_channels(read_bands, ranges, tile_size, fills))


def compute(engine: Any, lookup: Lookup, some_keys: list[str], xyz: XYZ, *, expression: str,
            operands: dict[str, str], stretch_range: tuple[float, float], colormap: str | None,
            tile_size: tuple[int, int], methods: tuple[str, str] = DEFAULT_METHODS) -> bytes:
    """PNG of ``expression`` over the datasets ``operands`` (``{"v1": last key value}``),
    stretched by ``stretch_range`` (numbers) through ``colormap``."""
    looked = {v: lookup(some_keys + [k]) for v, k in operands.items()}
    bounds = None
    if xyz is not None:
        if not any(tcr.tile_exists(md["bounds"], *xyz) for _, md in looked.values()):
            return tcr.empty_png(tile_size)
        bounds = tcr.tile_bounds(*xyz)
    arrays = {}
    for v, (path, _) in looked.items():
        try:
            arrays[v] = _read(engine, path, some_keys + [operands[v]], bounds, tile_size, methods=methods)
        except TileOutsideBoundsError:
            arrays[v] = np.ma.masked_all(tile_size, dtype="float64")  # type: ignore[no-untyped-call]
    result = tc_expression.evaluate(expression, arrays)
    return tcr.singleband_png(tcr.to_index(result, stretch_range[0], stretch_range[1]), colormap)


def palette(engine: Any, lookup: Lookup, keys: list[str]) -> list[dict[str, Any]] | None:
    """The colour table of the dataset's band 1 (a paletted raster such as a land-cover
    map): ``[{"value": v, "rgba": [r, g, b, a]}]`` for every entry, or None when the
    file has none.  Not a Terracotta route: ``leafmap-tiles connect`` uses it to draw
    categories in the file's own colours."""
    from rasterio.enums import ColorInterp

    path, _ = lookup(keys)
    import time

    t0 = time.monotonic()
    try:
        ds = engine.reader(path).dataset
        if ds.colorinterp[0] != ColorInterp.palette:
            return None
        table = ds.colormap(1)
    except ValueError:  # "NULL color table"
        return None
    except LeafmapTilesError as exc:
        raise for_dataset("/".join(keys), exc) from None
    except Exception as exc:
        raise for_dataset("/".join(keys), engine.read_failure(path, exc, t0)) from None
    return [{"value": int(v), "rgba": [int(c) for c in rgba]} for v, rgba in sorted(table.items())]
