"""STAC collections: a cached, shareable index of a search, usable offline.

>>> from leafmap_tiles import collections
>>> from leafmap_tiles.providers import terrascope
>>> terrascope.login()
>>> col = collections.build(terrascope, "terrascope-s2-ndvi-v2", name="ndvi_gent",
...                         bbox=[3.6, 51.0, 3.8, 51.1], date_range=("2025-05-01", "2025-06-30"))
>>> col.filter(cloud_cover_lt=20).dates
>>> m.add_time_slider(col, asset="NDVI", colormap="RdYlGn", vmin=0, vmax=250)
>>> col.export("ndvi_gent.parquet"); collections.load("ndvi_gent.parquet")

Modules: :mod:`.build` (search + headers -> index), :mod:`.headers` (concurrent COG
header reads with per-host credentials), :mod:`.index` (GeoParquet layout),
:mod:`.collection` (``Collection``, ``load``, ``list_collections``, ``to_store``,
``sample_points``, ``read``), :mod:`.pixels` (pixel reads planned from the cached headers).
``from_items``/``local_item`` make a collection of items at hand (e.g. local COGs).
"""

from __future__ import annotations

from .build import build, from_items, local_item
from .collection import Collection, CollectionAsset, list_collections, load

__all__ = ["build", "from_items", "local_item", "Collection", "CollectionAsset", "load", "list_collections"]
