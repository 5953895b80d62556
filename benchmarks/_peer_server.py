"""Runs inside the peers virtualenv: ``python _peer_server.py localtileserver PORT FILE...``.

Starts localtileserver's ``TileClient`` (its defaults: the FastAPI app in a background
server thread of this process) for each file on 127.0.0.1:PORT, prints one JSON line
``{"port", "urls": {file: tile URL template}}`` and serves until terminated.
"""

import json
import signal
import sys
import threading


def main() -> None:
    kind, port, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    if kind != "localtileserver":
        sys.exit(f"unknown peer {kind}")
    from localtileserver import TileClient

    clients, urls = [], {}
    for f in files:
        c = TileClient(f, port=port, host="127.0.0.1")
        clients.append(c)
        urls[f] = c.get_tile_url(vmin=0, vmax=1)  # template; the benchmark sets its own vmin/vmax
    print(json.dumps({"port": port, "urls": urls}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    stop.wait()


if __name__ == "__main__":
    main()
