"""Data providers: log in, search a STAC catalogue, put the results on the map.

* :mod:`leafmap_tiles.providers.stac`: any STAC API (search, dates, auth per host,
  time layers); it re-exports the modules of each job: :mod:`.search`, :mod:`.items`,
  :mod:`.time_layers`, :mod:`.access` (credentials, ``open_raster``), :mod:`.dates`,
  :mod:`.assets` (several assets as the bands of one raster).
* :mod:`leafmap_tiles.providers.terrascope`: VITO Terrascope (same functions as
  ``leafmap.terrascope``).
* :mod:`leafmap_tiles.providers.earth_search`: Element84 Earth Search (public).

Submodules are imported on use: ``from leafmap_tiles.providers import terrascope``.
"""

from __future__ import annotations

import importlib

__all__ = ["stac", "terrascope", "earth_search"]


def __getattr__(name):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(name)
