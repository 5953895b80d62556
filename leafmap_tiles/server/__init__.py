"""Tile server: an ASGI app (Starlette) run by uvicorn in a child process.

Session routes live under ``/{token}/``; registration routes additionally need the
kernel-only admin key header.  The server knows nothing of Jupyter (design.md).
"""

from leafmap_tiles.server.app import create_app

__all__ = ["create_app"]
