"""Remote sources whose host failed: answer fast while it is down, read again once it
may be back.

GDAL remembers a failed ``/vsicurl/`` request (the file's size, "does not exist")
for the life of the process, so without help a URL that once timed out keeps
failing with "not a raster format" after its host is healthy again.  This module
keeps, per URL, the last network failure (:data:`~leafmap_tiles.gdal_errors.NETWORK_ERRORS`)
and a back-off that doubles from :data:`FIRST_BACKOFF` to :data:`MAX_BACKOFF` seconds:

- during the back-off, :meth:`RemoteHealth.check` raises the remembered error at
  once (tiles of a dead host answer 504/502 within milliseconds instead of each
  waiting for GDAL's timeout and holding a thread);
- when it has passed, one caller is let through as a probe, after GDAL's caches for
  that URL are cleared (``VSICurlPartialClearCache``); the others keep failing fast
  until the probe succeeds (:meth:`ok`) or fails (:meth:`failed`, longer back-off).

An explicit retry by the user (registering the URL again) clears the state and the
caches at once: :meth:`reset`.
"""

from __future__ import annotations

import threading
import time

from leafmap_tiles.errors import LeafmapTilesError

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0


def clear_gdal_cache(url: str) -> None:
    """Forget what GDAL cached for ``url`` (its size, cached blocks, a cached failure),
    keyed by its GDAL name (:func:`leafmap_tiles._paths.to_gdal_path` with ``/vsicurl/``)."""
    from leafmap_tiles import _gdal, _paths

    _gdal.clear_path_cache(_paths.to_gdal_path(url, vsicurl=True))


class _State:
    __slots__ = ("error", "failures", "retry_at", "probe_until")

    def __init__(self) -> None:
        self.error: LeafmapTilesError | None = None
        self.failures = 0
        self.retry_at = 0.0
        self.probe_until = 0.0  # a probe is under way until then


class RemoteHealth:
    """Per-URL memory of network failures with a doubling back-off (thread-safe)."""

    def __init__(self, first: float = FIRST_BACKOFF, maximum: float = MAX_BACKOFF, clock=time.monotonic) -> None:
        self.first = first
        self.maximum = maximum
        self._clock = clock
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()

    def check(self, url: str) -> None:
        """Before reading ``url``: raise the remembered error while its back-off runs
        (or while another thread probes it); otherwise return (after clearing GDAL's
        caches for it when this call is the probe)."""
        if url not in self._states:  # the common case: no lock
            return
        with self._lock:
            st = self._states.get(url)
            if st is None:
                return
            now = self._clock()
            if now < st.probe_until or now < st.retry_at:
                wait = max(0.0, st.retry_at - now, st.probe_until - now)
                err = st.error
                raise type(err)(f"{err} (failed {st.failures} time(s); next retry in {wait:.0f} s)")
            # this caller probes; if its outcome is never reported (e.g. its tile needed no
            # read), another caller may probe once the longest a read can take has passed
            from leafmap_tiles.gdal_errors import http_timeout

            st.probe_until = now + 2 * http_timeout() + 1.0
        clear_gdal_cache(url)

    def failed(self, url: str, error: LeafmapTilesError) -> None:
        """Record a network failure of ``url``; GDAL's caches for it are cleared."""
        with self._lock:
            st = self._states.setdefault(url, _State())
            st.error = error
            st.failures += 1
            st.retry_at = self._clock() + min(self.maximum, self.first * 2 ** (min(st.failures, 30) - 1))
            st.probe_until = 0.0
        clear_gdal_cache(url)

    def ok(self, url: str) -> None:
        """``url`` was read successfully: forget its failures."""
        if url in self._states:
            with self._lock:
                self._states.pop(url, None)

    def reset(self, url: str | None = None) -> None:
        """Forget the failures of ``url`` (all URLs when None) and clear GDAL's caches
        for it, so that the next read really asks the host."""
        with self._lock:
            urls = list(self._states) if url is None else [url]
            for u in urls:
                self._states.pop(u, None)
        if url is not None:
            clear_gdal_cache(url)

    def failing(self) -> list[str]:
        """URLs currently in back-off."""
        return list(self._states)
