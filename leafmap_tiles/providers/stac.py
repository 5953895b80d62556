"""Search any STAC API and turn the results into map layers.

Generic helpers used by the provider presets (:mod:`.terrascope`,
:mod:`.earth_search`); they work with any STAC API URL::

    from leafmap_tiles.providers import stac
    items = stac.search("https://example.org/stac", "my-collection",
                        bbox=[5.0, 51.2, 5.1, 51.3], start="2025-05-01", end="2025-06-01",
                        max_cloud_cover=20)
    layers = stac.create_time_layers(items, "NDVI")     # {date: layer} for Map.add_time_slider

This module is where users find these functions; each job lives in its own module
and is re-exported here under the same names:

============================================  =============================================
:mod:`leafmap_tiles.providers.search`         the STAC client cache, :func:`search` and its
                                              semantics (bbox W,S,E,N in EPSG:4326, dates,
                                              cloud cover, order, ``max_items``, ``limit``)
:mod:`leafmap_tiles.providers.items`          items by date (:func:`unique_date_items`,
                                              :func:`group_by_date`), asset URLs, dates,
                                              scale/offset/nodata
:mod:`leafmap_tiles.providers.time_layers`    :func:`create_time_layers`, one layer per date
:mod:`leafmap_tiles.providers.access`         credentials per host, GDAL options,
                                              :func:`open_raster`
:mod:`leafmap_tiles.providers.dates`          :func:`datetime_range` and every date value
:mod:`leafmap_tiles.providers.servers`        the kernel's tile server as providers reach it,
                                              ``cleanup_tile_servers``
============================================  =============================================

Credentials are scoped to hosts: :func:`set_credentials` attaches HTTP Basic auth to
requests for the given hosts only (STAC API requests, rasters opened with
:func:`open_raster`, and the running tile server), never to any other host.
"""

from __future__ import annotations

from leafmap_tiles.providers.access import (
    clear_credentials,
    clear_gdal_http_cache,
    credentials_for,
    open_raster,
    set_credentials,
    set_login_hint,
)
from leafmap_tiles.providers.dates import datetime_range
from leafmap_tiles.providers.items import (
    get_asset_urls,
    get_item_dates,
    get_render_params,
    group_by_date,
    same_date_items,
    unique_date_items,
)
from leafmap_tiles.providers.search import get_client, list_collections, search
from leafmap_tiles.providers.time_layers import create_time_layers

# public here before the split (issue 17) and still used by these names; not in __all__
from leafmap_tiles._hosts import host_matches  # noqa: E402,F401
from leafmap_tiles.providers.access import forget_gdal_config, gdal_auth_options, login_hint_for  # noqa: E402,F401
from leafmap_tiles.providers.servers import cleanup_tile_servers, tile_server  # noqa: E402,F401
from leafmap_tiles.providers.search import forget_client, request_modifier  # noqa: E402,F401
from leafmap_tiles.providers.time_layers import time_layer_sources  # noqa: E402,F401

__all__ = [
    "get_client",
    "list_collections",
    "search",
    "datetime_range",
    "unique_date_items",
    "same_date_items",
    "group_by_date",
    "get_asset_urls",
    "get_item_dates",
    "get_render_params",
    "set_credentials",
    "clear_credentials",
    "credentials_for",
    "set_login_hint",
    "open_raster",
    "clear_gdal_http_cache",
    "create_time_layers",
]

# the private names of the single module, for code written before the split
_gdal_auth_options = gdal_auth_options
_request_modifier = request_modifier
_tile_server = tile_server
