"""The kernel's tile server as the providers reach it: the handle that a login's
credentials are pushed to, and stopping the servers this process started
(``leafmap.terrascope.cleanup_tile_servers``' name).

The client is imported when used, so a provider works (searching, logging in) in a
process where :mod:`leafmap_tiles.client` cannot be imported.
"""

from __future__ import annotations

from typing import Any

__all__ = ["cleanup_tile_servers", "tile_server"]


def tile_server() -> Any:
    """The kernel's tile server handle (created if needed, but its process is not
    started here): credentials given to it now are pushed when it starts.  None when
    the client cannot be imported or the handle cannot be made."""
    try:
        from leafmap_tiles.client import get_server
    except ImportError:
        return None
    try:
        return get_server(start=True)
    except Exception:  # a dead or half-started server must not break login/logout
        return None


def cleanup_tile_servers() -> int:
    """Stop the tile-server processes that this package started (by their process
    ids, from ``leafmap_tiles.client.running_server_pids()``) and return how many
    were stopped (terminated, killed if still alive after 5 s). No other process is
    touched, whatever its command line."""
    try:
        from leafmap_tiles.client import running_server_pids
    except ImportError:
        return 0
    import psutil

    pids = [int(p) for p in running_server_pids()]
    if not pids:
        return 0
    server = tile_server()
    close = getattr(server, "close", None)
    if close is not None:  # let the client forget its server cleanly
        try:
            close()
        except Exception:
            pass
    procs = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                proc.terminate()
            procs.append(proc)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=5)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    return len(pids)
