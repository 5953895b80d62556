"""How ``leafmap-tiles serve --processes 2`` spreads connections over its workers.

    .venv/bin/python benchmarks/connections.py [--runs 5] [--bursts 100]

Starts ``serve --processes 2`` as ``tiles.py`` does (``benchmarks/tiles.py``'s key store
of the ndvi file), then

1. ``--runs`` times ``tiles.py``'s ndvi load (500 distinct tiles, 16 keep-alive
   clients), printing tiles/s, each worker's CPU seconds and each worker's share of the
   16 connections (``ss -tnp`` half a second into the run);
2. ``--bursts`` bursts of 16 connections all opened before the first request, each
   then asking ``/health`` (which answers its worker's pid), printing how many bursts
   had each smallest share (0: the whole burst on one worker).

Prints the number of sockets listening on the port and a ``BENCH_JSON`` line.  No
targets: this is the check behind benchmarks/README.md, "serve --processes 2:
connections per worker".
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import tiles as T  # noqa: E402


def ss(*args: str) -> str:
    return subprocess.run(["ss", "-H", *args], capture_output=True, text=True).stdout


async def _burst(port: int, n: int) -> list[int]:
    conns = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in range(n)))

    async def one(reader, writer) -> int:
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
        pid = json.loads(await reader.readexactly(length))["pid"]
        writer.close()
        return pid

    return list(await asyncio.gather(*(one(r, w) for r, w in conns)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bursts", type=int, default=100)
    args = ap.parse_args()
    import psutil

    files = T.all_files(["ndvi"])
    f = files["ndvi"]
    warm = C.choose_tiles(f["path"], T.N_WARM, 20240601)
    tiles = C.choose_tiles(f["path"], 500, 20240601 + 100, exclude=set(warm))
    srv = T.OursServe(files)
    pid = srv.start()
    try:
        workers = [c for c in psutil.Process(pid).children() if "spawn_main" in " ".join(c.cmdline())]
        listening = len(ss("-tln", f"( sport = :{srv.port} )").splitlines())
        print(f"# {len(workers)} workers, {listening} listening socket(s) on port {srv.port}", flush=True)
        paths = [srv.tile_path("ndvi", *t) for t in tiles]
        C.load("127.0.0.1", srv.port, [srv.tile_path("ndvi", *t) for t in warm], T.CONCURRENCY)
        runs = []
        for i in range(args.runs):
            cpu0 = [w.cpu_times() for w in workers]
            conns: dict[str, int] = {}

            def sample():
                time.sleep(0.5)
                out = ss("-tnp", "state", "established", f"( sport = :{srv.port} )")
                conns.update(collections.Counter(re.findall(r"pid=(\d+)", out)))

            th = threading.Thread(target=sample)
            th.start()
            r = C.load("127.0.0.1", srv.port, paths, T.CONCURRENCY)
            th.join()
            cpu = [round(sum(w.cpu_times()[:2]) - sum(c[:2]), 2) for w, c in zip(workers, cpu0)]
            share = [conns.get(str(w.pid), 0) for w in workers]
            runs.append({"tiles_per_s": round(r.tiles_per_s(), 1), "worker_cpu_s": cpu, "connections": share})
            print(f"run {i}: {r.tiles_per_s():.0f} tiles/s, worker CPU s {cpu}, connections {share}", flush=True)
        smallest = collections.Counter()
        for _ in range(args.bursts):
            pids = collections.Counter(asyncio.run(_burst(srv.port, T.CONCURRENCY)))
            smallest[min(pids.get(w.pid, 0) for w in workers)] += 1
        print(f"bursts of {T.CONCURRENCY}: smallest share per worker -> bursts {dict(sorted(smallest.items()))}")
        C.emit_json("connections", {"listening_sockets": listening, "runs": runs,
                                    "bursts_by_smallest_share": dict(sorted(smallest.items())),
                                    "machine": C.machine()})
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
