"""Jupyter map widgets (the only part that imports ipyleaflet/ipywidgets)."""

from leafmap_tiles.map.layers import RasterTileLayer
from leafmap_tiles.map.map import Map

__all__ = ["Map", "RasterTileLayer"]
