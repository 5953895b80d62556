"""leafmap_tiles: rasters on an interactive Jupyter map.

``from leafmap_tiles import Map`` gives an ``ipyleaflet.Map`` whose
``add_raster`` serves tiles from a local tile-server process owned by the
package (see ``design.md`` in the project for the architecture).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Map", "TileServer", "linked_maps", "__version__"]


def __getattr__(name):  # lazy: importing the package must not import ipyleaflet
    if name == "Map":
        from leafmap_tiles.map import Map

        return Map
    if name == "linked_maps":
        from leafmap_tiles.map.split import linked_maps

        return linked_maps
    if name == "TileServer":
        from leafmap_tiles.client import TileServer

        return TileServer
    raise AttributeError(name)
