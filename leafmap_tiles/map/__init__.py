"""Jupyter map widgets (the only part that imports ipyleaflet/ipywidgets)."""

from leafmap_tiles.map.colorbar import Colorbar
from leafmap_tiles.map.layers import RasterTileLayer
from leafmap_tiles.map.map import Map
from leafmap_tiles.map.time_slider import TimeSlider

__all__ = ["Colorbar", "Map", "RasterTileLayer", "TimeSlider"]
