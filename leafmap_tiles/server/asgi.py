"""ASGI app factory of ``leafmap-tiles serve``, for uvicorn or gunicorn worker processes.

One worker process is one :func:`create_app` call; it holds nothing that another
worker or another machine needs (the datasets and their metadata are in the key
store; each worker opens its own readers and database connections), so any number
of workers, on any number of machines, serve one PostgreSQL or MySQL key store::

    LEAFMAP_TILES_DATABASE=postgresql://user:pw@db-host/tiles \\
        uvicorn --factory leafmap_tiles.server.asgi:create_app --host 0.0.0.0 --port 8000 --workers 2

``leafmap-tiles serve -d DB --processes N`` does the same with uvicorn's supervisor
(it restarts a worker that dies).  Settings, each an argument of :func:`create_app`
or else an environment variable:

``LEAFMAP_TILES_DATABASE``
    path of a SQLite key store, or a ``postgresql://`` / ``mysql://`` URL (required).
``LEAFMAP_TILES_WORKERS``
    tile render threads per process (default ``max(4, 3 * cores)``).
``GDAL_CACHEMAX``
    GDAL's block cache per process, in MB (default :data:`gdalenv.DEFAULTS`).
``MALLOC_ARENA_MAX``
    glibc malloc arenas per process (default :data:`gdalenv.MALLOC_ARENAS`).
``LEAFMAP_TILES_LOG_LEVEL``
    level of the ``leafmap_tiles`` log lines on stderr (default ``warning``).

Changes to the store (datasets ingested, deleted or replaced) reach every worker: a
dataset is looked up in the store when it is first asked for, and a worker keeps
what it looked up for at most :data:`~leafmap_tiles.server.terracotta_api.METADATA_TTL`
seconds.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from starlette.applications import Starlette

if TYPE_CHECKING:
    from leafmap_tiles.store.base import KeyStore

DATABASE_ENV = "LEAFMAP_TILES_DATABASE"
LOG_LEVEL_ENV = "LEAFMAP_TILES_LOG_LEVEL"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def configure_logging(level: str | None = None) -> None:
    """One stderr handler for the ``leafmap_tiles`` logger of this server process
    (failures answered 5xx, one line each), at ``level`` (default
    ``$LEAFMAP_TILES_LOG_LEVEL`` or ``"warning"``).  Idempotent.

    Raises:
        StoreError: ``level`` is not one of :data:`LOG_LEVELS`.
    """
    from leafmap_tiles.errors import StoreError

    from leafmap_tiles import settings

    level = (level or settings.current().log_level).lower()
    if level not in LOG_LEVELS:
        raise StoreError(f"log level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    logger = logging.getLogger("leafmap_tiles")
    if not any(getattr(h, "_leafmap_tiles_serve", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(f"%(asctime)s [{os.getpid()}] %(levelname)s %(name)s: %(message)s"))
        handler._leafmap_tiles_serve = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


def warm_imports() -> None:
    """Import what the first tile needs (about 1 s: rio-tiler's readers import xarray
    and pandas) before the process accepts requests, not in its first tiles' time."""
    import pyproj  # noqa: F401  (before any GDAL path-specific option: see leafmap_tiles._gdal)
    from rio_tiler.io import Reader  # noqa: F401


def create_app(
    database: str | KeyStore | None = None,
    *,
    workers: int | None = None,
    gdal_cachemax: int | None = None,
    log_level: str | None = None,
    resampling: str | None = None,
    reprojection: str | None = None,
    processes: int = 1,
) -> Starlette:
    """Terracotta's HTTP API over one key store, for one worker process.

    Sets this process's GDAL defaults and malloc arenas (as the session server does)
    before it opens anything, then returns
    :func:`~leafmap_tiles.server.terracotta_api.create_terracotta_app`.

    Args:
        database: SQLite path or ``postgresql://`` / ``mysql://`` / ``s3://`` URL of
            the key store, or an open :class:`~leafmap_tiles.store.KeyStore`; default
            ``$LEAFMAP_TILES_DATABASE``.
        workers: threads rendering tiles of local files (default
            ``$LEAFMAP_TILES_WORKERS``, else the cores shared out among ``processes``,
            at least 1); tiles of URLs have a pool of their own (3 per core, at least 4).
        gdal_cachemax: GDAL block cache in MB (default ``$GDAL_CACHEMAX``, else 128).
        log_level: ``leafmap_tiles`` log level (default ``$LEAFMAP_TILES_LOG_LEVEL``).
        resampling, reprojection: how tiles are read (default
            ``$LEAFMAP_TILES_RESAMPLING`` / ``$LEAFMAP_TILES_REPROJECTION``, else
            Terracotta's ``average`` / ``bilinear``).
        processes: worker processes of the server on this machine, for the default
            of ``workers`` (``serve --processes N`` passes N; uvicorn's and gunicorn's
            ``--workers N`` are not known here: set ``LEAFMAP_TILES_WORKERS`` there).

    Raises:
        StoreError: no database given, a missing or foreign database, a bad setting.
    """
    from leafmap_tiles.errors import StoreError

    from leafmap_tiles import settings

    if database is None or database == "":
        database = settings.current().database
    if not database:
        raise StoreError(f"no key store: pass create_app(database) or set {DATABASE_ENV} "
                         "(a SQLite path, or a postgresql:// / mysql:// URL)")
    if gdal_cachemax is not None and int(gdal_cachemax) < 1:
        raise StoreError(f"GDAL block cache must be at least 1 (MB), got {gdal_cachemax}")
    if workers is not None and int(workers) < 1:
        raise StoreError(f"render threads must be at least 1, got {workers}")
    configure_logging(log_level)
    from leafmap_tiles.server import gdalenv

    gdalenv.set_defaults(gdal_cachemax)
    gdalenv.limit_malloc_arenas()
    gdalenv.skip_unused_imports()
    warm_imports()
    from leafmap_tiles.render.reader import memoize_default_transforms
    from leafmap_tiles.render.style import numexpr_on_calling_thread

    memoize_default_transforms()  # this worker process's rio-tiler
    numexpr_on_calling_thread()  # the server's threads evaluate side by side
    from leafmap_tiles.server.terracotta_api import create_terracotta_app

    return create_terracotta_app(database, workers=workers, resampling=resampling, reprojection=reprojection,
                                 processes=processes)
