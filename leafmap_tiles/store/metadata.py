"""Per-dataset metadata, defined as Terracotta 0.10 defines it.

:func:`compute_metadata` reads **band 1** of a raster and returns::

    {
        "bounds": (west, south, east, north),   # EPSG:4326 degrees, densified (21 points an edge)
        "convex_hull": {...},                   # GeoJSON Polygon of the valid pixels, EPSG:4326
                                                # (MultiPolygon when they wrap across 180°)
        "valid_percentage": float,              # 0..100, share of valid pixels
        "range": (min, max),                    # of the valid pixels, raw DN (no scale/offset)
        "mean": float, "stdev": float,          # population standard deviation (ddof=0)
        "percentiles": [p1, ..., p99],          # 99 values, numpy's "linear" method
        "metadata": extra_metadata or {},       # e.g. {"categories": {...}}
    }

A pixel is valid unless GDAL's mask of band 1 says otherwise (nodata value, alpha
band, internal or sidecar mask) or it is NaN.  The convex hull is the hull of the
valid pixels' squares in the raster's CRS, then transformed to EPSG:4326.  For a
global-width geographic raster whose valid pixels lie on both sides of the
antimeridian (and not around longitude 0), it is a MultiPolygon: the hull of the
pixels east of the widest empty longitude gap, and the hull of those west of it
(Terracotta gives one polygon across the whole globe).

Two ways to compute, as in Terracotta:

- in memory (default for rasters up to :data:`IN_MEMORY_MAX_PIXELS`): band 1 is read
  whole, or downsampled (nearest) to ``max_shape``;
- in chunks (``use_chunks=True``, default above the limit): row strips of at most
  :data:`CHUNK_PIXELS` pixels, so memory stays bounded whatever the size of the
  raster (about 100 MB for the strips, plus at most :data:`REFINE_MAX_VALUES`
  float64 values for exact float percentiles: well under 1 GB in all).  Results equal the in-memory ones: min, max, valid
  percentage and hull exactly; mean and stdev up to float64 summation order;
  percentiles exactly for 8/16-bit integer rasters (one pass, histogram) and
  for other types as long as the values near each percentile fit in
  :data:`REFINE_MAX_VALUES` (three passes); past that, a percentile is
  interpolated linearly inside a bin of width ``(max - min) / 2**20`` and is
  therefore approximate (Terracotta itself uses an approximate t-digest there).
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .. import _antimeridian
from .. import _paths
from ..errors import InvalidSourceError, StoreError

#: Rasters with more pixels are processed in chunks unless ``use_chunks`` says otherwise.
IN_MEMORY_MAX_PIXELS = 32_000_000
#: Upper bound of pixels read at once in the chunked path.
CHUNK_PIXELS = 4_194_304
#: Bins of the value histogram used to locate percentiles of non-16-bit rasters.
HISTOGRAM_BINS = 2**20
#: Most values kept in memory to compute percentiles exactly in the chunked path.
REFINE_MAX_VALUES = 16_000_000
#: GDAL block cache (MB) while reading in chunks.
CHUNKED_GDAL_CACHE_MB = 64
#: GDAL options Terracotta opens rasters with (internal masks honoured).
RIO_ENV_OPTIONS = {"GDAL_TIFF_INTERNAL_MASK": True, "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}

_QUANTILES = np.arange(1, 100) / 100.0


def compute_metadata(
    path: str | os.PathLike,
    *,
    extra_metadata: Any = None,
    use_chunks: bool | None = None,
    max_shape: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Compute Terracotta's metadata of band 1 of a raster (see module docstring).

    Args:
        path: local path or GDAL-readable URL of the raster.
        extra_metadata: any JSON-serialisable value, returned as ``metadata``
            (default ``{}``).
        use_chunks: ``True`` to read in row strips (bounded memory), ``False`` to
            read band 1 at once; ``None`` chooses chunks above
            :data:`IN_MEMORY_MAX_PIXELS` pixels when ``max_shape`` is not given.
        max_shape: ``(rows, cols)``: read band 1 downsampled (nearest) to at most
            this shape; the statistics are then approximate (computed on the
            sample).  Not together with ``use_chunks``.

    Returns:
        the metadata dict described in the module docstring.

    Raises:
        ValueError: bad ``max_shape`` or both ``use_chunks`` and ``max_shape``.
        SourceNotFoundError: ``path`` does not exist.
        SourceIsDirectoryError: ``path`` is a directory.
        InvalidSourceError: not a readable raster, no CRS/geotransform (e.g. a
            GCP-only file), or no valid pixel at all.
    """
    import rasterio
    from rasterio import warp

    if max_shape is not None:
        if len(max_shape) != 2 or any(int(v) < 1 for v in max_shape):
            raise StoreError(f"max_shape must be two positive integers, got {max_shape!r}")
        max_shape = (int(max_shape[0]), int(max_shape[1]))
    if use_chunks and max_shape is not None:
        raise StoreError("Cannot use both use_chunks and max_shape arguments")

    path = _paths.from_file_url(os.fspath(path))  # a file:// URL is the local file it names
    _paths.check_local_path(path)
    from ..gdal_errors import classify

    t0 = time.monotonic()
    with rasterio.Env(**RIO_ENV_OPTIONS):
        try:
            src = rasterio.open(path)
        except rasterio.errors.RasterioIOError as exc:  # 401, timeout, corrupt...: the specific error
            raise classify(path, exc, "open", elapsed=time.monotonic() - t0) from exc
        with src:
            if src.crs is None or src.transform.is_identity:
                raise InvalidSourceError(
                    f"Raster {path} has no CRS or no geotransform (GCP-only files must be "
                    "warped first); its bounds cannot be computed"
                )
            bounds = warp.transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
            if use_chunks is None and max_shape is None:
                use_chunks = src.width * src.height > IN_MEMORY_MAX_PIXELS
            t0 = time.monotonic()
            try:
                if use_chunks:
                    # GDAL's block cache (5% of RAM by default) would hold most of
                    # a big file: keep it small while streaming through it
                    with rasterio.Env(GDAL_CACHEMAX=CHUNKED_GDAL_CACHE_MB):
                        stats = _stats_chunked(src)
                else:
                    stats = _stats_in_memory(src, max_shape)
            except rasterio.errors.RasterioIOError as exc:
                raise classify(path, exc, "read", elapsed=time.monotonic() - t0) from exc
            if stats is None:
                raise InvalidSourceError(f"Raster file {path} does not contain any valid data")
            columns = stats.pop("_columns")
            wrapped = _wrapped_hull(*columns) if _antimeridian.is_global_width(src.crs, src.bounds) else None
            stats["convex_hull"] = dict(
                warp.transform_geom(src.crs, "EPSG:4326", wrapped or stats["convex_hull"])
            )
    stats["bounds"] = tuple(float(v) for v in bounds)
    stats["metadata"] = {} if extra_metadata is None else extra_metadata
    return stats


# ---------------------------------------------------------------- in memory


def _read_band1(src, window=None, out_shape=None) -> np.ma.MaskedArray:
    """Band 1 as a masked array: GDAL's mask, the nodata value and NaN are masked."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="invalid value encountered.*")
        data = src.read(1, window=window, out_shape=out_shape, masked=True)
    if src.nodata is not None:
        # resampled masks may let nodata values through; GDAL's float comparison
        # is not exact either: mask exact equality too, as Terracotta does
        data = np.ma.masked_equal(data, src.nodata, copy=False)
    if data.dtype.kind in "fc":
        data = np.ma.masked_invalid(data, copy=False)
    return data


def _stats_in_memory(src, max_shape: tuple[int, int] | None) -> dict[str, Any] | None:
    from rasterio import transform

    out_shape = (src.height, src.width)
    if max_shape is not None:
        out_shape = (min(max_shape[0], out_shape[0]), min(max_shape[1], out_shape[1]))
    data = _read_band1(src, out_shape=out_shape if out_shape != (src.height, src.width) else None)
    data_transform = transform.from_bounds(*src.bounds, width=out_shape[1], height=out_shape[0])
    valid = data.compressed()
    if valid.size == 0:
        return None
    mask = np.ma.getmaskarray(data)
    if mask.any():
        points = _hull_candidate_corners(~mask, data_transform, row_offset=0)
        hull = _convex_hull(points)
    else:
        hull = _box_hull(src.bounds)
    as64 = valid.astype(np.float64)
    mean = float(as64.mean())
    stdev = float(as64.std())
    del as64
    return {
        "_columns": (*_column_extremes(~mask), data_transform),
        "valid_percentage": valid.size / data.size * 100,
        "range": (float(valid.min()), float(valid.max())),
        "mean": mean,
        "stdev": stdev,
        "percentiles": np.percentile(valid, _QUANTILES * 100).tolist(),
        "convex_hull": hull,
    }


# ---------------------------------------------------------------- convex hull


def _hull_candidate_corners(valid: np.ndarray, affine, row_offset: int, col_offset: int = 0) -> np.ndarray:
    """Corners (x, y) of the pixels that can be on the hull of the valid pixels.

    Only the first and last valid pixel of each row and of each column can be on
    the convex hull of all valid pixel squares, so only those are returned
    (4 corners each), transformed by ``affine``; ``row_offset``/``col_offset`` give
    the raster position of ``valid[0, 0]``.  Shape ``(n, 2)``.
    """
    rows_any = valid.any(axis=1)
    cols_any = valid.any(axis=0)
    r = np.nonzero(rows_any)[0]
    c = np.nonzero(cols_any)[0]
    first_col = np.argmax(valid[r], axis=1)
    last_col = valid.shape[1] - 1 - np.argmax(valid[r, ::-1], axis=1)
    first_row = np.argmax(valid[:, c], axis=0)
    last_row = valid.shape[0] - 1 - np.argmax(valid[::-1, c], axis=0)
    pr = np.concatenate([r, r, first_row, last_row]) + row_offset
    pc = np.concatenate([first_col, last_col, c, c]) + col_offset
    pix = np.unique(np.stack([pr, pc], axis=1), axis=0)
    rows = np.concatenate([pix[:, 0], pix[:, 0], pix[:, 0] + 1, pix[:, 0] + 1]).astype(np.float64)
    cols = np.concatenate([pix[:, 1], pix[:, 1] + 1, pix[:, 1], pix[:, 1] + 1]).astype(np.float64)
    a, b, xoff, d, e, yoff = affine.a, affine.b, affine.c, affine.d, affine.e, affine.f
    xs = xoff + cols * a + rows * b
    ys = yoff + cols * d + rows * e
    return np.stack([xs, ys], axis=1)


def _column_extremes(valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last valid row of every column of ``valid`` (2D bool); -1 as the
    last row of a column without valid pixels (its first row is then meaningless)."""
    has = valid.any(axis=0)
    top = np.argmax(valid, axis=0).astype(np.int64)
    bottom = (valid.shape[0] - 1 - np.argmax(valid[::-1], axis=0)).astype(np.int64)
    bottom[~has] = -1
    return top, bottom


def _wrapped_hull(col_top: np.ndarray, col_bottom: np.ndarray, affine) -> dict[str, Any] | None:
    """MultiPolygon (raster CRS, geographic) of the valid pixels when they wrap across
    the antimeridian: one convex hull each side of the widest empty longitude gap
    (see :mod:`leafmap_tiles._antimeridian`); None when they do not wrap.  The hull of
    a set of columns is that of the top and bottom valid pixel of each column."""
    from shapely import geometry

    cols = np.flatnonzero(col_bottom >= 0)
    if cols.size < 2:
        return None
    lons = affine.c + (cols + 0.5) * affine.a
    span = _antimeridian.wrapped_span(lons, abs(affine.a))
    if span is None:
        return None
    parts = []
    for side in _antimeridian.split_at_gap(lons, span):
        c = cols[side]
        pr = np.concatenate([col_top[c], col_bottom[c]])
        pc = np.concatenate([c, c])
        # the four corners of each of those pixel squares
        rows = np.concatenate([pr, pr, pr + 1, pr + 1]).astype(np.float64)
        cc = np.concatenate([pc, pc + 1, pc, pc + 1]).astype(np.float64)
        xs = affine.c + cc * affine.a + rows * affine.b
        ys = affine.f + cc * affine.d + rows * affine.e
        parts.append(geometry.MultiPoint(np.stack([xs, ys], axis=1)).convex_hull)
    return geometry.mapping(geometry.MultiPolygon([p for p in parts if p.geom_type == "Polygon"]))


def _convex_hull(points: np.ndarray) -> dict[str, Any]:
    """GeoJSON mapping of the convex hull of ``points`` (shape ``(n, 2)``)."""
    from shapely import geometry

    hull = geometry.MultiPoint(points).convex_hull
    return geometry.mapping(hull)


def _box_hull(bounds) -> dict[str, Any]:
    from shapely import geometry

    w, s, e, n = bounds
    return geometry.mapping(geometry.Polygon([(w, s), (e, s), (e, n), (w, n)]))


# ---------------------------------------------------------------- chunked


def _strips(src) -> Iterator[Any]:
    """Block-aligned windows covering the raster, row by row, each of at most
    :data:`CHUNK_PIXELS` pixels (or one block if a block is bigger): full-width
    row strips when a row of blocks fits, else runs of blocks along a row."""
    from rasterio.windows import Window

    block_rows, block_cols = src.block_shapes[0] if src.block_shapes else (1, src.width)
    block_rows, block_cols = max(1, block_rows), max(1, block_cols)
    if block_rows * src.width <= CHUNK_PIXELS:
        rows = max(block_rows, CHUNK_PIXELS // src.width // block_rows * block_rows)
        cols = src.width
    else:
        rows = block_rows
        cols = max(block_cols, CHUNK_PIXELS // block_rows // block_cols * block_cols)
    for row in range(0, src.height, rows):
        for col in range(0, src.width, cols):
            yield Window(col, row, min(cols, src.width - col), min(rows, src.height - row))


def _stats_chunked(src) -> dict[str, Any] | None:
    dtype = np.dtype(src.dtypes[0])
    exact_hist = dtype.kind in "iub" and dtype.itemsize <= 2
    hist = None
    if exact_hist:
        info = np.iinfo(dtype) if dtype.kind != "b" else None
        hist_offset = int(info.min) if info is not None else 0
        hist = np.zeros((int(info.max) - int(info.min) + 1) if info is not None else 2, np.int64)

    from rasterio import transform

    # the same affine as the in-memory path, so both give the same hull
    affine = transform.from_bounds(*src.bounds, width=src.width, height=src.height)
    total = valid_count = 0
    vmin, vmax = math.inf, -math.inf
    mean = m2 = 0.0
    hull_points = np.empty((0, 2))
    any_masked = False
    col_top = np.full(src.width, np.iinfo(np.int64).max, dtype=np.int64)
    col_bottom = np.full(src.width, -1, dtype=np.int64)
    for window in _strips(src):
        data = _read_band1(src, window=window)
        total += data.size
        valid = data.compressed()
        if valid.size < data.size:
            any_masked = True
        if valid.size == 0:
            continue
        mask = np.ma.getmaskarray(data)
        if mask.any():
            corners = _hull_candidate_corners(
                ~mask, affine, row_offset=int(window.row_off), col_offset=int(window.col_off)
            )
        else:
            corners = _window_corners(affine, window)
        hull_points = _hull_vertices(np.concatenate([hull_points, corners]))
        top, bottom = _column_extremes(~mask)
        c0, r0 = int(window.col_off), int(window.row_off)
        sl = slice(c0, c0 + mask.shape[1])
        has = bottom >= 0
        col_top[sl] = np.where(has, np.minimum(col_top[sl], top + r0), col_top[sl])
        col_bottom[sl] = np.where(has, np.maximum(col_bottom[sl], bottom + r0), col_bottom[sl])

        vmin = min(vmin, float(valid.min()))
        vmax = max(vmax, float(valid.max()))
        if hist is not None:
            # mean and stdev come from the histogram at the end
            hist += np.bincount(valid.astype(np.int64) - hist_offset, minlength=hist.size)[: hist.size]
            valid_count += valid.size
            continue
        as64 = valid.astype(np.float64)
        n_b = as64.size
        mean_b = float(as64.mean())
        as64 -= mean_b
        m2_b = float(np.dot(as64, as64))
        del as64
        n_a = valid_count
        delta = mean_b - mean
        n = n_a + n_b
        mean += delta * n_b / n
        m2 += m2_b + delta * delta * n_a * n_b / n
        valid_count = n

    if valid_count == 0:
        return None
    if hist is not None:
        values = np.arange(hist.size, dtype=np.float64) + hist_offset
        percentiles = _percentiles_from_counts(values, hist, valid_count)
        mean = float(np.dot(values, hist) / valid_count)
        m2 = float(np.dot((values - mean) ** 2, hist))
    else:
        percentiles = _percentiles_two_pass(src, vmin, vmax, valid_count)
    return {
        "_columns": (col_top, col_bottom, affine),
        "valid_percentage": valid_count / total * 100,
        "range": (vmin, vmax),
        "mean": mean,
        "stdev": math.sqrt(max(m2, 0.0) / valid_count),
        "percentiles": percentiles,
        # no masked pixel at all: the hull is the raster's box, as in memory
        "convex_hull": _convex_hull(hull_points) if any_masked else _box_hull(src.bounds),
    }


def _window_corners(affine, window) -> np.ndarray:
    from rasterio import windows

    w, s, e, n = windows.bounds(window, affine)
    return np.array([(w, s), (e, s), (e, n), (w, n)], dtype=np.float64)


def _hull_vertices(points: np.ndarray) -> np.ndarray:
    from shapely import geometry

    hull = geometry.MultiPoint(points).convex_hull
    if hull.geom_type == "Polygon":
        return np.asarray(hull.exterior.coords)[:-1]
    return np.asarray(hull.coords) if hull.geom_type != "Point" else np.asarray([hull.coords[0]])


def _linear_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """numpy's "linear" method: the ranks below each quantile and the weights."""
    virtual = _QUANTILES * (n - 1)
    lower = np.floor(virtual).astype(np.int64)
    frac = virtual - lower
    return lower, frac


def _percentiles_from_counts(values: np.ndarray, counts: np.ndarray, n: int) -> list[float]:
    """Exact linear percentiles of a sample given as ``counts`` of sorted ``values``."""
    lower, frac = _linear_indices(n)
    upper = np.minimum(lower + 1, n - 1)
    cum = np.cumsum(counts)
    v_lo = values[np.searchsorted(cum, lower, side="right")]
    v_hi = values[np.searchsorted(cum, upper, side="right")]
    return _lerp(v_lo, v_hi, frac).tolist()


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    diff = b - a
    out = a + diff * t
    return np.where(t >= 0.5, b - diff * (1 - t), out)


def _bin_of(values: np.ndarray, vmin: float, scale: float) -> np.ndarray:
    idx = ((values.astype(np.float64) - vmin) * scale).astype(np.int64)
    return np.clip(idx, 0, HISTOGRAM_BINS - 1)


def _percentiles_two_pass(src, vmin: float, vmax: float, n: int) -> list[float]:
    """Percentiles of non-16-bit rasters with bounded memory.

    Pass 2 counts values in :data:`HISTOGRAM_BINS` equal bins over ``[vmin, vmax]``;
    pass 3 keeps the values of the bins holding the needed ranks and sorts them.
    Exact unless those bins hold more than :data:`REFINE_MAX_VALUES` values; then
    approximate (linear inside the bin).
    """
    if vmax == vmin:
        return [float(vmin)] * 99
    scale = HISTOGRAM_BINS / (vmax - vmin)
    counts = np.zeros(HISTOGRAM_BINS, np.int64)
    for window in _strips(src):
        valid = _read_band1(src, window=window).compressed()
        if valid.size:
            counts += np.bincount(_bin_of(valid, vmin, scale), minlength=HISTOGRAM_BINS)

    lower, frac = _linear_indices(n)
    upper = np.minimum(lower + 1, n - 1)
    ranks = np.concatenate([lower, upper])
    cum = np.cumsum(counts)
    rank_bins = np.searchsorted(cum, ranks, side="right")
    needed = np.unique(rank_bins)
    if counts[needed].sum() > REFINE_MAX_VALUES:
        # approximate: interpolate inside each bin, values spread evenly
        starts = cum - counts
        width = (vmax - vmin) / HISTOGRAM_BINS

        def value_at(rank: np.ndarray) -> np.ndarray:
            b = np.searchsorted(cum, rank, side="right")
            inside = (rank - starts[b] + 0.5) / np.maximum(counts[b], 1)
            return np.clip(vmin + (b + inside) * width, vmin, vmax)

        return _lerp(value_at(lower), value_at(upper), frac).tolist()

    is_needed = np.zeros(HISTOGRAM_BINS, bool)
    is_needed[needed] = True
    kept = []
    for window in _strips(src):
        valid = _read_band1(src, window=window).compressed()
        if valid.size:
            kept.append(valid[is_needed[_bin_of(valid, vmin, scale)]])
    kept_values = np.sort(np.concatenate(kept).astype(np.float64))
    # rank r of the whole sample -> position inside kept_values
    kept_cum = np.cumsum(counts * is_needed)
    before_bin = cum - counts  # ranks before each bin in the whole sample
    kept_before = kept_cum - counts * is_needed  # kept values before each bin

    def kept_value(rank: np.ndarray) -> np.ndarray:
        b = np.searchsorted(cum, rank, side="right")
        return kept_values[kept_before[b] + (rank - before_bin[b])]

    return _lerp(kept_value(lower), kept_value(upper), frac).tolist()
