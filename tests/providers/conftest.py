"""Fixtures for the provider tests: real servers on 127.0.0.1, no internet.

* ``ndvi_assets``: Terrascope-encoded NDVI COGs computed from the NAIP rasters in
  ``shared/data/naip`` (NDVI = (b4 - b1) / (b4 + b1); DN = round((NDVI + 0.08) / 0.004)
  clipped to 0..250, nodata 255), written once per session into a temporary folder.
* ``asset_server``: Debian's nginx serving those files behind HTTP Basic auth (with
  Range support), run as a foreground child with its own config
  (``bash scripts/setup_nginx.sh`` installs it).
* ``recording_server``: a second, unprotected HTTP server (Python ``http.server``
  with Range support) that records every ``Authorization`` header it receives.
* ``stac_api``: stac-fastapi-static (a real STAC API with CQL2 filter and paging)
  serving a static catalog of Terrascope-shaped items whose NDVI assets point at
  ``asset_server``; it runs from its own virtualenv ``.venv-stac``
  (``bash scripts/setup_stac_server.sh``).
* ``stac_api_without_filter``: the same API behind a proxy that advertises no Filter
  extension and rejects ``filter`` (a server without CQL2 support).

``CATALOG`` below is the single description of what the STAC server holds; the tests
compute their expectations from it, never from the code under test.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import free_port

from terrascope_catalog import (  # noqa: F401  (re-exported for the tests)
    CATALOG, COLLECTION, NAIP_DIR, NODATA, OFFSET, PASSWORD, REPO, SCALE,
    SERVER_PAGE_SIZE, USERNAME, ItemSpec, encode_ndvi, naip_path,
)
STAC_VENV = Path(os.environ.get("LEAFMAP_TILES_STAC_VENV", REPO / ".venv-stac"))
NGINX = (os.environ.get("LEAFMAP_TILES_NGINX") or shutil.which("nginx")
         or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None))

def _write_cog(path: Path, spec: ItemSpec) -> dict:
    import rasterio
    from rasterio.shutil import copy as rio_copy
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window

    with rasterio.open(naip_path(spec.naip_date)) as src:
        half = src.width // 2
        if spec.part == "west":
            window = Window(0, 0, half, src.height)
        elif spec.part == "east":
            window = Window(half, 0, src.width - half, src.height)
        else:
            window = Window(0, 0, src.width, src.height)
        b1 = src.read(1, window=window)
        b4 = src.read(4, window=window)
        valid = src.read_masks(1, window=window) > 0
        transform = src.window_transform(window)
        crs = src.crs
    data = encode_ndvi(b1, b4, valid)
    profile = {
        "driver": "GTiff", "dtype": "uint8", "count": 1, "width": data.shape[1],
        "height": data.shape[0], "crs": crs, "transform": transform, "nodata": NODATA,
    }
    tmp = path.with_suffix(".tmp.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data, 1)
        dst.update_tags(1, scale_factor=str(SCALE), add_offset=str(OFFSET))
    # 64 px blocks: the bundled 256 px NAIP windows still get overviews (a real COG layout)
    rio_copy(tmp, path, driver="COG", BLOCKSIZE=64, COMPRESS="DEFLATE",
             OVERVIEWS="AUTO", OVERVIEW_RESAMPLING="NEAREST")
    tmp.unlink()
    with rasterio.open(path) as ds:
        bounds = ds.bounds
        bbox = list(transform_bounds(ds.crs, "EPSG:4326", *bounds, densify_pts=21))
        return {
            "bbox": bbox,
            "shape": [ds.height, ds.width],
            "transform": list(ds.transform)[:6],
            "epsg": ds.crs.to_epsg(),
            "data": data,
        }


@dataclass
class NdviAssets:
    root: Path                      # served folder; files under root / "ndvi"
    info: dict = field(default_factory=dict)   # item id -> bbox/shape/transform/data

    def path(self, spec: ItemSpec) -> Path:
        return self.root / "ndvi" / spec.filename


@pytest.fixture(scope="session")
def ndvi_assets(tmp_path_factory) -> NdviAssets:
    if not naip_path("20200831").exists():
        pytest.skip(f"NAIP rasters not found in {NAIP_DIR} (set LEAFMAP_TILES_DATA)")
    root = tmp_path_factory.mktemp("terrascope_assets")
    (root / "ndvi").mkdir()
    assets = NdviAssets(root)
    for spec in CATALOG:
        assets.info[spec.id] = _write_cog(assets.path(spec), spec)
    return assets


# ---------------------------------------------------------------- helpers


def wait_http(url: str, proc: subprocess.Popen | None, log: Path | None, timeout: float = 60.0,
              ok_codes=(200, 401)) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            text = log.read_text() if log and log.exists() else ""
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}:\n{text}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status in ok_codes:
                    return
        except urllib.error.HTTPError as e:
            if e.code in ok_codes:
                return
            last = e
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout}s: {last}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# ---------------------------------------------------------------- nginx (Basic auth)


@dataclass
class AssetServer:
    base_url: str    # http://127.0.0.1:PORT
    netloc: str      # 127.0.0.1:PORT
    root: Path
    access_log: Path

    def url(self, spec: ItemSpec) -> str:
        return f"{self.base_url}/ndvi/{spec.filename}"


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{ image/tiff tif tiff; application/json json; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        root {root};
        location /ndvi/ {{
            auth_basic "Terrascope test download";
            auth_basic_user_file {tmp}/htpasswd;
        }}
    }}
}}
"""


@pytest.fixture(scope="session")
def asset_server(ndvi_assets, tmp_path_factory) -> AssetServer:
    if NGINX is None:
        pytest.skip("nginx is not installed: run `bash scripts/setup_nginx.sh`")
    tmp = tmp_path_factory.mktemp("nginx")
    (tmp / "htpasswd").write_text(f"{USERNAME}:{{PLAIN}}{PASSWORD}\n")
    last_error = ""
    for _ in range(5):
        port = free_port()
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, root=ndvi_assets.root))
        log = tmp / "stderr.log"
        with open(log, "w") as err:
            proc = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(conf),
                                     "-e", str(tmp / "error.log")],
                                    stdout=err, stderr=subprocess.STDOUT)
        try:
            wait_http(f"http://127.0.0.1:{port}/ndvi/", proc, log, timeout=20)
        except RuntimeError as e:  # port taken meanwhile: try another
            stop(proc)
            last_error = str(e) + (tmp / "error.log").read_text() if (tmp / "error.log").exists() else str(e)
            continue
        try:
            yield AssetServer(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}",
                              ndvi_assets.root, tmp / "access.log")
        finally:
            stop(proc)
        return
    pytest.fail(f"nginx did not start: {last_error}")


# ---------------------------------------------------------------- recording server


@dataclass
class RecordingServer:
    base_url: str
    netloc: str
    records_file: Path

    def url(self, spec: ItemSpec) -> str:
        return f"{self.base_url}/ndvi/{spec.filename}"

    @property
    def records(self) -> list[dict]:
        """Every request so far: {"method", "path", "authorization"}."""
        text = self.records_file.read_text()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def clear(self) -> None:
        self.records_file.write_text("")


@pytest.fixture(scope="session")
def recording_server(ndvi_assets, tmp_path_factory) -> RecordingServer:
    """An unprotected server of the same files (own process: see recording_server.py)."""
    tmp = tmp_path_factory.mktemp("recording")
    records = tmp / "records.jsonl"
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("recording_server.py")),
         str(ndvi_assets.root), str(records)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        port = int(proc.stdout.readline().strip())
        server = RecordingServer(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}", records)
        wait_http(server.base_url + "/", proc, None, timeout=20)
        server.clear()
        yield server
    finally:
        stop(proc)


# ---------------------------------------------------------------- STAC catalog + API


def item_dict(spec: ItemSpec, info: dict, href: str) -> dict:
    w, s, e, n = info["bbox"]
    asset = {
        "href": href,
        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "title": "Normalized Difference Vegetation Index",
        "roles": ["data"],
        "proj:shape": info["shape"],
        "proj:transform": info["transform"],
    }
    if spec.raster_style == "asset":   # raster extension v2 / STAC 1.1 style
        asset.update({"nodata": NODATA, "raster:scale": SCALE, "raster:offset": OFFSET,
                      "data_type": "uint8"})
    else:                              # raster extension v1 style
        asset["raster:bands"] = [{"nodata": NODATA, "scale": SCALE, "offset": OFFSET,
                                  "data_type": "uint8", "spatial_resolution": 5}]
    props = {
        "datetime": spec.datetime.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "start_datetime": spec.datetime.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_datetime": spec.datetime.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "platform": "sentinel-2" + spec.id[2].lower(),
        "instruments": ["msi"],
        "tileId": spec.id.split("_")[2],
        "proj:epsg": info["epsg"],
        "product_type": "NDVI",
    }
    if spec.cloud_cover is not None:
        props["eo:cloud_cover"] = spec.cloud_cover
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
        ],
        "id": spec.id,
        "collection": COLLECTION,
        "bbox": [w, s, e, n],
        "geometry": {"type": "Polygon",
                     "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
        "properties": props,
        "links": [],
        "assets": {"NDVI": asset},
    }


def write_static_catalog(root: Path, items: list[dict], collection_id: str = COLLECTION) -> Path:
    """A best-practice-layout static catalog: catalog.json -> collection -> items."""
    COLLECTION = collection_id  # noqa: N806  (the collection written below)
    root.mkdir(parents=True, exist_ok=True)
    col_dir = root / COLLECTION
    col_dir.mkdir(exist_ok=True)
    xs = [i["bbox"][0] for i in items] + [i["bbox"][2] for i in items]
    ys = [i["bbox"][1] for i in items] + [i["bbox"][3] for i in items]
    times = sorted(i["properties"]["datetime"] for i in items)
    collection = {
        "type": "Collection", "stac_version": "1.0.0", "id": COLLECTION,
        "title": "Sentinel-2 NDVI V2 (test copy built from NAIP)",
        "description": "Terrascope-shaped NDVI items for tests; NDVI computed from NAIP "
                       "imagery (opengeos/data, MIT) and encoded as DN*0.004-0.08.",
        "license": "proprietary",
        "extent": {"spatial": {"bbox": [[min(xs), min(ys), max(xs), max(ys)]]},
                   "temporal": {"interval": [[times[0], times[-1]]]}},
        "links": [
            {"rel": "root", "href": "../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
        ],
    }
    for item in items:
        d = col_dir / item["id"]
        d.mkdir(exist_ok=True)
        item = dict(item)
        item["links"] = [
            {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../collection.json", "type": "application/json"},
            {"rel": "collection", "href": "../collection.json", "type": "application/json"},
        ]
        (d / f"{item['id']}.json").write_text(json.dumps(item))
        collection["links"].append({"rel": "item", "href": f"./{item['id']}/{item['id']}.json",
                                    "type": "application/geo+json"})
    (col_dir / "collection.json").write_text(json.dumps(collection))
    catalog = {
        "type": "Catalog", "stac_version": "1.0.0", "id": "terrascope-test",
        "description": "Local test catalog", "links": [
            {"rel": "root", "href": "./catalog.json", "type": "application/json"},
            {"rel": "child", "href": f"./{COLLECTION}/collection.json",
             "type": "application/json"},
        ],
    }
    (root / "catalog.json").write_text(json.dumps(catalog))
    return root / "catalog.json"


@dataclass
class StacApi:
    url: str
    items: dict          # item id -> the item dict the server holds
    asset_server: AssetServer


def _start_stac_api(catalog: Path, tmp: Path):
    py = STAC_VENV / "bin" / "python"
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GDAL_", "TERRASCOPE_"))}
    env.update({"catalog_href": catalog.as_uri(), "log_level": "warning",
                "environment": "production", "reload": "false",
                "assume_best_practice_layout": "true", "PYTHONUNBUFFERED": "1"})
    log = tmp / "stac_api.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(py), "-m", "uvicorn", "stac_fastapi.static.app:app",
             "--fd", str(sock.fileno()), "--log-level", "warning"],
            stdout=out, stderr=subprocess.STDOUT, env=env, pass_fds=[sock.fileno()],
            cwd=tmp,
        )
    sock.close()
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/", proc, log, timeout=90, ok_codes=(200,))
    return proc, url


@pytest.fixture(scope="session")
def stac_api(ndvi_assets, asset_server, tmp_path_factory) -> StacApi:
    if not (STAC_VENV / "bin" / "python").exists():
        pytest.skip(f"STAC API server venv {STAC_VENV} is absent: "
                    "run `bash scripts/setup_stac_server.sh`")
    tmp = tmp_path_factory.mktemp("stac")
    items = {s.id: item_dict(s, ndvi_assets.info[s.id], asset_server.url(s)) for s in CATALOG}
    catalog = write_static_catalog(tmp / "catalog", list(items.values()))
    proc, url = _start_stac_api(catalog, tmp)
    try:
        yield StacApi(url, items, asset_server)
    finally:
        stop(proc)


# ---------------------------------------------------------------- STAC API without Filter


class _NoFilterProxy(http.server.BaseHTTPRequestHandler):
    """Forwards to the real STAC API but hides the Filter extension: its conformance
    classes are removed from the landing page and /conformance, and a search that
    still sends ``filter`` gets 400 as from a server that does not know it."""

    upstream: str
    seen: list

    def log_message(self, *args):
        pass

    def _forward(self, body: bytes | None):
        self.seen.append((self.command, self.path, body))
        if body:
            try:
                payload = json.loads(body)
            except ValueError:
                payload = {}
            if payload.get("filter") is not None:
                return self._send(400, b'{"code":"BadRequest","description":"unknown field filter"}')
        if "filter=" in self.path or "filter-lang=" in self.path:
            return self._send(400, b'{"code":"BadRequest","description":"unknown parameter filter"}')
        req = urllib.request.Request(self.upstream + self.path, data=body, method=self.command,
                                     headers={"Content-Type": "application/json"} if body else {})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, data = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, data = e.code, e.read()
        host = self.headers.get("Host")
        data = data.replace(self.upstream.encode(), f"http://{host}".encode())
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and "conformsTo" in doc:
            doc["conformsTo"] = [c for c in doc["conformsTo"] if "filter" not in c]
        if isinstance(doc, dict):
            for link in doc.get("links", []):  # next links: no filter fields either
                if isinstance(link.get("body"), dict):
                    link["body"].pop("filter", None)
                    link["body"].pop("filter-lang", None)
            data = json.dumps(doc).encode()
        self._send(status, data)

    def _send(self, status: int, data: bytes):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._forward(None)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self._forward(self.rfile.read(n) if n else b"")


@dataclass
class ProxyApi:
    url: str
    seen: list


@pytest.fixture(scope="session")
def stac_api_without_filter(stac_api) -> ProxyApi:
    seen: list = []
    handler = type("Proxy", (_NoFilterProxy,), {"upstream": stac_api.url, "seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield ProxyApi(f"http://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- clean environment


_GDAL_AUTH_VARS = ("GDAL_HTTP_AUTH", "GDAL_HTTP_USERPWD", "GDAL_DISABLE_READDIR_ON_OPEN",
                   "GDAL_HTTP_HEADER_FILE")


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No Terrascope/GDAL credentials from the outside, a private HOME, and the
    provider modules logged out afterwards."""
    for var in _GDAL_AUTH_VARS + ("TERRASCOPE_USERNAME", "TERRASCOPE_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    yield home
    from leafmap_tiles.providers import stac

    stac.clear_credentials()
    removed = {var: os.environ.pop(var) for var in _GDAL_AUTH_VARS if var in os.environ}
    stac.forget_gdal_config(removed)
    stac.clear_gdal_http_cache()


@pytest.fixture
def terrascope_auth(asset_server, monkeypatch, clean_env):
    """``leafmap_tiles.providers.terrascope`` with the nginx asset server as its
    download host (no STAC API needed)."""
    from leafmap_tiles.providers import terrascope

    monkeypatch.setenv("LEAFMAP_TILES_TERRASCOPE_HOSTS", asset_server.netloc)
    monkeypatch.setenv("LEAFMAP_TILES_TERRASCOPE_STAC_URL", "http://127.0.0.1:9/no-stac-here")
    yield terrascope


@pytest.fixture
def terrascope_local(stac_api, terrascope_auth, monkeypatch):
    """``leafmap_tiles.providers.terrascope`` pointed at the local servers."""
    monkeypatch.setenv("LEAFMAP_TILES_TERRASCOPE_STAC_URL", stac_api.url)
    terrascope_auth._reset_client()
    yield terrascope_auth
    terrascope_auth._reset_client()


# ---------------------------------------------------------------- multi-asset items (bands as COGs)

BANDS_COLLECTION = "naip-bands"
# NIR is stored at 10 m (2x2 mean of NAIP's 5 m band 4) as uint16 DN with its own
# nodata and a scale/offset given by STAC only: physical = DN * NIR_SCALE + NIR_OFFSET
NIR_SCALE, NIR_OFFSET, NIR_NODATA = 0.025, -25.0, 65535
NIR_HOLE = (slice(0, 10), slice(0, 10))  # a 10x10 block of NIR pixels set to nodata (red valid there)
# (item id, NAIP date, part): two dates, the second as two neighbouring halves on one date
BAND_ITEMS = [("NAIP_BANDS_20180716", "20180716", "full"),
              ("NAIP_BANDS_20200831_W", "20200831", "west"),
              ("NAIP_BANDS_20200831_E", "20200831", "east")]


@dataclass
class BandAssets:
    folder: Path                     # served at <asset server>/ndvi/bands/
    files: dict = field(default_factory=dict)   # item id -> {asset: path}
    window: dict = field(default_factory=dict)  # item id -> rasterio Window of the NAIP file


def _write_band_cogs(folder: Path, item_id: str, naip_date: str, part: str) -> tuple[dict, object]:
    import numpy as np
    import rasterio
    from rasterio.shutil import copy as rio_copy
    from rasterio.windows import Window

    with rasterio.open(naip_path(naip_date)) as src:
        half = src.width // 2
        window = {"full": Window(0, 0, src.width, src.height), "west": Window(0, 0, half, src.height),
                  "east": Window(half, 0, src.width - half, src.height)}[part]
        bands = src.read(window=window)
        transform = src.window_transform(window)
        crs = src.crs
    out = {}
    base = {"driver": "GTiff", "count": 1, "crs": crs}
    for name, b in (("red", 0), ("green", 1), ("blue", 2)):
        prof = dict(base, dtype="uint8", width=bands.shape[2], height=bands.shape[1], transform=transform, nodata=0)
        out[name] = folder / f"{item_id}_{name}.tif"
        tmp = out[name].with_suffix(".tmp.tif")
        with rasterio.open(tmp, "w", **prof) as dst:
            dst.write(bands[b], 1)
        rio_copy(tmp, out[name], driver="COG", BLOCKSIZE=64, COMPRESS="DEFLATE", OVERVIEWS="AUTO")
        tmp.unlink()
    nir = bands[3].astype("float64")
    h2, w2 = nir.shape[0] // 2, nir.shape[1] // 2
    nir10 = nir[:h2 * 2, :w2 * 2].reshape(h2, 2, w2, 2).mean(axis=(1, 3))
    dn = np.round((nir10 - NIR_OFFSET) / NIR_SCALE).astype("uint16")
    dn[NIR_HOLE] = NIR_NODATA
    prof = dict(base, dtype="uint16", width=w2, height=h2, transform=transform * transform.scale(2), nodata=NIR_NODATA)
    out["nir"] = folder / f"{item_id}_nir.tif"
    tmp = out["nir"].with_suffix(".tmp.tif")
    with rasterio.open(tmp, "w", **prof) as dst:
        dst.write(dn, 1)
    rio_copy(tmp, out["nir"], driver="COG", BLOCKSIZE=64, COMPRESS="DEFLATE", OVERVIEWS="AUTO")
    tmp.unlink()
    return out, window


@pytest.fixture(scope="session")
def band_assets(ndvi_assets) -> BandAssets:
    """Separate single-band COGs (red, green, blue at 5 m; NIR at 10 m, uint16 with
    STAC-only scale/offset and its own nodata) cut from the NAIP rasters, in the
    folder the nginx asset server protects."""
    folder = ndvi_assets.root / "ndvi" / "bands"
    folder.mkdir(exist_ok=True)
    assets = BandAssets(folder)
    for item_id, date, part in BAND_ITEMS:
        assets.files[item_id], assets.window[item_id] = _write_band_cogs(folder, item_id, date, part)
    return assets


def band_item_dict(item_id: str, date: str, files: dict, base_url: str) -> dict:
    import rasterio
    from rasterio.warp import transform_bounds

    assets = {}
    for name, path in files.items():
        with rasterio.open(path) as ds:
            bbox = list(transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21))
            asset = {"href": f"{base_url}/ndvi/bands/{path.name}", "roles": ["data"],
                     "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                     "proj:shape": [ds.height, ds.width], "proj:transform": list(ds.transform)[:6]}
        if name == "nir":
            asset["raster:bands"] = [{"nodata": NIR_NODATA, "scale": NIR_SCALE, "offset": NIR_OFFSET,
                                      "data_type": "uint16", "spatial_resolution": 10}]
        else:
            asset["raster:bands"] = [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 5}]
        assets[name] = asset
        if name == "red":
            item_bbox = bbox
    w, s, e, n = item_bbox
    when = f"{date[:4]}-{date[4:6]}-{date[6:]}T17:00:00Z"
    return {
        "type": "Feature", "stac_version": "1.0.0",
        "stac_extensions": ["https://stac-extensions.github.io/raster/v1.1.0/schema.json",
                            "https://stac-extensions.github.io/projection/v1.1.0/schema.json"],
        "id": item_id, "collection": BANDS_COLLECTION, "bbox": [w, s, e, n],
        "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
        "properties": {"datetime": when, "proj:epsg": 26914}, "links": [], "assets": assets,
    }


@pytest.fixture(scope="session")
def bands_stac_api(band_assets, asset_server, tmp_path_factory) -> StacApi:
    """A second real STAC API (stac-fastapi-static) holding multi-asset items whose
    red/green/blue/nir assets are separate COGs behind the nginx asset server (Basic auth)."""
    if not (STAC_VENV / "bin" / "python").exists():
        pytest.skip(f"STAC API server venv {STAC_VENV} is absent: run `bash scripts/setup_stac_server.sh`")
    tmp = tmp_path_factory.mktemp("stac_bands")
    items = {i: band_item_dict(i, d, band_assets.files[i], asset_server.base_url) for i, d, _ in BAND_ITEMS}
    catalog = write_static_catalog(tmp / "catalog", list(items.values()), collection_id=BANDS_COLLECTION)
    proc, url = _start_stac_api(catalog, tmp)
    try:
        yield StacApi(url, items, asset_server)
    finally:
        stop(proc)
