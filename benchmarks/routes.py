"""What the browser's route costs: the same tiles of our tile server fetched directly
(``http://127.0.0.1:<port>/...``) and through a jupyter-server's proxy path of our
extension (``<base_url>leafmap-tiles-proxy/<port>/...``, jupyter-loopback's handler),
in the same run.

    .venv/bin/python benchmarks/routes.py [--path FILE] [--rounds 3] [--threads 6]

Each round fetches every tile of two zoom levels of the raster one at a time (p50
latency) and then with ``--threads`` concurrent requests, as a browser does (tiles/s);
the routes alternate from round to round.  Tiles are rendered once before timing (the
server's renders are then warm for both routes), so the numbers are the route's cost
over the same work.  Prints a table and a ``BENCH_JSON`` line with the ratios
proxy/direct (a cost: > 1 for latency, < 1 for tiles/s).  The comm bridge needs a
browser: tests/browser/test_front_ends.py exercises it.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_jupyter_server(root: Path) -> tuple[subprocess.Popen, str, str]:
    """A jupyter-server (with our extension, as installed) on a free port; returns
    (process, URL with base URL, token)."""
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "LEAFMAP_TILES_CLIENT_PREFIX"}
    env.update(JUPYTER_RUNTIME_DIR=str(root / "runtime"), JUPYTER_CONFIG_DIR=str(root / "config"))
    cmd = [str(Path(sys.executable).with_name("jupyter-server")), "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(url + "leafmap-tiles-proxy/__probe__", timeout=2).status_code == 204:
                return proc, url, token
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("jupyter-server with the leafmap_tiles extension did not start")
        time.sleep(0.2)


def tiles_of(bounds, zooms) -> list[tuple[int, int, int]]:
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    return [(t.z, t.x, t.y) for z in zooms for t in tms.tiles(*bounds, zooms=[z])]


def fetch_all(session, urls, threads: int) -> tuple[float, list[float]]:
    def one(u):
        t0 = time.perf_counter()
        r = session.get(u, timeout=60)
        if r.status_code != 200 or r.content[:4] != b"\x89PNG":
            raise RuntimeError(f"{u} answered {r.status_code}")
        return time.perf_counter() - t0

    t0 = time.perf_counter()
    if threads == 1:
        lat = [one(u) for u in urls]
    else:
        with ThreadPoolExecutor(threads) as ex:
            lat = list(ex.map(one, urls))
    return time.perf_counter() - t0, lat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--path", default=str(REPO / "tests" / "data" / "bahamas_rgb.tif"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=6)
    args = ap.parse_args()

    from leafmap_tiles.client import TileServer

    with tempfile.TemporaryDirectory() as tmp:
        proc, jurl, token = start_jupyter_server(Path(tmp))
        server = TileServer(client_prefix="http://127.0.0.1:{port}")
        try:
            reg = server.register(args.path)
            sid, info = reg["id"], reg["info"]
            bounds = info["bounds"]
            z0 = int(info.get("minzoom", 8))
            zooms = [z0 + 1, z0 + 2]
            direct_tpl = server.tile_url(sid, reg.get("style"))
            path_tpl = direct_tpl.split(f"127.0.0.1:{server.port}", 1)[1]
            routes = {"direct": direct_tpl,
                      "proxy": f"{jurl}leafmap-tiles-proxy/{server.port}{path_tpl}"}
            tiles = tiles_of(bounds, zooms)
            urls = {k: [t.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y)) for z, x, y in tiles]
                    for k, t in routes.items()}
            results = {k: {"p50_ms": [], "tiles_per_s": []} for k in routes}
            with requests.Session() as s:
                s.trust_env = False
                s.headers["Authorization"] = f"token {token}"  # the proxy is behind Jupyter's auth
                fetch_all(s, urls["direct"], args.threads)  # render every tile once
                fetch_all(s, urls["proxy"], args.threads)
                for rnd in range(args.rounds):
                    order = list(routes) if rnd % 2 == 0 else list(routes)[::-1]
                    for k in order:
                        _, lat = fetch_all(s, urls[k], 1)
                        results[k]["p50_ms"].append(statistics.median(lat) * 1000)
                        wall, _ = fetch_all(s, urls[k], args.threads)
                        results[k]["tiles_per_s"].append(len(urls[k]) / wall)
        finally:
            server.close()
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)

    summary = {k: {m: statistics.median(v) for m, v in r.items()} for k, r in results.items()}
    print(f"{len(tiles)} tiles of {Path(args.path).name} at z{zooms}, {args.rounds} rounds, {args.threads} threads")
    print(f"{'route':8} {'p50 ms (1 at a time)':>22} {'tiles/s (' + str(args.threads) + ' at a time)':>24}")
    for k, r in summary.items():
        print(f"{k:8} {r['p50_ms']:22.2f} {r['tiles_per_s']:24.1f}")
    ratios = {"p50_proxy_over_direct": summary["proxy"]["p50_ms"] / summary["direct"]["p50_ms"],
              "tiles_per_s_proxy_over_direct": summary["proxy"]["tiles_per_s"] / summary["direct"]["tiles_per_s"]}
    print("BENCH_JSON " + json.dumps({"routes": summary, **ratios, "tiles": len(tiles)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
