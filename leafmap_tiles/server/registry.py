"""Sources registered by the kernel: the only files/URLs the server will read."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field


@dataclass
class Source:
    """A registered raster.  ``path`` is a local path or a GDAL-readable URL; it is
    never sent to the browser.  ``defaults`` are style parameters applied when a
    tile URL does not give them (e.g. ``nodata`` from a STAC item).  ``style`` is the
    style it was registered with: point queries that do not give a style of their own
    use it, so they answer what the layer shows (tile URLs carry their own style)."""

    id: str
    path: str
    defaults: dict = field(default_factory=dict)
    protected: bool = False
    style: dict = field(default_factory=dict)


class Registry:
    def __init__(self) -> None:
        self._sources: dict[str, Source] = {}
        self._lock = threading.Lock()

    def add(self, path: str, defaults: dict | None = None, source_id: str | None = None, protected: bool = False,
            style: dict | None = None) -> Source:
        with self._lock:
            sid = source_id or f"s{secrets.token_hex(6)}"
            src = Source(sid, path, dict(defaults or {}), protected, dict(style or {}))
            self._sources[sid] = src
            return src

    def get(self, source_id: str) -> Source | None:
        return self._sources.get(source_id)

    def remove(self, source_id: str) -> Source | None:
        with self._lock:
            return self._sources.pop(source_id, None)

    def all(self) -> list[Source]:
        return list(self._sources.values())
