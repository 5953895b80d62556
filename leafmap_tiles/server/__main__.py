"""Entry point of the tile-server child process: ``python -m leafmap_tiles.server``.

The parent writes one JSON line to stdin (:class:`leafmap_tiles.protocol.ServerConfig`):
``{"token", "admin_key", "parent_pid", "port", "workers", "sources", "colormaps",
"gdal"}``.  ``sources`` and ``colormaps`` are registrations made before a restart; they
are known before the port accepts requests, so tiles of layers already on a map never
answer 404 in between; ``gdal`` the provider credentials of the kernel.  The child binds
127.0.0.1:``port`` (0 = any free port), prints ``{"port": <bound port>, "pid": <pid>}``
(:class:`~leafmap_tiles.protocol.ServerStarted`) on stdout, and serves
until it is terminated or its parent process dies (watchdog polling the parent pid
every 0.5 s; not ``PR_SET_PDEATHSIG``, which fires when the parent *thread* that
started the child ends).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time

from leafmap_tiles import settings
from leafmap_tiles.protocol import ServerConfig, ServerStarted


def watch_parent(parent_pid: int) -> None:
    """Start a daemon thread that exits this process (``os._exit(0)``) as soon as the
    process ``parent_pid`` is gone or this process was given another parent; polls
    every 0.5 s."""

    def loop() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(0)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:
                pass
            time.sleep(0.5)

    threading.Thread(target=loop, name="parent-watchdog", daemon=True).start()


def main() -> None:
    cfg: ServerConfig = json.loads(sys.stdin.readline())
    watch_parent(int(cfg["parent_pid"]))
    from leafmap_tiles.server import gdalenv

    gdalenv.set_defaults()
    gdalenv.limit_malloc_arenas()
    gdalenv.skip_unused_imports()
    import pyproj  # noqa: F401  (before any GDAL path-specific option: see leafmap_tiles._gdal)
    import uvicorn
    from rio_tiler.io import Reader  # noqa: F401  (import cost paid before the port opens)

    from leafmap_tiles.render.reader import memoize_default_transforms
    from leafmap_tiles.render.style import numexpr_on_calling_thread
    from leafmap_tiles.server.session_params import GdalBody

    memoize_default_transforms()  # this server process's rio-tiler
    numexpr_on_calling_thread()  # the server's threads evaluate side by side

    change = GdalBody.parse(cfg.get("gdal") or {}).change()
    if change["credentials"]:
        gdalenv.apply(change)  # before the sources below are covered by create_app

    from leafmap_tiles.server.app import create_app
    from leafmap_tiles.server.errors import http_protocol

    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when
    # sock.proto is IPPROTO_TCP; without it Nagle holds the response body (uvicorn writes
    # headers and body separately) until the client's delayed ACK, ~40 ms per request.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", int(cfg.get("port") or 0)))
    except OSError:
        sock.bind(("127.0.0.1", 0))  # asked-for port taken: any free port
    sock.listen(2048)
    port = sock.getsockname()[1]
    app = create_app(cfg["token"], cfg["admin_key"], cfg.get("workers"), sources=cfg.get("sources") or [],
                     colormaps=cfg.get("colormaps") or [])
    config = uvicorn.Config(
        app,
        log_level=settings.current().log_level,
        access_log=False,
        timeout_keep_alive=30,
        lifespan="off",
        http=http_protocol(),  # a request uvicorn cannot parse gets a JSON 400 too
    )
    server = uvicorn.Server(config)
    started: ServerStarted = {"port": port, "pid": os.getpid()}
    print(json.dumps(started), flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
