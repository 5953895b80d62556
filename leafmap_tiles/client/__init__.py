"""Kernel-side client of the tile server: owns the child process, registers sources
and builds browser URLs.  Talks to the server over HTTP only (design.md)."""

from leafmap_tiles.client.server import TileServer, get_server, running_server_pids
from leafmap_tiles.client.sources import prepare_source

__all__ = ["TileServer", "get_server", "prepare_source", "running_server_pids"]
