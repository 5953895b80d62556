"""Read COG headers concurrently, with each provider's credentials on its own hosts only.

:func:`read_header` opens one raster with :func:`leafmap_tiles.providers.access.open_raster`
(rasterio over ``/vsicurl/``; GDAL reads the first block of the file, which holds the
TIFF header and the IFDs of a COG) and returns what the index keeps of it.  The
credentials of a URL's host are given to GDAL as thread-local options of the reading
thread (rasterio >= 1.4 sets ``rasterio.Env`` options per thread), so a thread that
reads another host never holds them.

:func:`read_headers` reads many URLs in a thread pool of ``max_concurrent`` threads
(GDAL releases the GIL while it waits for the network) with a tqdm progress bar.  A
header that cannot be read is not fatal: its row carries ``error_kind``
(``"auth"``, ``"not_found"``, ``"timeout"``, ``"not_raster"``, ``"error"``) and the
error message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from leafmap_tiles.errors import CollectionError

#: Seconds GDAL waits for an HTTP answer before the header counts as timed out.
DEFAULT_TIMEOUT = 30

#: Fields of a header row (None when the header could not be read).
HEADER_FIELDS = (
    "width", "height", "count", "dtype", "crs", "epsg", "transform", "block_width",
    "block_height", "overviews", "compression", "nodata", "scale", "offset", "is_tiled",
)


def empty_header() -> dict[str, Any]:
    return {name: None for name in HEADER_FIELDS}


def classify_error(exc: BaseException, url: str = "") -> str:
    """A short kind for a failed header read of ``url``: ``"auth"``, ``"not_found"``,
    ``"timeout"``, ``"not_raster"`` or ``"error"``:
    :func:`leafmap_tiles.gdal_errors.error_kind`, from the class that the one
    classifier (:func:`leafmap_tiles.gdal_errors.classify`) gives."""
    from leafmap_tiles.gdal_errors import error_kind

    return error_kind(exc, url)


def read_header(url: str, *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """The header of the raster at ``url``: ``{width, height, count, dtype, crs (WKT),
    epsg, transform (6 floats, GDAL order a..f of rasterio's Affine), block_width,
    block_height, overviews (decimation factors of band 1), compression, nodata,
    scale, offset (band 1, GDAL's), is_tiled}``.

    Raises the errors of :func:`~leafmap_tiles.providers.access.open_raster`
    (``AuthenticationError``, ``SourceNotFoundError``, ``SourceTimeoutError``, ...)."""
    from leafmap_tiles.providers.access import open_raster

    env = {"GDAL_HTTP_TIMEOUT": str(int(max(1, round(timeout)))),
           "GDAL_HTTP_CONNECTTIMEOUT": str(int(max(1, round(timeout)))),
           "GDAL_HTTP_MAX_RETRY": "0"}
    import rasterio

    with rasterio.Env(**env):
        with open_raster(url) as ds:
            crs = ds.crs
            block_h, block_w = ds.block_shapes[0] if ds.block_shapes else (None, None)
            compression = ds.compression.name if ds.compression is not None else None
            epsg = None
            if crs is not None:
                try:
                    epsg = crs.to_epsg()
                except Exception:
                    epsg = None
            return {
                "width": int(ds.width),
                "height": int(ds.height),
                "count": int(ds.count),
                "dtype": str(ds.dtypes[0]),
                "crs": crs.to_wkt() if crs is not None else None,
                "epsg": epsg,
                "transform": [float(v) for v in tuple(ds.transform)[:6]],
                "block_width": int(block_w) if block_w is not None else None,
                "block_height": int(block_h) if block_h is not None else None,
                "overviews": [int(v) for v in ds.overviews(1)],
                "compression": compression,
                "nodata": None if ds.nodata is None else float(ds.nodata),
                "scale": float(ds.scales[0]) if ds.scales else None,
                "offset": float(ds.offsets[0]) if ds.offsets else None,
                "is_tiled": bool(ds.profile.get("tiled", False)),
            }


def _safe_read(url: str, timeout: float) -> dict[str, Any]:
    try:
        header = read_header(url, timeout=timeout)
        header.update(error=None, error_kind=None)
        return header
    except Exception as exc:  # recorded, not fatal
        header = empty_header()
        header.update(error=f"{type(exc).__name__}: {exc}".strip(), error_kind=classify_error(exc, url))
        return header


def read_headers(
    urls: Sequence[str],
    *,
    max_concurrent: int = 16,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
    reader: Callable[[str, float], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Headers of ``urls`` (same order), read by ``max_concurrent`` threads.  Each
    dict has the :data:`HEADER_FIELDS` plus ``error`` and ``error_kind`` (None when
    the read succeeded)."""
    if max_concurrent < 1:
        raise CollectionError(f"max_concurrent must be >= 1, got {max_concurrent}")
    read = reader or _safe_read
    urls = list(urls)
    results: list[dict[str, Any] | None] = [None] * len(urls)
    bar = None
    if progress and urls:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(urls), desc="COG headers", unit="file")
    try:
        if max_concurrent == 1 or len(urls) <= 1:
            for i, url in enumerate(urls):
                results[i] = read(url, timeout)
                if bar is not None:
                    bar.update(1)
        else:
            with ThreadPoolExecutor(max_workers=min(max_concurrent, len(urls)),
                                    thread_name_prefix="cog-header") as pool:
                futures = {pool.submit(read, url, timeout): i for i, url in enumerate(urls)}
                from concurrent.futures import as_completed

                for fut in as_completed(futures):
                    results[futures[fut]] = fut.result()
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            failed = sum(1 for r in results if r is not None and r.get("error"))
            bar.set_postfix(failed=failed)
            bar.close()
    return results  # type: ignore[return-value]
