"""The supervisor of ``leafmap-tiles serve --processes N``: uvicorn's, with one listening
socket per worker.

uvicorn's ``Multiprocess`` hands every worker the same listening socket.  Each worker's
event loop (uvloop/libuv) accepts every pending connection when it wakes up, so a burst
of keep-alive connections (a browser's, a benchmark's 16 clients) often lands entirely on
one worker while the other idles (benchmarks/README.md, "serve --processes 2:
connections per worker").  With ``SO_REUSEPORT`` (Linux) each worker slot has a socket
of its own on the same port and the kernel hashes each new connection to one of them.

:class:`Supervisor` keeps what uvicorn's supervisor does (workers checked every 0.5 s, a
dead or hung one replaced, ``SIGTERM``/``SIGINT`` stop them all, a worker that exits
with ``STARTUP_FAILURE`` stops the supervisor, ``SIGHUP`` restarts them one by one,
``SIGTTIN``/``SIGTTOU`` add or remove one) by running uvicorn's own code on one slot at
a time: worker ``i`` and each of its replacements get ``sockets[i]``.  The supervisor
keeps every socket open, so connections queued on a dead worker's socket wait there for
its replacement.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from uvicorn.config import Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process

logger = logging.getLogger("uvicorn.error")  # where uvicorn's supervisor logs


class Supervisor(Multiprocess):
    """uvicorn's ``Multiprocess`` where worker ``i`` (and its replacements) listens on
    ``sockets[i]`` only (``len(sockets) == config.workers``), e.g. sockets bound with
    ``SO_REUSEPORT`` to one port.  ``add_socket`` makes the socket of a worker added by
    ``SIGTTIN``."""

    def __init__(self, config: Config, sockets: list[socket.socket],
                 add_socket: Callable[[], socket.socket] | None = None) -> None:
        assert len(sockets) == config.workers, (len(sockets), config.workers)
        super().__init__(config, sockets)
        self.add_socket = add_socket

    def _each_slot(self, method: Callable[[], None]) -> None:
        """``method`` (one of uvicorn's) run once per slot, with the supervisor's
        processes and sockets narrowed to that slot's: a worker it starts gets that
        slot's socket and takes that slot's place."""
        processes, sockets = self.processes, self.sockets
        try:
            for idx, sock in enumerate(sockets):
                self.processes, self.sockets = processes[idx:idx + 1], [sock]
                method()
                processes[idx:idx + 1] = self.processes
        finally:
            self.processes, self.sockets = processes, sockets

    def init_processes(self) -> None:
        for sock in self.sockets:
            process = Process(self.config, [sock])
            process.start()
            self.processes.append(process)

    def keep_subprocess_alive(self) -> None:
        self._each_slot(super().keep_subprocess_alive)

    def restart_all(self) -> None:
        self._each_slot(super().restart_all)

    def handle_ttin(self) -> None:
        if self.add_socket is None:
            logger.info("Received SIGTTIN, but workers cannot be added to this supervisor.")
            return
        try:
            sock = self.add_socket()
        except OSError as exc:
            logger.error(f"Received SIGTTIN, but no socket for another worker: {exc}")
            return
        sockets = self.sockets
        self.sockets = [sock]
        try:
            super().handle_ttin()  # starts a worker on the new socket
        finally:
            self.sockets = sockets + self.sockets

    def handle_ttou(self) -> None:
        before = len(self.processes)
        super().handle_ttou()  # stops the last worker (never the only one)
        if len(self.processes) < before:
            self.sockets.pop().close()  # connections still queued on it are refused
