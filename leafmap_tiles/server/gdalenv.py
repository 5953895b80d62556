"""GDAL configuration of the server process: defaults, and credentials pushed by
the kernel when a provider logs in or out.

Credentials are scoped to hosts with GDAL's path-specific options
(``VSISetPathSpecificOption``, which rasterio does not wrap; see
:mod:`leafmap_tiles._gdal`), so they are never sent to another host; see :func:`apply`.
"""

from __future__ import annotations

import os

# Set once at server start in the server's own process (documented GDAL options).
DEFAULTS = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_TIMEOUT": "10",
    "GDAL_HTTP_CONNECTTIMEOUT": "5",
    "GDAL_HTTP_MAX_RETRY": "0",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": "",
    "VSI_CACHE": "TRUE",
    "GDAL_CACHEMAX": "512",
}


def set_defaults() -> None:
    for k, v in DEFAULTS.items():
        if v == "":
            continue
        os.environ.setdefault(k, v)


def apply(body: dict) -> None:
    """Apply a configuration change pushed by the kernel.

    ``body``: ``{"credentials": [{"prefix": "https://host/", "username", "password"}],
    "clear_prefixes": ["https://host/"]}``.  Credentials apply only to URLs starting
    with their prefix (GDAL path-specific options).  GDAL's HTTP caches are cleared so
    that a failure cached before login (or bytes cached before logout) is forgotten.
    """
    from leafmap_tiles import _gdal

    for cred in body.get("credentials") or []:
        _gdal.set_path_option(cred["prefix"], "GDAL_HTTP_AUTH", "BASIC")
        _gdal.set_path_option(cred["prefix"], "GDAL_HTTP_USERPWD", f"{cred['username']}:{cred['password']}")
    for prefix in body.get("clear_prefixes") or []:
        _gdal.clear_path_options(prefix)
    _gdal.clear_caches()
