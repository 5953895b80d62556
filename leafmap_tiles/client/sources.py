"""Turn what a user passes to ``add_raster`` into something the server can open.

Accepted sources: a local path (``str`` or ``os.PathLike``), an ``http(s)://``,
``s3://`` or ``/vsi...`` URL, an open ``rasterio`` dataset, a numpy array with
``crs=`` and ``transform=`` (shape (rows, cols) or (bands, rows, cols)), or an xarray
``DataArray`` with a rioxarray CRS.  Arrays are written once to a GeoTIFF in the
server's temporary folder with their dtype unchanged (float stays float; NaN is the
nodata of float arrays unless ``nodata=`` is given).
"""

from __future__ import annotations

import os
import uuid

import numpy as np

from leafmap_tiles.errors import REMOTE_PREFIXES as REMOTE
from leafmap_tiles.errors import InvalidSourceError, check_local_path


def describe(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return type(source).__name__


def prepare_source(source, tmpdir: str, crs=None, transform=None, nodata=None) -> tuple[str, str]:
    """Return ``(path, default_name)`` for ``source``; writes arrays under ``tmpdir``.

    Raises ``SourceNotFoundError``/``SourceIsDirectoryError``/``InvalidSourceError``
    for local paths that cannot be rasters, ``TypeError`` for unsupported objects and
    ``ValueError`` for arrays without ``crs``/``transform``.
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if path.startswith(REMOTE):
            if path.startswith("s3://"):
                path = "/vsis3/" + path[5:]
            elif path.startswith("gs://"):
                path = "/vsigs/" + path[5:]
            name = path.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
            return path, os.path.splitext(name)[0] or "raster"
        path = os.path.abspath(os.path.expanduser(path))
        check_local_path(path)
        return path, os.path.splitext(os.path.basename(path))[0]
    try:
        import rasterio.io

        if isinstance(source, (rasterio.io.DatasetReader, rasterio.io.DatasetWriter)):
            return _from_dataset(source, tmpdir)
    except ImportError:  # pragma: no cover
        pass
    if type(source).__name__ == "DataArray":
        return _from_dataarray(source, tmpdir, nodata)
    if isinstance(source, np.ndarray):
        return _write_array(source, crs, transform, nodata, tmpdir), "array"
    raise TypeError(
        f"unsupported source type {type(source).__name__}: give a path, a URL, a rasterio dataset, "
        "a numpy array with crs= and transform=, or an xarray DataArray with a CRS"
    )


def _from_dataset(ds, tmpdir: str) -> tuple[str, str]:
    if ds.closed:
        raise InvalidSourceError("the rasterio dataset is closed")
    name = ds.name
    if name and not name.startswith("/vsimem/") and (os.path.exists(name) or name.startswith(REMOTE)):
        return prepare_source(name, tmpdir)
    from rasterio.shutil import copy

    out = os.path.join(tmpdir, f"dataset-{uuid.uuid4().hex}.tif")
    copy(ds, out, driver="GTiff", TILED="YES", COMPRESS="DEFLATE")
    return out, "dataset"


def _from_dataarray(da, tmpdir: str, nodata) -> tuple[str, str]:
    try:
        crs = da.rio.crs
        transform = da.rio.transform()
        nd = da.rio.nodata if nodata is None else nodata
    except Exception as exc:
        raise InvalidSourceError(f"DataArray has no usable rioxarray georeference: {exc}") from None
    if crs is None:
        raise InvalidSourceError("DataArray has no CRS: set one with da.rio.write_crs(...)")
    name = str(da.name) if da.name is not None else "dataarray"
    return _write_array(np.asarray(da.values), crs, transform, nd, tmpdir), name


def _write_array(arr: np.ndarray, crs, transform, nodata, tmpdir: str) -> str:
    import rasterio
    from affine import Affine

    if crs is None or transform is None:
        raise ValueError("a numpy array needs crs= (e.g. 'EPSG:4326') and transform= (an affine.Affine)")
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3:
        raise ValueError(f"array must have shape (rows, cols) or (bands, rows, cols), got {arr.shape}")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if not isinstance(transform, Affine):
        transform = Affine(*list(transform)[:6])
    if nodata is None and np.issubdtype(arr.dtype, np.floating):
        nodata = float("nan")
    out = os.path.join(tmpdir, f"array-{uuid.uuid4().hex}.tif")
    bands, h, w = arr.shape
    profile = dict(
        driver="GTiff", width=w, height=h, count=bands, dtype=arr.dtype, crs=crs,
        transform=transform, nodata=nodata, compress="deflate",
    )
    if h >= 256 and w >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    try:
        with rasterio.open(out, "w", **profile) as dst:
            dst.write(arr)
            factors = [f for f in (2, 4, 8, 16, 32) if min(h, w) // f >= 256]
            if factors:
                from rasterio.enums import Resampling

                dst.build_overviews(factors, Resampling.nearest)
    except Exception as exc:
        if os.path.exists(out):
            os.remove(out)
        raise InvalidSourceError(f"cannot write the array as a raster: {exc}") from None
    return out
