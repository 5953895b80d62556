"""Element84 Earth Search: Sentinel-2 L2A as public COGs, no login.

    from leafmap_tiles.providers import earth_search
    items = earth_search.search_sentinel2(bbox=[5.0, 51.2, 5.1, 51.3],
                                          start="2025-05-01", end="2025-06-01")
    m.add_time_slider(earth_search.create_time_layers(items, asset_key="visual"))

Same search semantics as :mod:`leafmap_tiles.providers.stac`. The STAC URL is
``STAC_URL`` or the environment variable ``LEAFMAP_TILES_EARTH_SEARCH_URL``, default
``https://earth-search.aws.element84.com/v1``.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from leafmap_tiles import settings
from leafmap_tiles.providers import stac as _stac

__all__ = ["get_stac_client", "list_collections", "search", "search_sentinel2",
           "get_asset_urls", "get_item_dates", "create_time_layers", "STAC_URL"]

DEFAULT_STAC_URL = settings.Settings.earth_search_url
STAC_URL_ENV = "LEAFMAP_TILES_EARTH_SEARCH_URL"
SENTINEL2_COLLECTION = "sentinel-2-l2a"

#: Override of the STAC API URL (None: environment variable, then the default).
STAC_URL: str | None = None


def stac_url() -> str:
    return (STAC_URL or settings.current().earth_search_url).rstrip("/")


def get_stac_client() -> Any:
    """The (cached) ``pystac_client.Client`` of Earth Search."""
    return _stac.get_client(stac_url())


def list_collections() -> list[str]:
    return _stac.list_collections(stac_url())


def search(
    collection: str = SENTINEL2_COLLECTION,
    bbox: list[float] | None = None,
    start: str | _dt.datetime | None = None,
    end: str | _dt.datetime | None = None,
    max_cloud_cover: float | None = None,
    limit: int | None = None,
    unique_dates: bool = True,
    **kwargs,
) -> list:
    """Search an Earth Search collection (see :func:`leafmap_tiles.providers.stac.search`)."""
    return _stac.search(stac_url(), collection, bbox=bbox, start=start, end=end,
                        max_cloud_cover=max_cloud_cover, limit=limit,
                        unique_dates=unique_dates, **kwargs)


def search_sentinel2(
    bbox: list[float],
    start: str | _dt.datetime,
    end: str | _dt.datetime,
    max_cloud_cover: float = 10.0,
    **kwargs,
) -> list:
    """Sentinel-2 L2A items (collection ``sentinel-2-l2a``)."""
    return search(SENTINEL2_COLLECTION, bbox=bbox, start=start, end=end,
                  max_cloud_cover=max_cloud_cover, **kwargs)


def get_asset_urls(items: list, asset_key: str = "visual") -> list[str]:
    return _stac.get_asset_urls(items, asset_key)


def get_item_dates(items: list) -> list[str]:
    return _stac.get_item_dates(items)


def create_time_layers(
    items: list,
    asset_key: str = "visual",
    colormap: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
) -> dict:
    """{date: TileLayer}; ``visual`` is true colour (no colormap), single bands such
    as ``red`` or ``nir`` take a colormap and vmin/vmax."""
    return _stac.create_time_layers(items, asset_key, colormap=colormap, vmin=vmin, vmax=vmax)
