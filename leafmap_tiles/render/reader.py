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

The same search is paid by every warped read: rio-tiler's ``WarpedVRT`` builds a
transformer for itself and one for each implicit overview it picks, so a NAD83 raster
read below its native zoom paid it five times (co_elevation_roi.tif, EPSG:4269, four
overviews: 80-180 ms per tile at z8-z13, against 4-17 ms for the same file tagged
EPSG:4326).  Where PROJ's choice for the raster's area is a null datum shift (NAD83 to
WGS 84 (1), the one it takes when no NADCON/HARN grid is installed), the transformation
to web mercator is the same arithmetic as from a CRS that names that null shift itself:
EPSG:4326 for geographic coordinates, else the CRS's own projection on its own ellipsoid
with ``+towgs84=0,0,0,0,0,0,0``.  :func:`equivalent_crs` accepts such a CRS only when GDAL
transforms a 21 x 21 grid of points over the raster to EPSG:3857 and back to the
same coordinates with both (to the last bits of a double), and :meth:`Reader.part` (hence ``Reader.tile``) then gives it to
the ``WarpedVRT`` as ``src_crs``: the pixels are rio-tiler's own, bit for bit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from morecantile import Tile
from rasterio.crs import CRS
from rio_tiler.io import Reader as _RioTilerReader
from rio_tiler.utils import normalize_bounds

_local = threading.local()
_equivalent: dict = {}  # (crs WKT, bounds) -> equivalent CRS or None
_equivalent_lock = threading.Lock()
WEB_MERCATOR = CRS.from_epsg(3857)


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


def _candidates(crs) -> list:
    """CRSs that may transform like ``crs`` to web mercator without an operation search."""
    if crs.is_geographic:
        return [CRS.from_epsg(4326)]
    p4 = crs.to_proj4() or ""
    if "+datum=" not in p4 or "+towgs84=" in p4 or "+nadgrids=" in p4:
        return []
    datum = next(t for t in p4.split() if t.startswith("+datum="))
    ellps = {"+datum=NAD83": "+ellps=GRS80"}.get(datum)  # WGS 84 itself needs no search
    if ellps is None:
        return []
    try:
        return [CRS.from_proj4(p4.replace(datum, f"{ellps} +towgs84=0,0,0,0,0,0,0"))]
    except Exception:
        return []


def equivalent_crs(crs, bounds) -> CRS | None:
    """A CRS whose transformation to EPSG:3857 over ``bounds`` (west, south, east, north
    in ``crs``) is exactly GDAL's transformation from ``crs``, but built without PROJ's
    search among datum transformations (see the module doc); None when there is none
    (``crs`` is WGS 84 or web mercator already, PROJ picked a real datum shift, or the
    CRS is not one of the simple cases).  Checked once per CRS and bounds with GDAL's
    own transform of a 21 x 21 grid of points, which must match exactly."""
    if crs is None:
        return None
    key = (crs.to_wkt(), tuple(bounds))
    with _equivalent_lock:
        if key in _equivalent:
            return _equivalent[key]
    found = None
    w, s, e, n = bounds
    # geographic rasters reaching past web mercator's +-85.06 degrees: GDAL's warp from
    # EPSG:4326 treats them apart (bess_NDVI_maximum_cog.tif, a global Clarke 1866 grid,
    # got other pixels with it), so they keep their own CRS
    polar = crs.is_geographic and (s < -85.06 or n > 85.06)
    if crs.to_epsg() not in (3857, 4326) and not polar:
        from rasterio.warp import transform as warp_xy

        gx, gy = np.meshgrid(np.linspace(w, e, 21), np.linspace(s, n, 21))
        xs, ys = gx.ravel().tolist(), gy.ravel().tolist()
        tol_src = 1e-9 * min(abs(e - w), abs(n - s)) / 1000.0  # ~1e-9 of a pixel of a 1000-pixel raster
        try:
            ref = np.array(warp_xy(crs, WEB_MERCATOR, xs, ys))
            tol_m = 1e-9 * min(float(np.ptp(ref[0])), float(np.ptp(ref[1]))) / 1000.0
            back = np.array(warp_xy(WEB_MERCATOR, crs, ref[0].tolist(), ref[1].tolist()))
            for cand in _candidates(crs) if np.all(np.isfinite(ref)) else []:
                fwd = np.array(warp_xy(cand, WEB_MERCATOR, xs, ys))
                inv = np.array(warp_xy(WEB_MERCATOR, cand, ref[0].tolist(), ref[1].tolist()))
                # both ways, as a warp uses them; equal to a billionth of a pixel (the inverse
                # differs in the last bits of a double: 7e-15 degrees for EPSG:4269)
                if np.abs(ref - fwd).max() <= tol_m and np.abs(back - inv).max() <= tol_src:
                    found = cand
                    break
        except Exception:
            found = None
    with _equivalent_lock:
        if len(_equivalent) > 256:
            _equivalent.clear()
        _equivalent[key] = found
    return found


class Reader(_RioTilerReader):
    """``rio_tiler.io.Reader`` with a fast :meth:`tile_exists`, and warps that skip
    PROJ's operation search where that gives the same pixels (see the module doc)."""

    def part(self, bbox, dst_crs=None, bounds_crs=None, **kwargs):
        """rio-tiler's ``Reader.part`` (same arguments; ``bounds_crs`` defaults to
        EPSG:4326 as there); a warp to web mercator is given :func:`equivalent_crs` as
        the ``WarpedVRT``'s ``src_crs`` when there is one."""
        from rio_tiler.constants import WGS84_CRS

        if bounds_crs is None:
            bounds_crs = WGS84_CRS
        if dst_crs is not None and dst_crs == WEB_MERCATOR and self.crs != WEB_MERCATOR:
            sub = equivalent_crs(self.crs, tuple(self.dataset.bounds))
            if sub is not None:
                vrt_options = dict(kwargs.pop("vrt_options", None) or {})
                vrt_options.setdefault("src_crs", sub)
                kwargs["vrt_options"] = vrt_options
        return super().part(bbox, dst_crs=dst_crs, bounds_crs=bounds_crs, **kwargs)

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


def fast_crs(ds):
    """``ds``'s CRS, or one that transforms to web mercator with the very same arithmetic
    but without PROJ's operation search (:func:`equivalent_crs`)."""
    return equivalent_crs(ds.crs, tuple(ds.bounds)) or ds.crs


class _CrsView:
    """``ds`` seen with another CRS (attributes of ``ds`` otherwise), for rio-tiler's
    ``get_vrt_transform``, which reads only the CRS, size, bounds and transform."""

    def __init__(self, ds, crs) -> None:
        self._ds, self.crs = ds, crs

    def __getattr__(self, name):
        return getattr(self._ds, name)


def with_fast_crs(ds):
    """``ds``, or a view of it with :func:`fast_crs` as its CRS where that does not
    change rio-tiler's ``get_vrt_transform`` (which treats EPSG:4326 beyond +-85.06
    degrees of latitude apart)."""
    crs = equivalent_crs(ds.crs, tuple(ds.bounds))
    if crs is None:
        return ds
    if crs.is_geographic and (ds.bounds.bottom < -85.06 or ds.bounds.top > 85.06):
        return ds
    return _CrsView(ds, crs)
