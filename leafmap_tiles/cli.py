"""``leafmap-tiles`` command line: ``ingest``, ``optimize-rasters``, ``serve`` and ``connect``.

Each subcommand is a pair of functions: ``_add_<name>(subparsers)`` declares its
arguments, ``_run_<name>(args)`` does the work and returns the exit code.  Errors
the user can fix print one line ``leafmap-tiles <cmd>: error: ...`` on stderr and
exit with status 2 (bad arguments, pattern or database) or 1 (a raster failed).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from collections.abc import Sequence

from . import _paths
from .errors import LeafmapTilesError, S3ConfigurationError, SettingsError, StoreError

#: ``serve --processes N`` refuses N above this many per core (each process is a whole
#: render stack of ~300 MiB; past the cores they only queue for the CPU).
MAX_PROCESSES_PER_CORE = 8


# ---------------------------------------------------------------------------- ingest


def _add_ingest(subparsers) -> None:
    p = subparsers.add_parser(
        "ingest",
        help="ingest raster files matching a pattern into a Terracotta database",
        description=(
            "Ingest raster files into a (new or existing) Terracotta key store. "
            "PATTERN names the files and their keys, e.g. 'rasters/{sensor}/{date}_{band}{}.tif': "
            "{name} is a key matching letters and digits only, {} matches anything within a "
            "file or folder name, a repeated {name} must match the same value. "
            "Existing datasets are overwritten unless --skip-existing is given."
        ),
    )
    p.add_argument("pattern", metavar="PATTERN", help="raster pattern with {key} placeholders")
    p.add_argument("-o", "--output", "--output-file", dest="output", required=True, metavar="DB",
                   help="SQLite file, or postgresql:// / mysql:// URL")
    p.add_argument("--rgb-key", metavar="K", help="key to put last (Terracotta's RGB key)")
    p.add_argument("--skip-metadata", action="store_true",
                   help="do not compute metadata now (it is computed on first request)")
    p.add_argument("--skip-existing", action="store_true", help="leave existing datasets untouched")
    p.add_argument("--key-descriptions", metavar="JSON",
                   help='descriptions of keys for a new database: a JSON object such as '
                        '\'{"date": "acquisition date"}\' or the path of a JSON file')
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")


def _load_key_descriptions(text: str | None) -> dict[str, str] | None:
    if text is None:
        return None
    source = "--key-descriptions"
    if os.path.isfile(text):
        source = text
        with open(text, encoding="utf-8") as fh:
            text = fh.read()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StoreError(f"{source} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise StoreError(f"{source} must be a JSON object of strings, e.g. '{{\"date\": \"acquisition date\"}}'")
    return value


def _run_ingest(args) -> int:
    from . import store

    descriptions = _load_key_descriptions(args.key_descriptions)
    ks = store.open(args.output)
    result = ks.ingest(
        args.pattern,
        rgb_key=args.rgb_key,
        skip_metadata=args.skip_metadata,
        skip_existing=args.skip_existing,
        key_descriptions=descriptions,
        progress=not args.quiet,
    )
    if not args.quiet:
        print(f"Ingested {len(result.inserted)} file(s) into {ks.path} (keys: {', '.join(result.keys)})")
        if result.skipped_existing:
            print(f"Skipped {len(result.skipped_existing)} existing dataset(s)")
    if result.unmatched:
        print(
            f"{len(result.unmatched)} file(s) matched nothing: found by the pattern's wildcards "
            "but their names do not fit it (key values are letters and digits only, and a key "
            "repeated in the pattern must have the same value each time):",
            file=sys.stderr,
        )
        from .store.patterns import describe_unmatched

        print(describe_unmatched(result.unmatched, result.reasons), file=sys.stderr)
    elif not args.quiet:
        print("Every file found by the pattern was matched")
    return 0


# ---------------------------------------------------------------------------- optimize-rasters


def _add_optimize_rasters(subparsers) -> None:
    p = subparsers.add_parser(
        "optimize-rasters",
        help="convert rasters to cloud-optimized GeoTIFFs (rio-cogeo)",
        description="Write a cloud-optimized GeoTIFF (tiled, compressed, with overviews) "
                    "of each input raster into OUTPUT_FOLDER, under the same file name.",
    )
    p.add_argument("rasters", nargs="+", metavar="RASTER", help="raster files or glob patterns")
    p.add_argument("-o", "--output-folder", required=True, help="folder for the optimized files")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--resampling-method", default="average",
                   choices=["nearest", "bilinear", "cubic", "average", "mode"],
                   help="resampling for overviews (and reprojection) [default: average]")
    p.add_argument("--reproject", action="store_true", help="reproject to Web Mercator (EPSG:3857) first")
    p.add_argument("--compression", default="deflate", choices=["deflate", "lzw", "zstd", "raw"],
                   help="compression [default: deflate]")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _run_optimize_rasters(args) -> int:
    from rio_cogeo.cogeo import cog_translate
    from rio_cogeo.profiles import cog_profiles
    from tqdm import tqdm

    files: list[str] = []
    from . import _paths

    for item in args.rasters:
        item = _paths.from_file_url(item)  # a file:// URL is the local file (or pattern) it names
        matches = sorted(glob.glob(item)) if glob.has_magic(item) else [item]
        if not matches:
            raise StoreError(f"no file matches {item!r}")
        files.extend(matches)
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise StoreError(f"not a file: {', '.join(missing)}")
    names = [os.path.basename(f) for f in files]
    if len(set(names)) != len(names):
        raise StoreError("input files must have distinct file names (outputs share one folder)")
    os.makedirs(args.output_folder, exist_ok=True)

    written = skipped = 0
    for src in tqdm(files, desc="Optimizing rasters", unit="file", disable=args.quiet):
        dst = os.path.join(args.output_folder, os.path.basename(src))
        if os.path.abspath(dst) == os.path.abspath(src):
            raise StoreError(f"output would overwrite its input {src}; choose another folder")
        if os.path.exists(dst) and not args.overwrite:
            skipped += 1
            continue
        profile = dict(cog_profiles.get(args.compression), blockxsize=512, blockysize=512)
        cog_translate(
            src,
            dst,
            profile,
            overview_resampling=args.resampling_method,
            resampling=args.resampling_method,
            web_optimized=args.reproject,
            in_memory=False,
            quiet=True,
            config={"GDAL_TIFF_INTERNAL_MASK": True, "GDAL_TIFF_OVR_BLOCKSIZE": "512"},
        )
        written += 1
    if not args.quiet:
        print(f"Wrote {written} optimized file(s) to {args.output_folder}"
              + (f"; skipped {skipped} existing (use --overwrite)" if skipped else ""))
    return 0


# ---------------------------------------------------------------------------- serve


def _add_serve(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve a key store through Terracotta's HTTP API",
        description=(
            "Serve the datasets of a Terracotta key store (-d) or of the raster files matching a "
            "pattern (-r, ingested into a temporary database; metadata computed on first use) "
            "through Terracotta's HTTP API (/keys, /datasets, /metadata, /singleband, /rgb, "
            "/compute, /colormap, /apidoc). Only datasets listed in the store are served. "
            "Binds 127.0.0.1 unless --host says otherwise."
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("-d", "--database", metavar="DB", help="SQLite file, or postgresql:// / mysql:// URL")
    src.add_argument("-r", "--raster-pattern", metavar="PATTERN", help="raster pattern with {key} placeholders")
    p.add_argument("--rgb-key", metavar="K", help="with -r: key to put last (the key /rgb varies)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind [default: 127.0.0.1]; 0.0.0.0 exposes the server to the network")
    p.add_argument("--port", type=int, default=None,
                   help="port [default: first free port from 5000 to 5099; 0 for any free port]")
    p.add_argument("--processes", type=int, default=1, metavar="N",
                   help="worker processes sharing the port, on Linux each on a socket of its own "
                        "(uvicorn's supervisor restarts one that dies) [default: 1]; each has its own "
                        "threads, readers and caches")
    p.add_argument("--workers", type=int, default=None,
                   help="threads per process rendering tiles of local files [default: $LEAFMAP_TILES_WORKERS, "
                        "else cores / processes, at least 1]; tiles of URLs have their own pool (3 per core, at least 4)")
    p.add_argument("--gdal-cachemax", type=int, default=None, metavar="MB",
                   help="GDAL block cache per process in MB [default: $GDAL_CACHEMAX, else "
                        f"{_default_cachemax()}, as the session server]")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--resampling", default=None, choices=["nearest", "linear", "bilinear", "cubic", "average"],
                   help="resampling of tiles (Terracotta's RESAMPLING_METHOD) [default: $LEAFMAP_TILES_RESAMPLING, "
                        "else average, as Terracotta]; categories are always read with nearest")
    p.add_argument("--reprojection", default=None, choices=["nearest", "linear", "bilinear", "cubic"],
                   help="warp of tiles to Web Mercator (Terracotta's REPROJECTION_METHOD) "
                        "[default: $LEAFMAP_TILES_REPROJECTION, else linear, as Terracotta]")


def _default_cachemax() -> str:
    from .server.gdalenv import DEFAULTS

    return DEFAULTS["GDAL_CACHEMAX"]


def _listener(host: str, port: int, reuse_port: bool = False):
    """A socket listening on ``host:port`` (OSError if it cannot bind)."""
    import socket

    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections only then
    # (see leafmap_tiles/server/__main__.py)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM,
                         socket.IPPROTO_TCP)
    try:
        # a restarted server takes its port back at once (closed connections of the old
        # one in TIME-WAIT blocked it ~60 s); on Linux a port another server listens on
        # stays refused (as uvicorn's own bind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def _bind(host: str, candidates):
    """A listening socket on the first port of ``candidates`` that is free, or None.
    Raises :class:`StoreError` for a failure other than a port in use (an address
    this machine does not have, too many open files)."""
    for port in candidates:
        try:
            return _listener(host, port)
        except OSError as exc:
            _unless_in_use(exc, host, port)
    return None


def _unless_in_use(exc: OSError, host: str, port: int) -> None:
    """Return for "address in use" (try the next port); raise the others as they are."""
    import errno

    if exc.errno != errno.EADDRINUSE:
        raise StoreError(f"cannot bind {host}:{port}: {exc.strerror or exc}") from None


def _spreads_connections() -> bool:
    """Whether the kernel spreads new connections over several sockets bound to one
    port with SO_REUSEPORT (Linux; BSD's and macOS's SO_REUSEPORT does not balance)."""
    import socket

    if not (sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")):
        return False
    with socket.socket() as sock:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        except OSError:  # e.g. an emulated kernel without it
            return False
    return True


def _bind_workers(host: str, candidates, processes: int):
    """The listening sockets of ``serve --processes N`` on the first port of
    ``candidates`` that is free, or None: N sockets bound with SO_REUSEPORT to that port
    (one per worker: the kernel hashes each new connection to one of them), or, where
    the kernel does not spread connections so, one socket that the workers share."""
    if processes == 1 or not _spreads_connections():
        sock = _bind(host, candidates)
        return None if sock is None else [sock]
    for port in candidates:
        socks: list = []
        try:
            if port:
                # free? A SO_REUSEPORT bind would join the sockets of another server of
                # this user listening there; a plain one is refused by any listener
                # (port 0: the kernel never picks a port that SO_REUSEPORT sockets hold)
                _listener(host, port).close()
            socks.append(_listener(host, port, reuse_port=True))
            port = socks[0].getsockname()[1]  # port 0: the others on the port it got
            while len(socks) < processes:
                socks.append(_listener(host, port, reuse_port=True))
        except OSError as exc:  # in use (or taken between the check and the binds)
            for sock in socks:
                sock.close()
            _unless_in_use(exc, host, port)
            continue
        return socks
    return None


def _worker_app(database: str, workers: int | None, gdal_cachemax: int | None, log_level: str,
                remote_dir: str | None = None, methods: tuple = (None, None), processes: int = 1):
    """App of one ``serve --processes N`` worker (run by uvicorn's supervisor in a
    spawned process): exits when the supervisor is gone, and stops the supervisor
    from restarting it over and over when the store cannot be opened.  An S3
    database's local copy goes into ``remote_dir``, the supervisor's folder, which the
    supervisor removes when it stops (also the copy of a worker that was killed)."""
    import signal

    from .server.__main__ import watch_parent
    from .server.asgi import create_app

    watch_parent(os.getppid())  # a killed supervisor leaves no worker behind
    try:
        # uvicorn re-raises SIGTERM to this handler once it has shut down: an exit, so
        # that the worker's exit handlers run (they remove its copy of an S3 database);
        # Python's default would end the process at once
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    except ValueError:  # not the main thread: left to uvicorn
        pass
    try:
        store_arg: object = database
        if remote_dir is not None and _paths.is_s3_url(database):
            from .store.remote import RemoteSQLiteStore

            store_arg = RemoteSQLiteStore(database, cache_dir=remote_dir)
        return create_app(store_arg, workers=workers, gdal_cachemax=gdal_cachemax, log_level=log_level,
                          resampling=methods[0], reprojection=methods[1], processes=processes)
    except LeafmapTilesError as exc:
        from uvicorn.config import STARTUP_FAILURE

        print(f"leafmap-tiles serve: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(STARTUP_FAILURE)


def _run_serve(args) -> int:
    import functools

    import uvicorn

    from .server.asgi import configure_logging, warm_imports

    if args.rgb_key and not args.raster_pattern:
        raise StoreError("--rgb-key applies only with -r/--raster-pattern")
    if args.port is not None and not 0 <= args.port <= 65535:
        raise StoreError(f"--port must be between 0 and 65535, got {args.port}")
    if args.gdal_cachemax is not None and args.gdal_cachemax < 1:
        raise StoreError(f"--gdal-cachemax must be at least 1 (MB), got {args.gdal_cachemax}")
    if args.processes < 1:
        raise StoreError(f"--processes must be at least 1, got {args.processes}")
    most = MAX_PROCESSES_PER_CORE * (os.cpu_count() or 1)
    if args.processes > most:
        raise StoreError(f"--processes {args.processes} is more than {most} ({MAX_PROCESSES_PER_CORE} per core "
                         "of this machine): more processes than cores only add memory; run more replicas "
                         "on other machines instead (docs/deploy.md)")
    if args.workers is not None and args.workers < 1:
        raise StoreError(f"--workers must be at least 1, got {args.workers}")
    from . import settings as settings_mod

    settings_mod.tile_methods(args.resampling, args.reprojection)  # a bad $LEAFMAP_TILES_RESAMPLING: now
    from .server import gdalenv

    # this command's own process: the same GDAL and allocator settings as the session server
    gdalenv.set_defaults(args.gdal_cachemax)
    gdalenv.limit_malloc_arenas()
    gdalenv.skip_unused_imports()
    configure_logging(args.log_level)  # failures answered 5xx: one line each (rate limited), on stderr
    app = None
    remote_dir = None  # --processes N with an S3 database: the workers' copies, removed at the end
    if args.processes == 1:
        from .server.terracotta_api import create_terracotta_app

        warm_imports()
        from .render.reader import memoize_default_transforms
        from .render.style import numexpr_on_calling_thread

        memoize_default_transforms()  # this server process's rio-tiler
        numexpr_on_calling_thread()  # the server's threads evaluate side by side
        app = create_terracotta_app(args.database or args.raster_pattern, rgb_key=args.rgb_key, workers=args.workers,
                                    resampling=args.resampling, reprojection=args.reprojection)
        temp_db = app.state.temp_db
    elif args.raster_pattern:  # ingested once here; each worker opens the temporary store
        from .store.terracotta_handlers import open_store

        ks, temp_db = open_store(args.raster_pattern, args.rgb_key)
        database = temp_db
    else:  # checked once here (without the render stack: the supervisor renders nothing)
        from . import store

        ks = store.open(args.database)
        try:
            ks.get_keys()  # fails early for a missing or foreign database
        finally:
            if hasattr(ks, "close") and getattr(ks, "provider", "") == "sqlite-remote":
                ks.close()  # its local copy is removed now; each worker makes its own
            elif hasattr(ks, "dispose"):
                ks.dispose()
        temp_db, database = None, args.database
        if _paths.is_s3_url(args.database):
            import tempfile

            remote_dir = tempfile.mkdtemp(prefix="leafmap_tiles_serve_s3_")
    try:
        socks = _bind_workers(args.host, [args.port] if args.port is not None else range(5000, 5100),
                              args.processes)
        if socks is None:
            tried = args.port if args.port is not None else "5000-5099"
            raise StoreError(f"cannot bind {args.host}:{tried} (port in use?)")
        port = socks[0].getsockname()[1]
        shown = f"[{args.host}]" if ":" in args.host else args.host
        procs = f", {args.processes} processes" if args.processes > 1 else ""
        print(f"Serving Terracotta API on http://{shown}:{port} (API documentation: /apidoc{procs}; "
              "Ctrl+C to stop)", flush=True)
        common = dict(log_level=args.log_level, access_log=False, lifespan="off", timeout_keep_alive=30)
        import signal

        if app is not None:
            from .server.errors import http_protocol

            config = uvicorn.Config(app, http=http_protocol(), **common)
            # uvicorn shuts down on SIGTERM and then re-raises it to the previous handler: make
            # that handler an exit, so that the `finally` below still removes a temporary database
            signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
            uvicorn.Server(config).run(sockets=socks)
        else:
            factory = functools.partial(_worker_app, database, args.workers, args.gdal_cachemax, args.log_level,
                                        remote_dir, (args.resampling, args.reprojection), args.processes)
            config = uvicorn.Config(factory, factory=True, workers=args.processes,
                                    http="leafmap_tiles.server.errors:JSONErrorProtocol", **common)
            if len(socks) > 1:  # a socket per worker (SO_REUSEPORT): the kernel spreads the connections
                from .server.supervisor import Supervisor

                Supervisor(config, socks, functools.partial(_listener, args.host, port, True)).run()
            else:  # one socket that the workers share
                from uvicorn.supervisors import Multiprocess

                Multiprocess(config, sockets=socks).run()  # SIGTERM/SIGINT: stops the workers, returns
    finally:
        if temp_db and os.path.exists(temp_db):
            os.remove(temp_db)
        if remote_dir is not None:
            import shutil

            shutil.rmtree(remote_dir, ignore_errors=True)
    return 0


# ---------------------------------------------------------------------------- connect


def _add_connect(subparsers) -> None:
    p = subparsers.add_parser(
        "connect",
        help="explore a running Terracotta-compatible server in the browser",
        description=(
            "Start a small web explorer of the Terracotta-compatible server at URL "
            "(leafmap-tiles serve, or Terracotta itself; http://host:port or host:port): "
            "keys and datasets listed and filtered, a dataset on a Leaflet map with the "
            "colormap and stretch chosen, RGB from the last key, categories as a legend. "
            "The browser loads tiles from URL itself, so it must reach that server."
        ),
    )
    p.add_argument("url", metavar="URL", help="the server, e.g. http://127.0.0.1:5000 or localhost:5000")
    p.add_argument("--host", default="127.0.0.1", help="address the explorer binds [default: 127.0.0.1]")
    p.add_argument("--port", type=int, default=None,
                   help="port [default: first free port from 5100 to 5199; 0 for any free port]")
    p.add_argument("--no-browser", action="store_true", help="print the address instead of opening a browser")


def _run_connect(args) -> int:
    import uvicorn

    from .server.explorer import create_explorer_app, normalise_url
    from .store.http import RemoteStore

    try:
        target = normalise_url(args.url)
    except ValueError as exc:
        raise StoreError(str(exc)) from None
    if args.port is not None and not 0 <= args.port <= 65535:
        raise StoreError(f"--port must be between 0 and 65535, got {args.port}")
    keys = RemoteStore(target, timeout=10).get_keys()  # fails now if it is not a Terracotta server
    app = create_explorer_app(target)
    sock = _bind(args.host, [args.port] if args.port is not None else range(5100, 5200))
    if sock is None:
        tried = args.port if args.port is not None else "5100-5199"
        raise StoreError(f"cannot bind {args.host}:{tried} (port in use?)")
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    address = f"http://{shown}:{port}/"
    print(f"Exploring {target} (keys: {', '.join(keys) or 'none'}) on {address} (Ctrl+C to stop)", flush=True)
    if not args.no_browser:
        import webbrowser

        webbrowser.open(address)
    from .server.errors import http_protocol

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", http=http_protocol())
    import signal

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    uvicorn.Server(config).run(sockets=[sock])
    return 0


# ---------------------------------------------------------------------------- main

_SUBCOMMANDS = {
    "ingest": (_add_ingest, _run_ingest),
    "optimize-rasters": (_add_optimize_rasters, _run_optimize_rasters),
    "serve": (_add_serve, _run_serve),
    "connect": (_add_connect, _run_connect),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``leafmap-tiles`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="leafmap-tiles", description="leafmap_tiles command line")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add, _ in _SUBCOMMANDS.values():
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 a raster failed, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _, run = _SUBCOMMANDS[args.command]
    try:
        from . import settings

        settings.current()  # a bad LEAFMAP_TILES_* number: one line now, before anything starts
        return run(args)
    except KeyboardInterrupt:
        print(f"leafmap-tiles {args.command}: interrupted", file=sys.stderr)
        return 130
    except (StoreError, SettingsError, S3ConfigurationError) as exc:  # bad input: 2
        print(f"leafmap-tiles {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (LeafmapTilesError, OSError) as exc:
        print(f"leafmap-tiles {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    """``exc``'s message as the one line an error of the command is."""
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
