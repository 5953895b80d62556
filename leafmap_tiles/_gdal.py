"""Calls into the GDAL library that rasterio loaded, for functions rasterio does not
wrap: path-specific configuration options (GDAL >= 3.6,
``VSISetPathSpecificOption``), unsetting a process-wide option
(``CPLSetConfigOption(key, NULL)``) and clearing the /vsicurl/ caches
(``VSICurlClearCache``).  See https://gdal.org/api/cpl.html.

Used by the tile server (credentials scoped to a provider's hosts) and by the
providers in the kernel (forget cached 401s and stale credentials).

pyproj is imported before the first path-specific option is set: importing pyproj
*after* one is set aborts the process with ``std::bad_alloc`` (seen with the
rasterio 1.4.4 / pyproj wheels, GDAL 3.10.3).
"""

from __future__ import annotations

import ctypes
import glob
import os
from functools import lru_cache


@lru_cache(maxsize=1)
def lib():
    """The GDAL shared library that rasterio uses in this process (``ctypes.CDLL``), for
    the few GDAL C functions rasterio does not expose (path options, cache clearing)."""
    import rasterio

    try:  # the copy of GDAL already mapped into this process (wheel or system build)
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.rsplit(None, 1)[-1]
                if os.path.basename(path).startswith("libgdal"):
                    return ctypes.CDLL(path)
    except OSError:
        pass
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
    import pyproj  # noqa: F401  (see module docstring)

    fn = lib().VSISetPathSpecificOption
    fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]
    fn.restype = None
    fn(_vsi(prefix).encode(), key.encode(), None if value is None else value.encode())


def clear_path_options(prefix: str) -> None:
    """Forget every path-specific option set for ``prefix``."""
    fn = lib().VSIClearPathSpecificOptions
    fn.argtypes = [ctypes.c_char_p]
    fn.restype = None
    fn(_vsi(prefix).encode())


def clear_caches() -> None:
    """Drop /vsicurl/ caches (cached bytes, sizes, and cached HTTP failures)."""
    fn = lib().VSICurlClearCache
    fn.argtypes = []
    fn.restype = None
    fn()


def unset_config_option(key: str) -> None:
    """Remove a process-wide GDAL config option (``CPLSetConfigOption(key, NULL)``)."""
    fn = lib().CPLSetConfigOption
    fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    fn.restype = None
    fn(key.encode(), None)


def get_config_option(key: str) -> str | None:
    """The process-wide value of a GDAL config option, or None."""
    fn = lib().CPLGetConfigOption
    fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    fn.restype = ctypes.c_char_p
    v = fn(key.encode(), None)
    return v.decode() if v is not None else None


def _vsi(prefix: str) -> str:
    """GDAL matches path-specific options on the /vsicurl/ form of a URL."""
    if prefix.startswith(("http://", "https://")):
        return "/vsicurl/" + prefix
    return prefix


_lib = lib  # the name before issue 17 (branches written before it)
