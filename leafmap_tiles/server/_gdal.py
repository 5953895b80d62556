"""Calls into the GDAL library that rasterio loaded, for functions rasterio does not
wrap: path-specific configuration options (GDAL >= 3.6,
``VSISetPathSpecificOption``) and clearing the /vsicurl/ caches
(``VSICurlClearCache``).  See https://gdal.org/api/cpl.html.
"""

from __future__ import annotations

import ctypes
import glob
import os
from functools import lru_cache


@lru_cache(maxsize=1)
def _lib():
    import rasterio

    here = os.path.dirname(rasterio.__file__)
    candidates = glob.glob(os.path.join(here, "..", "rasterio.libs", "libgdal*.so*"))
    candidates += glob.glob(os.path.join(here, ".dylibs", "libgdal*.dylib"))
    for path in candidates:
        try:
            return ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            continue
    return ctypes.CDLL(None)  # GDAL linked into the process (rasterio built from source)


def set_path_option(prefix: str, key: str, value: str | None) -> None:
    """Set GDAL config ``key`` for paths starting with ``prefix`` only."""
    fn = _lib().VSISetPathSpecificOption
    fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]
    fn.restype = None
    fn(_vsi(prefix).encode(), key.encode(), None if value is None else value.encode())


def clear_path_options(prefix: str) -> None:
    """Forget every path-specific option set for ``prefix``."""
    fn = _lib().VSIClearPathSpecificOptions
    fn.argtypes = [ctypes.c_char_p]
    fn.restype = None
    fn(_vsi(prefix).encode())


def clear_caches() -> None:
    """Drop /vsicurl/ caches (cached bytes, sizes, and cached HTTP failures)."""
    fn = _lib().VSICurlClearCache
    fn.argtypes = []
    fn.restype = None
    fn()


def _vsi(prefix: str) -> str:
    """GDAL matches path-specific options on the /vsicurl/ form of a URL."""
    if prefix.startswith(("http://", "https://")):
        return "/vsicurl/" + prefix
    return prefix
