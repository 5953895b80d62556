"""Benchmark: COG header reads of ``leafmap_tiles.collections`` at 16 threads vs 1.

Serves one small COG under 40 different URLs from an HTTP server (its own process,
byte ranges supported) that delays every response by 50 ms, reads the 40 headers with
``max_concurrent=16`` and with ``max_concurrent=1``, checks that both give the same
headers, and prints the speed-up and one JSON line::

    python benchmarks/collections_headers.py [--files 40] [--delay 0.05]

The server (``serve()``/``DelayServer``) also answers ``/missing/...`` with 404,
``/text/...`` with a file that is not a TIFF and ``/slow/...`` after ``--slow``
seconds; the collection tests use it for failures.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and
    # the client's delayed ACK would add ~40 ms to every response (nginx sets it too)
    disable_nagle_algorithm = True
    cog_path = ""
    delay = 0.05
    slow = 30.0

    def log_message(self, *args):
        pass

    def _body(self):
        if self.path.startswith("/missing/"):
            return None
        if self.path.startswith("/text/"):
            return b"this is not a TIFF file, only some text\n" * 20
        with open(self.cog_path, "rb") as f:
            return f.read()

    def _answer(self, head: bool):
        time.sleep(self.slow if self.path.startswith("/slow/") else self.delay)
        data = self._body()
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = len(data)
        rng = self.headers.get("Range")
        status, start, end = 200, 0, size - 1
        if rng and rng.startswith("bytes="):
            lo, _, hi = rng[6:].split(",")[0].partition("-")
            if lo:
                start, end = int(lo), min(int(hi) if hi else size - 1, size - 1)
            else:
                start, end = max(0, size - int(hi)), size - 1
            status = 206
        body = data[start:end + 1]
        self.send_response(status)
        self.send_header("Content-Type", "image/tiff")
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def do_GET(self):
        self._answer(False)

    def do_HEAD(self):
        self._answer(True)


def _serve_main(cog: str, delay: float, slow: float) -> None:
    handler = type("H", (_Handler,), {"cog_path": cog, "delay": delay, "slow": slow})
    # listen backlog: the default of 5 drops the SYNs of 16 simultaneous connects on a
    # busy machine, and each dropped SYN costs the client a 1 s retransmission
    server_class = type("Server", (http.server.ThreadingHTTPServer,),
                        {"request_queue_size": 128, "daemon_threads": True})
    server = server_class(("127.0.0.1", 0), handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


class DelayServer:
    """The delaying HTTP server in a child process (GDAL reads in this process)."""

    def __init__(self, cog: str | os.PathLike, delay: float = 0.05, slow: float = 30.0):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve", os.fspath(cog), str(delay), str(slow)],
            stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())
        self.base_url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def make_cog(path: str | os.PathLike, size: int = 1024) -> Path:
    """A small deflate COG (uint16, 256-pixel blocks, overviews) at ``path``."""
    import numpy as np
    import rasterio
    from rasterio.shutil import copy as rio_copy
    from rasterio.transform import from_origin

    path = Path(path)
    tmp = path.with_suffix(".src.tif")
    y, x = np.mgrid[0:size, 0:size]
    data = ((x + y) % 4096).astype("uint16")
    profile = {"driver": "GTiff", "dtype": "uint16", "count": 1, "width": size, "height": size,
               "crs": "EPSG:32631", "transform": from_origin(500000, 5700000, 10, 10), "nodata": 0}
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data, 1)
    rio_copy(tmp, path, driver="COG", BLOCKSIZE=256, COMPRESS="DEFLATE", OVERVIEWS="AUTO")
    tmp.unlink()
    return path


def run(files: int = 40, delay: float = 0.05, concurrency: tuple[int, int] = (16, 1)) -> dict:
    """Read ``files`` headers at each concurrency; returns timings, ratio and headers."""
    from leafmap_tiles.collections.headers import read_headers
    from leafmap_tiles.providers.stac import clear_gdal_http_cache

    with tempfile.TemporaryDirectory() as tmp:
        cog = make_cog(Path(tmp) / "cog.tif")
        with DelayServer(cog, delay=delay) as server:
            results = {}
            for n in concurrency:
                clear_gdal_http_cache()  # nothing cached from the previous round
                # distinct URLs per round: GDAL caches file sizes and blocks per URL
                urls = [f"{server.base_url}/c{n}/{i}.tif" for i in range(files)]
                t0 = time.perf_counter()
                headers = read_headers(urls, max_concurrent=n, progress=False)
                results[n] = (time.perf_counter() - t0, headers)
    hi, lo = concurrency
    out = {
        "benchmark": "collections_headers",
        "files": files,
        "delay_s": delay,
        f"seconds_concurrent_{hi}": round(results[hi][0], 3),
        f"seconds_concurrent_{lo}": round(results[lo][0], 3),
        "ratio": round(results[lo][0] / results[hi][0], 2),
        "failed": sum(1 for n in concurrency for h in results[n][1] if h["error"]),
        "same_headers": results[hi][1] == results[lo][1],
    }
    return {"summary": out, "headers": {n: results[n][1] for n in concurrency}}


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--serve"]:
        _serve_main(argv[1], float(argv[2]), float(argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--delay", type=float, default=0.05)
    args = parser.parse_args(argv)
    summary = run(args.files, args.delay)["summary"]
    print(f"{args.files} headers, {args.delay * 1000:.0f} ms per response: "
          f"max_concurrent=16 {summary['seconds_concurrent_16']:.2f} s, "
          f"max_concurrent=1 {summary['seconds_concurrent_1']:.2f} s, "
          f"ratio {summary['ratio']:.1f}x (target >= 5x)")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
