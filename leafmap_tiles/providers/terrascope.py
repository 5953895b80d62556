"""Terrascope (VITO): log in, search the STAC catalogue, map the results.

The same functions, signatures and defaults as ``leafmap.terrascope``, so code
written for leafmap keeps working::

    from leafmap_tiles.providers import terrascope
    terrascope.login()          # TERRASCOPE_USERNAME / TERRASCOPE_PASSWORD
    items = terrascope.search_ndvi(bbox=[5.0, 51.2, 5.1, 51.3],
                                   start="2025-05-01", end="2025-06-01")
    m.add_time_slider(terrascope.create_time_layers(items))

Differences from leafmap (its known faults, fixed):

* Downloads on ``services.terrascope.be`` use HTTP Basic auth.  The package's own reads
  (the tile server, collections, ``providers.stac.open_raster``) send the credentials
  to the Terrascope download hosts only, and the running tile server gets them at once
  (no restart, no cached 401 from before login).  As in leafmap, ``login()`` also sets
  ``GDAL_HTTP_AUTH``/``GDAL_HTTP_USERPWD`` in ``os.environ`` for your own
  ``rasterio.open`` calls; GDAL sends those to *every* host it reads in this process
  until ``logout()``.
* The cloud filter uses the CQL2 property ``eo:cloud_cover``; a server without the
  Filter extension is filtered here instead of returning nothing.
* A date-only ``end`` includes that whole day; naive datetimes are UTC; every page of
  results is read; ``limit`` applies after ``unique_dates``.
* A date with several tiles gives one layer showing all of them (a mosaic).
* :func:`cleanup_tile_servers` stops only the tile servers this package started.

Settings (module attributes, or environment variables when the attribute is None):

* ``STAC_URL`` / ``LEAFMAP_TILES_TERRASCOPE_STAC_URL``, default
  ``https://stac.terrascope.be``.
* ``DOWNLOAD_HOSTS`` / ``LEAFMAP_TILES_TERRASCOPE_HOSTS`` (comma separated,
  ``name`` or ``name:port``), default ``services.terrascope.be``: the hosts that
  receive the credentials.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from typing import Any

from leafmap_tiles import settings
from leafmap_tiles.providers import stac as _stac
from leafmap_tiles.errors import ProviderError

__all__ = [
    "login",
    "logout",
    "get_stac_client",
    "list_collections",
    "search",
    "search_ndvi",
    "get_asset_urls",
    "get_item_dates",
    "create_time_layers",
    "cleanup_tile_servers",
    "STAC_URL",
    "DOWNLOAD_HOSTS",
]

DEFAULT_STAC_URL = settings.Settings.terrascope_stac_url
DEFAULT_DOWNLOAD_HOSTS = settings.Settings.terrascope_hosts
NDVI_COLLECTION = "terrascope-s2-ndvi-v2"

STAC_URL_ENV = "LEAFMAP_TILES_TERRASCOPE_STAC_URL"
HOSTS_ENV = "LEAFMAP_TILES_TERRASCOPE_HOSTS"

#: Override of the STAC API URL (None: environment variable, then the default).
STAC_URL: str | None = None
#: Override of the download hosts that receive the credentials.
DOWNLOAD_HOSTS: Sequence[str] | None = None

_GDAL_VARS = ("GDAL_HTTP_AUTH", "GDAL_HTTP_USERPWD", "GDAL_DISABLE_READDIR_ON_OPEN",
              "GDAL_HTTP_HEADER_FILE")
# files that leafmap's token-based login left behind
_STALE_FILES = ("~/.terrascope_tokens.json", "~/.gdal_http_headers")

_logged_in_hosts: set[str] = set()


def stac_url() -> str:
    """The Terrascope STAC API URL in force."""
    return (STAC_URL or settings.current().terrascope_stac_url).rstrip("/")


def download_hosts() -> list[str]:
    """The hosts that get the Terrascope credentials."""
    if DOWNLOAD_HOSTS is not None:
        return list(DOWNLOAD_HOSTS)
    return list(settings.current().terrascope_hosts)


_LOGIN_HINT = ("log in first: leafmap_tiles.providers.terrascope.login() "
               "(with username/password or TERRASCOPE_USERNAME and TERRASCOPE_PASSWORD)")
_stac.set_login_hint(download_hosts, _LOGIN_HINT)


def login(
    username: str | None = None,
    password: str | None = None,
    auto_refresh: bool = True,
    quiet: bool = False,
) -> None:
    """Log in to Terrascope with HTTP Basic auth.

    Credentials come from the arguments or ``TERRASCOPE_USERNAME`` /
    ``TERRASCOPE_PASSWORD``. Sets ``GDAL_HTTP_AUTH=BASIC``,
    ``GDAL_HTTP_USERPWD=user:password`` and ``GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR``
    in ``os.environ`` (so your own rasterio reads work) and gives the credentials to
    the running tile server for the Terrascope download hosts only; a raster that
    failed before login works after it. ``auto_refresh`` is accepted for
    compatibility with leafmap (Basic auth needs no token refresh).
    """
    del auto_refresh  # nothing to refresh with Basic auth
    username = username or os.environ.get("TERRASCOPE_USERNAME")
    password = password or os.environ.get("TERRASCOPE_PASSWORD")
    if not username or not password:
        raise ProviderError(
            "Terrascope credentials required: pass username and password, or set the "
            "TERRASCOPE_USERNAME and TERRASCOPE_PASSWORD environment variables."
        )
    os.environ["GDAL_HTTP_AUTH"] = "BASIC"
    os.environ["GDAL_HTTP_USERPWD"] = f"{username}:{password}"
    os.environ["GDAL_DISABLE_READDIR_ON_OPEN"] = "EMPTY_DIR"
    hosts = download_hosts()
    _stac.set_credentials(hosts, username, password)
    _logged_in_hosts.update(hosts)
    if not quiet:
        print(f"Authenticated as: {username}")


def logout() -> None:
    """Forget the Terrascope credentials: removes the GDAL variables set by
    :func:`login` (and ``GDAL_HTTP_HEADER_FILE``), deletes the stale token files
    ``~/.terrascope_tokens.json`` and ``~/.gdal_http_headers`` of leafmap's login,
    and tells the running tile server, which drops what it cached of protected
    assets."""
    removed = {var: os.environ.pop(var) for var in _GDAL_VARS if var in os.environ}
    _stac.forget_gdal_config(removed)
    for name in _STALE_FILES:
        path = os.path.expanduser(name)
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
    hosts = sorted(_logged_in_hosts | set(download_hosts()))
    _logged_in_hosts.clear()
    _stac.clear_credentials(hosts)
    print("Logged out from Terrascope")


def get_stac_client() -> Any:
    """The (cached) ``pystac_client.Client`` of the Terrascope STAC API."""
    return _stac.get_client(stac_url())


def _reset_client() -> None:
    """Forget cached clients (after changing the STAC URL setting)."""
    _stac.forget_client()


def list_collections() -> list[str]:
    """Ids of the collections in the Terrascope STAC catalogue."""
    return _stac.list_collections(stac_url())


def search(
    collection: str,
    bbox: list[float] | None = None,
    start: str | _dt.datetime | None = None,
    end: str | _dt.datetime | None = None,
    max_cloud_cover: float | None = None,
    limit: int | None = None,
    unique_dates: bool = True,
    **kwargs,
) -> list:
    """Search a Terrascope collection; items sorted by datetime.

    Args:
        collection: collection id, e.g. ``"terrascope-s2-ndvi-v2"``.
        bbox: (west, south, east, north) in EPSG:4326.
        start, end: ``YYYY-MM-DD`` strings or datetimes; a date-only ``end``
            includes that whole day; naive datetimes are UTC; None leaves the
            range open.
        max_cloud_cover: keep items with ``eo:cloud_cover`` <= this (0-100).
        limit: at most this many items, counted after ``unique_dates``.
        unique_dates: one item per date (the other tiles of that date still show
            in :func:`create_time_layers`).
        **kwargs: ``page_size``, ``max_items`` (the most items returned, first in
            the sort order), ``sortby`` (e.g. ``"-properties.eo:cloud_cover"``; sorted
            by the server when it can, else here), or other arguments of
            ``pystac_client.Client.search``.
    """
    return _stac.search(stac_url(), collection, bbox=bbox, start=start, end=end,
                        max_cloud_cover=max_cloud_cover, limit=limit,
                        unique_dates=unique_dates, **kwargs)


def search_ndvi(
    bbox: list[float],
    start: str | _dt.datetime,
    end: str | _dt.datetime,
    max_cloud_cover: float = 10.0,
    **kwargs,
) -> list:
    """Search Sentinel-2 NDVI (collection ``terrascope-s2-ndvi-v2``); see :func:`search`."""
    return search(NDVI_COLLECTION, bbox=bbox, start=start, end=end,
                  max_cloud_cover=max_cloud_cover, **kwargs)


def get_asset_urls(items: list, asset_key: str = "NDVI") -> list[str]:
    """The URL of asset ``asset_key`` of each item that has it."""
    return _stac.get_asset_urls(items, asset_key)


def get_item_dates(items: list) -> list[str]:
    """The date (``YYYY-MM-DD``, UTC) of each item."""
    return _stac.get_item_dates(items)


def create_time_layers(
    items: list,
    asset_key: str = "NDVI",
    colormap: str = "RdYlGn",
    vmin: float = 0,
    vmax: float = 250,
) -> dict:
    """{date: TileLayer} for ``Map.add_time_slider``, served by our tile server.

    A date with several tiles shows all of them; the item's scale/offset/nodata
    travel with the layer (``vmin``/``vmax`` are in stored values, 0-250 for NDVI).
    """
    return _stac.create_time_layers(items, asset_key, colormap=colormap, vmin=vmin, vmax=vmax)


def cleanup_tile_servers() -> int:
    """Stop the tile servers this package started (by their process ids) and return
    how many; no other process is touched."""
    return _stac.cleanup_tile_servers()
