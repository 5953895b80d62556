"""Shared helpers of the benchmark scripts (not part of the package).

The scripts run with the project's own virtualenv (``.venv``), which has leafmap_tiles;
the peers (titiler, terracotta, localtileserver, leafmap) and rio-cogeo live in the
separate virtualenv made by ``benchmarks/setup_peers.sh`` and are only ever run as
separate processes from its ``bin/``.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# LEAFMAP_TILES_DATA (old name LEAFMAP_TILES_SHARED_DATA; leafmap_tiles.settings reads both)
SHARED_DATA = Path(os.environ.get("LEAFMAP_TILES_DATA") or os.environ.get("LEAFMAP_TILES_SHARED_DATA")
                   or REPO.parent / "shared" / "data")
if not SHARED_DATA.is_dir():
    SHARED_DATA = Path("/work/shared/data")
CACHE = Path(os.environ.get("LEAFMAP_TILES_BENCH_CACHE", Path.home() / ".cache" / "leafmap_tiles_bench"))
PEERS_VENV = Path(os.environ.get("LEAFMAP_TILES_PEERS_VENV", HERE / ".venv-peers"))

def exit_on_sigterm() -> None:
    """Make SIGTERM raise SystemExit, so that the scripts' ``finally`` blocks stop the
    servers they started in their own process groups (Ctrl-C already does)."""
    import signal

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


SRTM = SHARED_DATA / "large" / "srtm90.tif"
NDVI_COG = SHARED_DATA / "large" / "bess_NDVI_maximum_cog.tif"
S2_SIZE = 10980


def peer_bin(name: str) -> str:
    p = PEERS_VENV / "bin" / name
    if not p.exists():
        sys.exit(f"{p} not found: run benchmarks/setup_peers.sh first (or set LEAFMAP_TILES_PEERS_VENV)")
    return str(p)


def machine() -> dict:
    import psutil

    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "loadavg_at_start": [round(v, 2) for v in os.getloadavg()],
    }


# ---------------------------------------------------------------------------- data
def s2_like_cog() -> Path:
    """A 10980 x 10980 uint16 COG on a Sentinel-2 grid (UTM 31N, 10 m, nodata 0), made
    once by mirror-tiling the real SRTM 90 m elevations and converting with rio-cogeo
    (DEFLATE, 512 px blocks, average overviews), cached outside the repository."""
    out = CACHE / "s2like_10980_uint16_cog.tif"
    if out.exists():
        return out
    import rasterio
    from rasterio.transform import from_origin

    CACHE.mkdir(parents=True, exist_ok=True)
    with rasterio.open(SRTM) as src:
        dem = src.read(1)
    tile = np.block([[dem, dem[:, ::-1]], [dem[::-1, :], dem[::-1, ::-1]]])  # seamless mirror tiling
    reps = (-(-S2_SIZE // tile.shape[0]), -(-S2_SIZE // tile.shape[1]))
    arr = np.tile(tile, reps)[:S2_SIZE, :S2_SIZE]
    arr = np.clip(arr, 1, None).astype("uint16")  # 0 is the nodata value, as in Sentinel-2 L2A
    raw = CACHE / "s2like_raw.tif"
    profile = dict(driver="GTiff", width=S2_SIZE, height=S2_SIZE, count=1, dtype="uint16", nodata=0,
                   crs="EPSG:32631", transform=from_origin(600000, 5700000, 10, 10),
                   tiled=True, blockxsize=512, blockysize=512, compress="deflate")
    with rasterio.open(raw, "w", **profile) as dst:
        dst.write(arr, 1)
    tmp = out.with_suffix(".tmp.tif")
    subprocess.run([peer_bin("rio"), "cogeo", "create", str(raw), str(tmp), "--cog-profile", "deflate",
                    "--overview-resampling", "average", "--blocksize", "512", "-q"], check=True)
    subprocess.run([peer_bin("rio"), "cogeo", "validate", str(tmp)], check=True, stdout=subprocess.DEVNULL)
    raw.unlink()
    tmp.rename(out)
    return out


def choose_tiles(path: Path, n: int, seed: int, exclude: set | None = None,
                 weights: dict[int, int] | None = None) -> list[tuple[int, int, int]]:
    """``n`` distinct Web Mercator tiles (z, x, y) over zooms 9-15, each centred near a
    random valid pixel of ``path`` (so that every tile has data), weighted towards the
    zooms a user browses most."""
    import morecantile
    import rasterio
    from rasterio.warp import transform as warp_transform

    weights = weights or {9: 4, 10: 6, 11: 10, 12: 14, 13: 20, 14: 22, 15: 24}
    exclude = exclude or set()
    rng = random.Random(seed)
    tms = morecantile.tms.get("WebMercatorQuad")
    with rasterio.open(path) as ds:
        f = max(1, max(ds.width, ds.height) // 2048)
        a = ds.read(1, out_shape=(ds.height // f, ds.width // f), masked=True)
        valid = ~np.ma.getmaskarray(a)
        if np.issubdtype(a.dtype, np.floating):
            valid &= np.isfinite(a.data)
        rows, cols = np.nonzero(valid)
        sx, sy = ds.width / a.shape[1], ds.height / a.shape[0]
        crs, tr = ds.crs, ds.transform
        zs = sorted(weights)
        out: list[tuple[int, int, int]] = []
        seen = set(exclude)
        tries = 0
        while len(out) < n:
            tries += 1
            if tries > 200 * n:
                raise RuntimeError("cannot find enough distinct tiles with data")
            i = rng.randrange(len(rows))
            r, c = (rows[i] + rng.random()) * sy, (cols[i] + rng.random()) * sx
            x, y = tr * (c, r)
            lon, lat = warp_transform(crs, "EPSG:4326", [x], [y])
            if not -85 < lat[0] < 85:
                continue
            z = rng.choices(zs, [weights[k] for k in zs])[0]
            t = tms.tile(lon[0], lat[0], z)
            key = (t.z, t.x, t.y)
            if key in seen:
                continue
            seen.add(key)
            out.append(key)
    return out


# ------------------------------------------------------------------------- servers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:``port`` (TIME_WAIT sockets of closed client
    connections do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def stop_group(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM the process group of ``proc`` (started with start_new_session=True),
    then SIGKILL what is left."""
    pgid = proc.pid
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + timeout
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if group_alive(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=timeout)


def wait_http(url: str, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status < 500:
                    return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"no answer from {url} within {timeout:.0f} s")


class ProcSampler:
    """Samples the CPU time (user+system) and RSS of a process and its descendants
    every 50 ms; ``cpu_seconds()`` reads the current total, ``peak_rss`` the peak."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.peak_rss = 0
        self._stop = threading.Event()
        self._dead_cpu: dict[int, float] = {}
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _procs(self):
        import psutil

        try:
            return [self.root] + self.root.children(recursive=True)
        except psutil.Error:
            return []

    def cpu_seconds(self) -> float:
        import psutil

        total = 0.0
        for p in self._procs():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def _loop(self) -> None:
        import psutil

        while not self._stop.wait(0.05):
            rss = 0
            for p in self._procs():
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak_rss = max(self.peak_rss, rss)

    def stop(self) -> None:
        self._stop.set()
        self._t.join()


# ----------------------------------------------------------------------- HTTP load
@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)  # seconds, per request
    wall: float = 0.0
    errors: list[str] = field(default_factory=list)
    bytes: int = 0
    bodies: dict = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return len(self.latencies)

    def tiles_per_s(self) -> float:
        return self.ok / self.wall if self.wall else 0.0

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, status = lines[0].split(" ", 2)[:2]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    else:
        body = await reader.read()
        headers["connection"] = "close"
    if version == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
        headers["connection"] = "close"
    return int(status), headers, body


async def _load(host: str, port: int, paths: list[str], concurrency: int, keep: bool) -> LoadResult:
    res = LoadResult()
    queue: asyncio.Queue = asyncio.Queue()
    for p in paths:
        queue.put_nowait(p)

    async def client():
        conn = None
        while True:
            try:
                path = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            for attempt in range(2):
                try:
                    if conn is None:
                        conn = await asyncio.open_connection(host, port)
                    reader, writer = conn
                    t0 = time.perf_counter()
                    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: keep-alive\r\n"
                                 f"Accept: image/png,*/*\r\n\r\n".encode())
                    status, headers, body = await _read_response(reader)
                    dt = time.perf_counter() - t0
                    if headers.get("connection", "").lower() == "close":
                        writer.close()
                        conn = None
                    break
                except (ConnectionError, asyncio.IncompleteReadError) as exc:
                    if conn is not None:
                        conn[1].close()
                    conn = None
                    if attempt == 1:
                        res.errors.append(f"{path}: {exc!r}")
                        status = None
            else:
                continue
            if status is None:
                continue
            if status != 200:
                res.errors.append(f"{path}: HTTP {status} {body[:200]!r}")
                continue
            res.latencies.append(dt)
            res.bytes += len(body)
            if keep:
                res.bodies[path] = body
        if conn is not None:
            conn[1].close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    res.wall = time.perf_counter() - t0
    return res


def load(host: str, port: int, paths: list[str], concurrency: int, keep: bool = False) -> LoadResult:
    """GET every path once, ``concurrency`` keep-alive connections pulling from one
    queue (a connection is reopened when the server closes it)."""
    return asyncio.run(_load(host, port, paths, concurrency, keep))


# ------------------------------------------------------------------------- output
def fmt_table(headers: list[str], rows: list[list]) -> str:
    def cell(v):
        if isinstance(v, float):
            return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.2f}"
        return str(v)

    cells = [[cell(v) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |"
            for r in cells]
    return "\n".join([line, sep, *body])


def verdict(value: float, target: float, higher_is_better: bool) -> str:
    if value != value:  # NaN
        return "FAIL"
    return "PASS" if (value >= target if higher_is_better else value <= target) else "FAIL"


def emit_json(name: str, payload: dict) -> None:
    print("BENCH_JSON " + json.dumps({"benchmark": name, **payload}, sort_keys=True, default=_json_default))


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o))


def median(values):
    return statistics.median(values) if values else float("nan")
