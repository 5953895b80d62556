"""Every ``LEAFMAP_TILES_*`` environment variable the package reads, with its default:
the one place that reads them.

=====================================  ===========================  ==========================================
variable                               default                      meaning
=====================================  ===========================  ==========================================
``LEAFMAP_TILES_CACHE_ENTRIES``        256                          entries of each LRU cache of a server
``LEAFMAP_TILES_WORKERS``              per app (below)              threads rendering tiles of local files
``LEAFMAP_TILES_TILE_DEADLINE``        5 (s)                        a local tile answers 503 past this
``LEAFMAP_TILES_REMOTE_TILE_DEADLINE`` 20 (s)                       the same for a tile of a URL
``LEAFMAP_TILES_LOG_LEVEL``            ``warning``                  uvicorn's log level in the session server
``LEAFMAP_TILES_DEBUG``                unset                        set: the session server's stderr is shown
``LEAFMAP_TILES_CLIENT_PREFIX``        unset (detected)             the browser's URL prefix of the server
``LEAFMAP_TILES_WORKSPACE``            ``~/leafmap_tiles_workspace`` folder of the collections' workspaces
``LEAFMAP_TILES_TERRASCOPE_STAC_URL``  ``https://stac.terrascope.be`` Terrascope's STAC API
``LEAFMAP_TILES_TERRASCOPE_HOSTS``     ``services.terrascope.be``   hosts that get the Terrascope login
``LEAFMAP_TILES_EARTH_SEARCH_URL``     Element 84's ``/v1``          Earth Search's STAC API
``LEAFMAP_TILES_MAX_AREA_PIXELS``      50,000,000                   most source pixels an area statistic reads
``LEAFMAP_TILES_REMOTE_DB_CACHE_TTL``  10 (s)                       how often an S3 database is checked
``LEAFMAP_TILES_REMOTE_RASTER_TTL``    10 (s)                       how often an S3 raster's ETag is checked
``LEAFMAP_TILES_DATABASE``             unset                        the key store of the ASGI app factory
``LEAFMAP_TILES_RESAMPLING``           ``average``                  ``serve``'s resampling (Terracotta's
                                                                    ``RESAMPLING_METHOD``)
``LEAFMAP_TILES_REPROJECTION``         ``bilinear``                 ``serve``'s warp (Terracotta's
                                                                    ``REPROJECTION_METHOD``, ``linear``)
``LEAFMAP_TILES_DATA``                 unset                        folder of the shared real rasters (tests,
                                                                    benchmarks); old name
                                                                    ``LEAFMAP_TILES_SHARED_DATA`` still read
=====================================  ===========================  ==========================================

``LEAFMAP_TILES_WORKERS`` is one number for both servers; without it each server
takes the default its work needs (:func:`session_workers`, :func:`serve_local_workers`;
:func:`serve_workers` for ``serve``'s tiles of URLs).

Every number is checked when the settings are read (:meth:`Settings.from_env`): a
value that is not a number, is negative, NaN or infinite, or (for a count) not a whole
number raises :class:`~leafmap_tiles.errors.SettingsError` naming the variable, the
value and what is allowed, before any server starts (``leafmap-tiles`` prints it as
one line and exits with 2; in a notebook the first map raises it).  An empty value is
unset.  The words are checked too: ``LEAFMAP_TILES_LOG_LEVEL`` is one of
:data:`LOG_LEVELS`, ``LEAFMAP_TILES_RESAMPLING`` / ``_REPROJECTION`` a key of
:data:`RESAMPLING_METHODS` / :data:`REPROJECTION_METHODS` (case ignored; before, a
bad log level crashed the session server's child inside uvicorn and the kernel only
saw that no port was reported).  What ``0`` means, per variable:

=====================================  ======================================  ===========================
variable                               allowed                                 ``0`` means
=====================================  ======================================  ===========================
``LEAFMAP_TILES_CACHE_ENTRIES``        whole number >= 0                       the default (256)
``LEAFMAP_TILES_WORKERS``              whole number >= 0                       each server's default
``LEAFMAP_TILES_TILE_DEADLINE``        finite number of seconds >= 0           the default (5)
``LEAFMAP_TILES_REMOTE_TILE_DEADLINE`` finite number of seconds >= 0           the default (20)
``LEAFMAP_TILES_MAX_AREA_PIXELS``      whole number >= 0                       the default (50,000,000)
``LEAFMAP_TILES_REMOTE_DB_CACHE_TTL``  finite number of seconds >= 0           check on every query
``LEAFMAP_TILES_REMOTE_RASTER_TTL``    finite number of seconds >= 0           check on every read
=====================================  ======================================  ===========================

``0`` stays "the default" where a zero would stop the server working (no cache, no
render thread, a deadline every tile misses, no area statistic at all), as it always
was; a TTL of 0 is a real TTL (no caching of the object's version, as the stores'
``cache_ttl=0`` and Terracotta's ``REMOTE_DB_CACHE_TTL=0``).  Before this check a
negative worker count crashed ``leafmap-tiles serve`` with a traceback, a negative
deadline made every tile answer 503, and NaN or text fell back to the default silently.

:func:`current` reads the environment each time it is called (cheap), so a notebook
may set a variable before its first map; each server reads it once, when its app is
made.  The variables of
the test and benchmark set-up (``LEAFMAP_TILES_TEST_PG``, ``_NGINX``, ``_STAC_VENV``,
``_CHROMIUM``, ``_PEERS_VENV``, ...) are read by those scripts, not by the package.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from leafmap_tiles.errors import SettingsError

__all__ = [
    "ALIASES",
    "LOG_LEVELS",
    "NUMBERS",
    "NumberRule",
    "REPROJECTION_METHODS",
    "RESAMPLING_METHODS",
    "Settings",
    "current",
    "parse_number",
    "serve_local_workers",
    "serve_workers",
    "session_workers",
    "tile_methods",
]

#: ``serve``'s resampling names (Terracotta's, ``linear`` = ``bilinear``) -> rasterio's
RESAMPLING_METHODS = {"nearest": "nearest", "linear": "bilinear", "bilinear": "bilinear", "cubic": "cubic",
                      "average": "average"}
#: its reprojection (warp) names -> rasterio's
REPROJECTION_METHODS = {"nearest": "nearest", "linear": "bilinear", "bilinear": "bilinear", "cubic": "cubic"}
#: ``LEAFMAP_TILES_LOG_LEVEL``'s values: uvicorn's and Python logging's level names
#: (the session server's uvicorn, ``leafmap-tiles serve``'s ``leafmap_tiles`` logger).
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")

#: Old names still read (new name -> old names, read when the new one is unset).
ALIASES: dict[str, tuple[str, ...]] = {"LEAFMAP_TILES_DATA": ("LEAFMAP_TILES_SHARED_DATA",)}


@dataclass(frozen=True)
class Settings:
    """The values of the ``LEAFMAP_TILES_*`` variables (see the module's table)."""

    cache_entries: int = 256
    workers: int | None = None
    tile_deadline: float = 5.0
    remote_tile_deadline: float = 20.0
    log_level: str = "warning"
    debug: bool = False
    client_prefix: str | None = None
    workspace: str = "~/leafmap_tiles_workspace"
    terrascope_stac_url: str = "https://stac.terrascope.be"
    terrascope_hosts: tuple[str, ...] = ("services.terrascope.be",)
    earth_search_url: str = "https://earth-search.aws.element84.com/v1"
    data: str | None = None
    max_area_pixels: int = 50_000_000
    remote_db_cache_ttl: float = 10.0
    remote_raster_ttl: float = 10.0
    database: str | None = None
    resampling: str = "average"
    reprojection: str = "bilinear"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings of ``environ`` (default ``os.environ``); an empty value is unset.

        Raises:
            SettingsError: a numeric variable (:data:`NUMBERS`) whose value is not a
                number, negative, NaN/infinite, or not whole where a count is expected;
                a ``LEAFMAP_TILES_LOG_LEVEL`` not in :data:`LOG_LEVELS`, a
                ``LEAFMAP_TILES_RESAMPLING`` / ``_REPROJECTION`` not in
                :data:`RESAMPLING_METHODS` / :data:`REPROJECTION_METHODS` (case ignored).
        """
        env = os.environ if environ is None else environ

        def text(name: str) -> str | None:
            for key in (name, *ALIASES.get(name, ())):
                value = env.get(key)
                if value:
                    return value
            return None

        def number(name: str, default: float | None) -> float | None:
            value = text(name)
            return default if value is None or not value.strip() else parse_number(name, value, default)

        def choice(name: str, what: str, default: str, allowed: Mapping[str, str] | tuple[str, ...]) -> str:
            value = text(name)
            if value is None or not value.strip():
                return default
            word = value.strip().lower()
            if word not in allowed:
                raise SettingsError(f"{name}={value!r}: {what} must be one of {', '.join(allowed)} "
                                    f"(case ignored; empty: the default, {default})")
            return word

        hosts = text("LEAFMAP_TILES_TERRASCOPE_HOSTS")
        workers = number("LEAFMAP_TILES_WORKERS", None)
        return cls(
            cache_entries=int(number("LEAFMAP_TILES_CACHE_ENTRIES", 256) or 256),
            workers=int(workers) if workers else None,
            tile_deadline=float(number("LEAFMAP_TILES_TILE_DEADLINE", 5.0) or 5.0),
            remote_tile_deadline=float(number("LEAFMAP_TILES_REMOTE_TILE_DEADLINE", 20.0) or 20.0),
            log_level=choice("LEAFMAP_TILES_LOG_LEVEL", "the log level", "warning", LOG_LEVELS),
            debug=bool(text("LEAFMAP_TILES_DEBUG")),
            client_prefix=text("LEAFMAP_TILES_CLIENT_PREFIX"),
            workspace=text("LEAFMAP_TILES_WORKSPACE") or "~/leafmap_tiles_workspace",
            terrascope_stac_url=text("LEAFMAP_TILES_TERRASCOPE_STAC_URL") or "https://stac.terrascope.be",
            terrascope_hosts=(tuple(h.strip() for h in hosts.split(",") if h.strip()) if hosts
                              else ("services.terrascope.be",)),
            earth_search_url=(text("LEAFMAP_TILES_EARTH_SEARCH_URL")
                              or "https://earth-search.aws.element84.com/v1"),
            data=text("LEAFMAP_TILES_DATA"),
            max_area_pixels=int(number("LEAFMAP_TILES_MAX_AREA_PIXELS", 50_000_000) or 50_000_000),
            remote_db_cache_ttl=float(number("LEAFMAP_TILES_REMOTE_DB_CACHE_TTL", 10.0) or 0.0),
            remote_raster_ttl=float(number("LEAFMAP_TILES_REMOTE_RASTER_TTL", 10.0) or 0.0),
            database=text("LEAFMAP_TILES_DATABASE"),
            resampling=choice("LEAFMAP_TILES_RESAMPLING", "resampling", "average", RESAMPLING_METHODS),
            reprojection=choice("LEAFMAP_TILES_REPROJECTION", "reprojection", "bilinear", REPROJECTION_METHODS),
        )


@dataclass(frozen=True)
class NumberRule:
    """What one numeric variable allows: ``kind`` (``int``: a whole number, ``float``),
    always >= 0 and finite; ``zero_is_default``: ``0`` gives the default (else ``0``
    is the value); ``unit`` and ``zero`` word the error message."""

    kind: type[int] | type[float]
    zero_is_default: bool
    unit: str
    zero: str


#: Every numeric ``LEAFMAP_TILES_*`` variable and what it allows (see the module's table).
NUMBERS: dict[str, NumberRule] = {
    "LEAFMAP_TILES_CACHE_ENTRIES": NumberRule(int, True, "entries", "the default, 256"),
    "LEAFMAP_TILES_WORKERS": NumberRule(int, True, "threads", "each server's default"),
    "LEAFMAP_TILES_TILE_DEADLINE": NumberRule(float, True, "seconds", "the default, 5"),
    "LEAFMAP_TILES_REMOTE_TILE_DEADLINE": NumberRule(float, True, "seconds", "the default, 20"),
    "LEAFMAP_TILES_MAX_AREA_PIXELS": NumberRule(int, True, "pixels", "the default, 50000000"),
    "LEAFMAP_TILES_REMOTE_DB_CACHE_TTL": NumberRule(float, False, "seconds", "check on every query"),
    "LEAFMAP_TILES_REMOTE_RASTER_TTL": NumberRule(float, False, "seconds", "check on every read"),
}


def parse_number(name: str, value: str, default: float | None) -> float | None:
    """The number that variable ``name`` (a key of :data:`NUMBERS`) holds as text
    ``value``: ``default`` for ``0`` when the variable's 0 means the default.

    Raises:
        SettingsError: not a number (a whole number for a count), negative, NaN or
            infinite; the message names the variable, the value and what is allowed.
    """
    rule = NUMBERS[name]
    whole = rule.kind is int
    allowed = (f"{'a whole number' if whole else 'a finite number'} of {rule.unit} >= 0 "
               f"(0: {rule.zero}; empty: the default)")

    def bad(why: str) -> SettingsError:
        return SettingsError(f"{name}={value!r} {why}: give {allowed}")

    if not value.isascii():  # float() also takes other scripts' digits ("٣" is 3)
        raise bad("is not a number")
    try:
        number = float(value.strip())
    except ValueError:
        raise bad("is not a number") from None
    if not math.isfinite(number):
        raise bad("is not a finite number")
    if number < 0:
        raise bad("is negative")
    if whole:
        try:
            number = int(value.strip())
        except ValueError:
            raise bad("is not a whole number") from None
    if number == 0 and rule.zero_is_default:
        return default
    return number


def tile_methods(resampling: str | None = None, reprojection: str | None = None,
                 settings: Settings | None = None) -> tuple[str, str]:
    """``(resampling, reprojection)`` of ``leafmap-tiles serve``'s tiles, rasterio's
    names: the arguments, else ``LEAFMAP_TILES_RESAMPLING`` / ``_REPROJECTION``, else
    Terracotta's defaults ``("average", "bilinear")``.  Categories (an explicit colour
    map) are always read with ``nearest``.

    Raises:
        StoreError: a name not in :data:`RESAMPLING_METHODS` / :data:`REPROJECTION_METHODS`.
    """
    from leafmap_tiles.errors import StoreError

    s = settings or current()
    res = (resampling or s.resampling).strip().lower()
    rep = (reprojection or s.reprojection).strip().lower()
    if res not in RESAMPLING_METHODS:
        raise StoreError(f"resampling must be one of {', '.join(RESAMPLING_METHODS)}, got {res!r}")
    if rep not in REPROJECTION_METHODS:
        raise StoreError(f"reprojection must be one of {', '.join(REPROJECTION_METHODS)}, got {rep!r}")
    return RESAMPLING_METHODS[res], REPROJECTION_METHODS[rep]


def current() -> Settings:
    """The settings of this process's environment now."""
    return Settings.from_env()


def session_workers(settings: Settings | None = None) -> int:
    """Threads rendering local tiles in the session server: ``LEAFMAP_TILES_WORKERS``,
    else one per core (at least 2).  Such tiles are CPU-bound; more threads only
    contend for the GIL (benchmarks/tiles.py on 2 cores, same file and tiles:
    2 threads ~215 tiles/s, 6 threads ~155).  Remote sources have their own, larger
    pool, as their reads wait on the network."""
    s = settings or current()
    return s.workers or max(2, os.cpu_count() or 2)


def serve_workers(settings: Settings | None = None) -> int:
    """Threads reading tiles in ``leafmap-tiles serve``: ``LEAFMAP_TILES_WORKERS``, else
    ``max(4, 3 * cores)``.  A key store often lists files on network storage or URLs,
    whose reads wait on I/O, so this server keeps more threads than cores (the session
    server keeps such sources on a pool of their own instead)."""
    s = settings or current()
    return s.workers or max(4, 3 * (os.cpu_count() or 2))


def serve_local_workers(processes: int = 1, settings: Settings | None = None) -> int:
    """Threads rendering tiles of local files in each ``leafmap-tiles serve`` process:
    ``LEAFMAP_TILES_WORKERS``, else the cores shared out among the ``processes`` worker
    processes (at least 1).  Such tiles are CPU-bound: more threads than cores only
    contend for the GIL and GDAL's locks (benchmarks/README.md, ``serve --processes 2``
    on 2 cores: 12.4 ms CPU per s2 tile with 1 thread per process, 16.5 with 2, 17.5
    with 6).  Tiles of URLs have their own pool of :func:`serve_workers` threads."""
    s = settings or current()
    return s.workers or max(1, (os.cpu_count() or 2) // max(1, int(processes)))
