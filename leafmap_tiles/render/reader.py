"""rio-tiler's ``Reader`` whose ``tile_exists`` reuses one coordinate transformation
per thread and CRS pair.

rio-tiler's ``tile_exists`` (called by the engine, and again by ``Reader.tile``) calls
``rasterio.warp.transform_bounds``, which has PROJ build the EPSG:3857 -> raster CRS
operation on every call.  For NAD83 CRSs (e.g. EPSG:26914, the UTM zones of every NAIP
scene) PROJ's search among NAD83 -> WGS 84 operations takes ~100 ms (measured here:
103 ms per call for EPSG:26914, 2.7 ms for EPSG:32614), i.e. two thirds of a native
NAIP tile's time.  Here the operation is built once per thread (pyproj ``Transformer``,
which uses the same PROJ operation selection: equal bounds, checked when this was
written) and each call costs ~0.04 ms.  The answer is rio-tiler's: same densification
(21 points per edge), same non-finite rule, same comparison.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from morecantile import Tile
from rio_tiler.io import Reader as _RioTilerReader
from rio_tiler.utils import normalize_bounds

_local = threading.local()


def _transformer(src_crs, dst_crs):
    """This thread's pyproj Transformer from ``src_crs`` to ``dst_crs`` (rasterio CRSs),
    x/y order (longitude first), built once per thread and pair."""
    from pyproj import Transformer

    cache = getattr(_local, "transformers", None)
    if cache is None:
        cache = _local.transformers = {}
    key = (src_crs.to_wkt(), dst_crs.to_wkt())
    tr = cache.get(key)
    if tr is None:
        if len(cache) > 64:
            cache.clear()
        tr = cache[key] = Transformer.from_crs(key[0], key[1], always_xy=True)
    return tr


class Reader(_RioTilerReader):
    """``rio_tiler.io.Reader`` with a fast :meth:`tile_exists` (see the module doc)."""

    def tile_exists(self, tile_x: int, tile_y: int, tile_z: int) -> bool:
        """Whether tile ``tile_z/tile_x/tile_y`` of the Reader's TileMatrixSet meets the
        dataset's bounds (rio-tiler's rule, with a cached transformation)."""
        tile_bounds = tuple(self.tms.xy_bounds(Tile(x=tile_x, y=tile_y, z=tile_z)))
        if self.tms.rasterio_crs != self.crs:
            try:
                tile_bounds = _transformer(self.tms.rasterio_crs, self.crs).transform_bounds(
                    *tile_bounds, densify_pts=21)
            except Exception:
                return super().tile_exists(tile_x, tile_y, tile_z)  # rio-tiler's own path
        if not all(np.isfinite(tile_bounds)):
            return True
        tb = normalize_bounds(tile_bounds)
        db = normalize_bounds(self.bounds)
        return tb[0] < db[2] and tb[2] > db[0] and tb[3] > db[1] and tb[1] < db[3]


# --------------------------------------------------------------- default transforms
#: memoised results of rasterio's ``calculate_default_transform`` for rio-tiler, keyed
#: by the identity of the CRS objects (held by the entry, so an id is never reused while
#: its entry lives) and the other arguments; bounded (oldest entries dropped)
_DEFAULT_TRANSFORMS: OrderedDict = OrderedDict()
_DT_LOCK = threading.Lock()
_DT_MAX = 1024


def _memo_default_transform(original):
    def calculate_default_transform(src_crs, dst_crs, width, height, *bounds, **kwargs):
        if kwargs or len(bounds) != 4:  # not rio-tiler's per-tile call: as it is
            return original(src_crs, dst_crs, width, height, *bounds, **kwargs)
        key = (id(src_crs), id(dst_crs), width, height, bounds)
        with _DT_LOCK:
            hit = _DEFAULT_TRANSFORMS.get(key)
            if hit is not None:
                _DEFAULT_TRANSFORMS.move_to_end(key)
        if hit is None:
            hit = (original(src_crs, dst_crs, width, height, *bounds), src_crs, dst_crs)
            with _DT_LOCK:
                _DEFAULT_TRANSFORMS[key] = hit
                while len(_DEFAULT_TRANSFORMS) > _DT_MAX:
                    _DEFAULT_TRANSFORMS.popitem(last=False)
        return hit[0]

    calculate_default_transform.__wrapped__ = original  # type: ignore[attr-defined]
    calculate_default_transform.memoised = True  # type: ignore[attr-defined]
    return calculate_default_transform


def memoize_default_transforms() -> bool:
    """In a server process: have rio-tiler reuse each source's default Web Mercator
    transform instead of computing it again for every tile.

    rio-tiler's ``get_vrt_transform`` (every ``Reader.part``/``Reader.tile`` of a
    reprojected raster) calls ``rasterio.warp.calculate_default_transform(src.crs,
    dst_crs, src.width, src.height, *src.bounds)``: the same arguments for every tile
    of a source, and a pure function of them, whose PROJ work (parsing both CRSs,
    choosing the coordinate operation) cost ~1.5 ms of the ~4-8 ms CPU of a tile of
    ``benchmarks/tiles.py``'s files (benchmarks/README.md).  The result for the same
    arguments is returned from a bounded cache (same CRS objects, which the open
    dataset keeps, same size and bounds), so pixels are unchanged.  Installed into
    ``rio_tiler.utils`` (the module whose function calls it); other callers keep
    rasterio's own.  Called by the server processes at start (never in the user's
    kernel); True once installed."""
    import rio_tiler.utils as rt_utils

    current = rt_utils.calculate_default_transform
    if not getattr(current, "memoised", False):  # (rasterio's own has a __wrapped__)
        rt_utils.calculate_default_transform = _memo_default_transform(current)
    return True
