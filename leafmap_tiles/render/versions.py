"""The version of a raster on S3 (``s3://bucket/key`` or ``/vsis3/bucket/key``), so
that an object replaced under the same key is read again.

GDAL caches what it read of a ``/vsis3/`` file (its size, header and byte ranges)
for as long as the process lives, and the tile servers keep their readers open: an
object uploaded again under the same key was served stale until a restart.  As GDAL
itself can tell (``VSIGetFileMetadata(path, "HEADERS")`` after
``VSICurlPartialClearCache``), the object's ``ETag``, ``Content-Length`` and
``Last-Modified`` are asked with one HEAD request at most every
``LEAFMAP_TILES_REMOTE_RASTER_TTL`` seconds (default :data:`DEFAULT_TTL`) per object
and process.  :func:`leafmap_tiles.render.engine.file_signature` returns that
version, which is part of every reader, description, statistics and tile ETag
cache key: a new version is read from fresh bytes (GDAL's cache of that object was
dropped by the HEAD) within the TTL.  Between two checks the last known version is
used; a failed check (endpoint down, access refused) keeps the last known version,
and the read itself then reports the error.  Other ``http(s)://`` URLs are not
checked (their tiles are revalidated by the browser, but the server's readers are
kept).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

log = logging.getLogger("leafmap_tiles.render")

#: Seconds between two checks of one S3 object (``LEAFMAP_TILES_REMOTE_RASTER_TTL``).
DEFAULT_TTL = 10.0
#: Objects whose version is remembered (least recently checked forgotten first).
MAX_OBJECTS = 4096


class RemoteVersions:
    """``(etag, size, last-modified)`` of S3 objects, each asked at most every ``ttl``
    seconds (see the module docstring).

    Args:
        ttl: seconds between two HEAD requests for one object; default
            ``LEAFMAP_TILES_REMOTE_RASTER_TTL`` (read when first needed).
        clock: monotonic clock in seconds (tests pass their own).
    """

    def __init__(self, ttl: float | None = None, clock=time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, tuple[float, tuple | None]] = OrderedDict()
        self._busy: set[str] = set()
        #: HEAD requests made (a counter for tests)
        self.checks = 0

    @property
    def ttl(self) -> float:
        """Seconds between two checks of one object."""
        if self._ttl is None:
            from leafmap_tiles import settings

            self._ttl = settings.current().remote_raster_ttl
        return self._ttl

    def _head(self, path: str) -> tuple | None:
        from leafmap_tiles import _gdal, s3

        vsi = s3.vsi_path(path)
        with _gdal.thread_options(s3.gdal_options()):
            headers = _gdal.vsi_headers(vsi)
        # GDAL's headers may be those of its first ranged GET: the object's size is then
        # the total of Content-Range ("bytes 0-16383/54538"), not Content-Length
        total = (headers.get("content-range") or "").rpartition("/")[2].strip()
        size = total if total.isdigit() else headers.get("content-length")
        return (headers.get("etag"), size, headers.get("last-modified"))

    @staticmethod
    def _forget_failure(path: str) -> None:
        """After a failed check: GDAL keeps the failure (cached for the file, and as the
        thread's last error), and the read that follows would report GDAL's short
        summary (``HTTP response code: 403``) instead of S3's own reason; forget both."""
        from leafmap_tiles import _gdal, s3

        try:
            _gdal.clear_path_cache(s3.vsi_path(path))
        except Exception:
            pass
        _gdal.reset_error()
        try:
            _gdal.lib().VSIErrorReset()
        except Exception:
            pass

    def signature(self, path: str) -> tuple | None:
        """The version of the object at ``path`` as last checked (checked now when
        older than the TTL); None when it could never be asked.  Never raises."""
        now = self._clock()
        with self._lock:
            hit = self._seen.get(path)
            if hit is not None and (now - hit[0] < self.ttl or path in self._busy):
                return hit[1]  # fresh, or another thread is asking right now
            self._busy.add(path)
        try:
            self.checks += 1
            version: tuple | None = self._head(path)
        except Exception as exc:  # the read reports the failure with its own error
            log.debug("%s: version check failed: %s", path, exc)
            version = hit[1] if hit is not None else None
            self._forget_failure(path)
        finally:
            with self._lock:
                self._busy.discard(path)
        with self._lock:
            self._seen[path] = (self._clock(), version)
            self._seen.move_to_end(path)
            while len(self._seen) > MAX_OBJECTS:
                self._seen.popitem(last=False)
        if hit is not None and hit[1] is not None and version != hit[1]:
            log.info("%s changed (ETag %s -> %s): read again", path, hit[1][0], version and version[0])
        return version

    def forget(self, path: str | None = None) -> None:
        """Ask again on next use (one object, or all of them)."""
        with self._lock:
            if path is None:
                self._seen.clear()
            else:
                self._seen.pop(path, None)


#: The versions of this process (the tile servers' engines share it).
VERSIONS = RemoteVersions()
