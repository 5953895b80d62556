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

from leafmap_tiles import _paths
from leafmap_tiles.errors import VSIError


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
    return _paths.to_gdal_path(prefix, vsicurl=True) if _paths.is_http_url(prefix) else prefix


_lib = lib  # the name before issue 17 (branches written before it)


# ----------------------------------------------------------------- VSI files (remote key stores)

#: GDAL's VSI error numbers (cpl_vsi_error.h) that mean "refused" and "not there"
#: (:func:`leafmap_tiles.gdal_errors.classify` reads them from a :class:`VSIError`).
VSIE_DENIED = (6, 9, 10)  # AccessDenied, InvalidCredentials, SignatureDoesNotMatch
VSIE_MISSING = (7, 8)     # BucketNotFound, ObjectNotFound


class _StatBuf(ctypes.Structure):
    # VSIStatBufL is struct stat64 on Linux/glibc; only its size matters here, the
    # size and mtime are read from the file's metadata instead
    _fields_ = [("_pad", ctypes.c_byte * 256)]


def _check_vsi(what: str, path: str) -> None:
    lib = _lib()
    lib.VSIGetLastErrorNo.restype = ctypes.c_int
    lib.VSIGetLastErrorMsg.restype = ctypes.c_char_p
    no = lib.VSIGetLastErrorNo()
    msg = (lib.VSIGetLastErrorMsg() or b"").decode(errors="replace")
    raise VSIError(no, msg or f"{what} failed for {path}")


class thread_options:
    """Context manager: GDAL config options for the calling thread only
    (``CPLSetThreadLocalConfigOption``), restored on exit."""

    def __init__(self, options: dict[str, str]) -> None:
        self.options = dict(options)
        self._old: dict[str, bytes | None] = {}

    def __enter__(self):
        lib = _lib()
        lib.CPLGetThreadLocalConfigOption.restype = ctypes.c_char_p
        lib.CPLGetThreadLocalConfigOption.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        lib.CPLSetThreadLocalConfigOption.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        for k, v in self.options.items():
            self._old[k] = lib.CPLGetThreadLocalConfigOption(k.encode(), None)
            lib.CPLSetThreadLocalConfigOption(k.encode(), v.encode())
        return self

    def __exit__(self, *exc):
        lib = _lib()
        for k, old in self._old.items():
            lib.CPLSetThreadLocalConfigOption(k.encode(), old)
        return False


def vsi_headers(path: str) -> dict[str, str]:
    """The HTTP headers of a remote file (``/vsis3/...``, ``/vsicurl/...``) from
    GDAL (``VSIGetFileMetadata(path, "HEADERS")``), e.g. ``ETag``, ``Content-Length``,
    ``Last-Modified``; asked afresh (GDAL's cache for ``path`` is cleared first).

    Raises:
        VSIError: the file cannot be stat'ed (``errno`` one of GDAL's VSI error numbers).
    """
    lib = _lib()
    clear = lib.VSICurlPartialClearCache
    clear.argtypes = [ctypes.c_char_p]
    clear(path.encode())
    lib.VSIErrorReset()
    stat = lib.VSIStatExL
    stat.argtypes = [ctypes.c_char_p, ctypes.POINTER(_StatBuf), ctypes.c_int]
    stat.restype = ctypes.c_int
    buf = _StatBuf()
    if stat(path.encode(), ctypes.byref(buf), 0x1 | 0x2 | 0x8) != 0:  # EXISTS|NATURE|SET_ERROR_FLAG
        _check_vsi("stat", path)
    fn = lib.VSIGetFileMetadata
    fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
    fn.restype = ctypes.POINTER(ctypes.c_char_p)
    lst = fn(path.encode(), b"HEADERS", None)
    out: dict[str, str] = {}
    if lst:
        i = 0
        while lst[i] is not None:
            k, _, v = lst[i].decode(errors="replace").partition("=")
            out[k.strip().lower()] = v.strip()
            i += 1
        destroy = lib.CSLDestroy
        destroy.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
        destroy(lst)
    return out


def clear_path_cache(path: str) -> None:
    """Forget what GDAL cached of one remote file (``VSICurlPartialClearCache``): its
    size, bytes and a failure, so the next read asks the server again."""
    clear = lib().VSICurlPartialClearCache
    clear.argtypes = [ctypes.c_char_p]
    clear(path.encode())


def vsi_download(path: str, dest: str, chunk: int = 1 << 20) -> int:
    """Copy the remote file ``path`` to the local file ``dest``; returns its size.

    Raises:
        VSIError: it cannot be opened or read.
    """
    lib = _lib()
    lib.VSIErrorReset()
    fopen = lib.VSIFOpenExL
    fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    fopen.restype = ctypes.c_void_p
    fp = fopen(path.encode(), b"rb", 1)
    if not fp:
        _check_vsi("open", path)
    read = lib.VSIFReadL
    read.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p]
    read.restype = ctypes.c_size_t
    close = lib.VSIFCloseL
    close.argtypes = [ctypes.c_void_p]
    buf = ctypes.create_string_buffer(chunk)
    total = 0
    try:
        with open(dest, "wb") as out:
            while True:
                n = read(buf, 1, chunk, fp)
                if n:
                    out.write(buf.raw[:n])
                    total += n
                if n < chunk:
                    break
        err = lib.VSIGetLastErrorNo()
        if err:
            _check_vsi("read", path)
    finally:
        close(fp)
    return total


def reset_error() -> None:
    """Clear this thread's GDAL error state (``CPLErrorReset``).

    After a failed read GDAL keeps the failure as the thread's "last error", and
    rasterio's ``exc_wrap_int`` raises the last error after any call returning non-zero,
    even one that returns a value, not an error code: the next ``dataset.colorinterp``
    on that thread (GCI_GrayIndex = 1) raised the old failure of another file
    (``leafmap-tiles serve``: the tile after an unreadable dataset's failed with its
    error).  Called where a read failed; harmless (and skipped) if GDAL is not found."""
    try:
        lib().CPLErrorReset()
    except Exception:
        pass
