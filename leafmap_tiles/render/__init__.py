"""Tile engine: reads XYZ tiles, points and statistics of a raster with rio-tiler
and encodes images.  Knows nothing of HTTP or Jupyter (see design.md)."""

from leafmap_tiles.render.colormaps import resolve_colormap
from leafmap_tiles.render.engine import RenderEngine, SourceInfo
from leafmap_tiles.render.style import Style, parse_style

__all__ = ["RenderEngine", "SourceInfo", "Style", "parse_style", "resolve_colormap"]
