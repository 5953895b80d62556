"""GDAL configuration of the server process: defaults, and credentials pushed by
the kernel when a provider logs in or out.

Credentials are scoped to hosts with GDAL's path-specific options
(``VSISetPathSpecificOption``, which rasterio does not wrap; see
:mod:`leafmap_tiles._gdal`), so they are never sent to another host; see :func:`apply`.
"""

from __future__ import annotations

import os
import re
import threading

from leafmap_tiles.errors import SettingsError
from leafmap_tiles.protocol import GdalChange, members

# Set once at server start in the server's own process (documented GDAL options).
DEFAULTS = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_TIMEOUT": "10",
    "GDAL_HTTP_CONNECTTIMEOUT": "5",
    "GDAL_HTTP_MAX_RETRY": "0",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": "",
    # No per-file-handle cache (GDAL's default): with one reader per thread and source,
    # each open file had its own 25 MB of cached bytes (VSI_CACHE_SIZE), duplicating the
    # OS page cache for local files and /vsicurl/'s own bounded cache for URLs; memory
    # then grew with threads x sources (benchmarks/soak.py --load tiles).
    "VSI_CACHE": "FALSE",
    # Block cache in MB, for the whole process (shared by all its threads and readers).
    # 512 filled up on big rasters (peak RSS 670 MiB in benchmarks/tiles.py); 128 keeps
    # the blocks of a map view warm and the session server within 1.2x titiler's RSS.
    "GDAL_CACHEMAX": "128",
}


#: glibc malloc arenas of a server process (``MALLOC_ARENA_MAX`` overrides): glibc makes
#: one arena per thread, and with GDAL reads in many threads the freed memory stays
#: fragmented and the RSS only grows; two arenas keep it bounded.
MALLOC_ARENAS = 2

#: glibc's mmap threshold of a server process, bytes (``MALLOC_MMAP_THRESHOLD_``
#: overrides): blocks this large or larger (a tile's arrays, GDAL's decoded blocks) are
#: mmapped and go back to the system when freed.  glibc's default is the same 128 KiB but
#: *dynamic*: each freed mmapped block raises it to that block's size, after which such
#: arrays come from the heap and fragment it, and the RSS grows run after run of the same
#: tiles (benchmarks/soak.py: +15 MiB per run of 1,000 tiles; fixed threshold: flat).
MMAP_THRESHOLD = 128 * 1024


#: ``GDAL_CACHEMAX`` as GDAL reads it: megabytes (bytes from 100000 on), a percentage of
#: the RAM (``10%``) or a size with a unit (``512MB``, ``1GB``).
_CACHEMAX = re.compile(r"\s*[0-9]+(\.[0-9]+)?\s*(%|[kKmMgG][bB]?)?\s*")


def check_cachemax(value: str | None) -> None:
    """Raise :class:`SettingsError` unless ``value`` (``GDAL_CACHEMAX``; None or empty:
    unset) is a size GDAL reads; GDAL itself would take other text as 0 or its default
    without a word."""
    if value and not _CACHEMAX.fullmatch(value):
        raise SettingsError(f"GDAL_CACHEMAX={value[:40]!r}: give megabytes (e.g. 512), a percentage of the RAM "
                            "(e.g. 10%) or a size with a unit (e.g. 1GB)")


def set_defaults(cachemax_mb: int | None = None) -> None:
    """Process-wide GDAL defaults of a server process (its own environment; values
    the user set win), the same for the session server and ``leafmap-tiles serve``.
    ``cachemax_mb`` sets GDAL's block cache (``GDAL_CACHEMAX``, default
    :data:`DEFAULTS`)."""
    if cachemax_mb is not None:
        os.environ["GDAL_CACHEMAX"] = str(int(cachemax_mb))
    check_cachemax(os.environ.get("GDAL_CACHEMAX"))
    for k, v in DEFAULTS.items():
        if v == "":
            continue
        os.environ.setdefault(k, v)
    apply_s3()


def apply_s3() -> dict[str, str]:
    """Hand GDAL the S3 settings it would not read by itself (an endpoint given the
    boto way, ``AWS_ENDPOINT_URL``, or by an ``AWS_PROFILE`` profile; path-style
    addressing for an IP endpoint; see :mod:`leafmap_tiles.s3`), as path-specific
    options on ``/vsis3/`` only.  Returns them; a configuration that cannot be used
    is logged and left to GDAL (each ``s3://`` read then fails with the reason)."""
    import logging

    from leafmap_tiles import _gdal, s3
    from leafmap_tiles.errors import S3ConfigurationError

    try:
        options = s3.gdal_options()
    except S3ConfigurationError as exc:
        logging.getLogger("leafmap_tiles.server").warning("S3 settings not used: %s", exc)
        return {}
    for key, value in options.items():
        _gdal.set_path_option("/vsis3/", key, value)
    return options


#: modules that rio-tiler imports only for its ``XarrayReader``, which a server process
#: never uses (arrays reach the server as files): xarray pulls in pandas and pyarrow,
#: about 110 MiB of RSS in every server process.
UNUSED_MODULES = ("xarray", "rioxarray")


def skip_unused_imports() -> None:
    """In a server process, before rio-tiler is imported: make ``import xarray`` fail
    (``sys.modules[name] = None``, Python's documented way to block an import), so that
    rio-tiler runs without its optional xarray reader.  Modules already imported are
    left alone."""
    import sys

    for name in UNUSED_MODULES:
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]


def limit_malloc_arenas(n: int | None = None) -> bool:
    """Bound glibc's heap in this process: at most ``n`` malloc arenas (default
    ``MALLOC_ARENA_MAX`` or :data:`MALLOC_ARENAS`), and a fixed mmap threshold of
    :data:`MMAP_THRESHOLD` bytes unless ``MALLOC_MMAP_THRESHOLD_`` is set (glibc then
    applied it already), both with ``mallopt``; call it before the worker threads start.
    False where glibc is not the allocator; :class:`SettingsError` for a
    ``MALLOC_ARENA_MAX`` that is not a whole number >= 1."""
    import ctypes
    import ctypes.util

    if n is None:
        given = os.environ.get("MALLOC_ARENA_MAX", "").strip()
        if given and not (given.isascii() and given.isdigit() and int(given) >= 1):
            raise SettingsError(f"MALLOC_ARENA_MAX={given[:40]!r}: give a whole number of malloc arenas, at least 1 "
                                f"(default {MALLOC_ARENAS})")
        n = int(given) if given else MALLOC_ARENAS
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(-8, int(n)))  # M_ARENA_MAX
    if not os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        ok = bool(mallopt(-3, MMAP_THRESHOLD)) and ok  # M_MMAP_THRESHOLD (no longer dynamic)
    return ok


# Credentials by host ("name" = any port, or "name:port"; see leafmap_tiles._hosts),
# the URL prefixes they were applied to, and every host that ever had credentials
# (its tiles are never cacheable by the browser, also after a logout).
_hosts: dict[str, tuple[str, str]] = {}
_applied: dict[str, str] = {}
_ever: set[str] = set()
_lock = threading.Lock()


def _url_prefix(url: str) -> str | None:
    """``scheme://netloc/`` of an http(s) URL, the scheme in lower case and the rest as
    written: GDAL matches path-specific options on the literal ``/vsicurl/`` prefix,
    and rasterio opens ``HTTP://h/a.tif`` as ``/vsicurl/http://h/a.tif``."""
    from urllib.parse import urlsplit

    from leafmap_tiles import _paths

    url = _paths.from_vsicurl(url)
    if not _paths.is_http_url(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[::1/x.tif": registration refuses it (_paths.check_url)
        return None
    if not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}/"  # urlsplit lowers the scheme only


def _urls(path) -> list[str]:
    out = []
    for p in members(path):
        if isinstance(p, str):
            out.extend(vrt_members(p) if p.lower().endswith(".vrt") else [p])
    return out


_vrt_cache: dict[tuple, list[str]] = {}


def vrt_members(path: str) -> list[str]:
    """The files a local VRT reads (its ``SourceFilename`` elements, made absolute when
    relative to the VRT), e.g. the asset URLs of a stacked STAC item; ``[path]`` when
    it cannot be read as a VRT.  Cached per file state."""
    import xml.etree.ElementTree as ET

    try:
        st = os.stat(path)
    except OSError:
        return [path]
    key = (path, st.st_mtime_ns, st.st_size)
    hit = _vrt_cache.get(key)
    if hit is not None:
        return hit
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return [path]
    out = []
    for el in root.iter("SourceFilename"):
        name = (el.text or "").strip()
        if el.get("relativeToVRT") == "1" and not name.startswith("/vsi"):
            name = os.path.join(os.path.dirname(path), name)
        if name and name not in out:
            out.append(name)
    if len(_vrt_cache) > 1024:
        _vrt_cache.clear()
    _vrt_cache[key] = out
    return out


def is_remote(path) -> bool:
    """Whether reading ``path`` (a path, a mosaic tuple, or a VRT of such) goes over
    the network: then it is rendered on the remote pool, with its longer deadline."""
    from leafmap_tiles._paths import is_remote_path

    return any(is_remote_path(p) for p in _urls(path))


def _host_for(url: str) -> str | None:
    from leafmap_tiles._hosts import host_matches

    for key in _hosts:
        if host_matches(url, key):
            return key
    return None


def _set(prefix: str, key: str) -> None:
    from leafmap_tiles import _gdal

    user, password = _hosts[key]
    _gdal.set_path_option(prefix, "GDAL_HTTP_AUTH", "BASIC")
    _gdal.set_path_option(prefix, "GDAL_HTTP_USERPWD", f"{user}:{password}")
    _applied[prefix] = key


def cover(path) -> None:
    """Before ``path`` (a URL, or a tuple for a mosaic) is read: give its URLs the
    credentials of their host, if any, scoped to their exact ``scheme://netloc/``."""
    with _lock:
        for url in _urls(path):
            prefix = _url_prefix(url)
            key = _host_for(url) if prefix else None
            if key is not None and _applied.get(prefix) != key:
                _set(prefix, key)


def protected(path) -> bool:
    """Whether any URL of ``path`` is on a host that has (or had) credentials."""
    from leafmap_tiles._hosts import host_matches

    return any(host_matches(url, key) for url in _urls(path) for key in list(_ever))


def apply(body: GdalChange, paths=()) -> None:
    """Apply a change pushed by the kernel.

    ``body``: ``{"credentials": [{"host": "name[:port]" or "https://host/", "username",
    "password"}], "clear_hosts": [...]}`` (:class:`~leafmap_tiles.protocol.GdalChange`,
    checked by :class:`leafmap_tiles.server.session_params.GdalBody`).  Credentials apply only to URLs on their host
    (GDAL path-specific options on each URL's exact prefix; see :func:`cover`), never
    to another host.  ``paths`` are the registered sources, covered at once.  GDAL's
    HTTP caches are cleared, so a 401 cached before login, or bytes read before a
    logout, are forgotten.
    """
    from leafmap_tiles import _gdal
    from leafmap_tiles._hosts import host_key

    with _lock:
        for cred in body.get("credentials") or []:
            key = host_key(cred["host"])
            _hosts[key] = (cred["username"], cred["password"])
            _ever.add(key)
        for host in body.get("clear_hosts") or []:
            key = host_key(host)
            _hosts.pop(key, None)
            for prefix in [p for p, k in _applied.items() if k == key]:
                _gdal.clear_path_options(prefix)
                del _applied[prefix]
        for prefix, key in list(_applied.items()):
            if key in _hosts:
                _set(prefix, key)  # new password for a host already in use
        for key in _hosts:  # URLs not registered yet, at the host's default ports
            name = key.rsplit(":", 1)[0] if ":" in key else key
            port = key.rsplit(":", 1)[1] if ":" in key else None
            for scheme in ("https", "http"):
                netloc = name if port is None or port == {"https": "443", "http": "80"}[scheme] else f"{name}:{port}"
                _set(f"{scheme}://{netloc}/", key)
        _gdal.clear_caches()
    for path in paths:
        cover(path)
