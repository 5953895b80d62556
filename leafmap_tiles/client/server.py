"""``TileServer``: the kernel's handle on its tile-server child process.

One server per kernel, shared by all maps (:func:`get_server`).  The child is started
lazily with port 0 and reports the port it bound.  It is stopped by :meth:`close`, by
an ``atexit`` hook, and by its own watchdog when the kernel dies.  If the child dies,
a monitor thread (and any request from the kernel) restarts it on the same port when
free and registers every source again under the same id, so tile URLs already on a
map keep working.
"""

from __future__ import annotations

import atexit
import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from urllib.parse import urlencode

import requests

from leafmap_tiles import _credentials, settings
from leafmap_tiles.client import urls
from leafmap_tiles.client.loopback import LoopbackPool
from leafmap_tiles.errors import BadRequestError, SourceTimeoutError, StyleError, TileServerError, from_name
from leafmap_tiles.protocol import (
    BackgroundRequest,
    ColormapAnswer,
    ColormapRequest,
    Credential,
    GdalChange,
    InfoAnswer,
    PointAnswer,
    PointFailure,
    PointResult,
    PointsAnswer,
    PointsRequest,
    Registration,
    RegistrationAnswer,
    ServerConfig,
    ServerStarted,
    StatisticsRequest,
    SourcePath,
    is_mosaic,
    members,
    source_path,
)

START_TIMEOUT = 60.0
# HTTP credentials that GDAL would send to every host; AWS keys stay (GDAL sends them to S3 only).
UNSCOPED_CREDENTIALS = ("GDAL_HTTP_USERPWD", "GDAL_HTTP_AUTH", "GDAL_HTTP_HEADER_FILE", "GDAL_HTTP_HEADERS",
                        "GDAL_HTTP_BEARER")
REQUEST_TIMEOUT = 40.0  # registration reads remote headers; GDAL's own timeout is 10 s
# Longest tile URL a layer may have.  The server itself takes up to 65,535 bytes, but
# the browser reaches it through proxies on JupyterHub/Binder: nginx accepts a request
# line of 8 KB by default (large_client_header_buffers), so 8,000 characters are safe.
MAX_TILE_URL = 8000

_server: "TileServer | None" = None
_server_lock = threading.Lock()
_all_servers: "weakref.WeakSet[TileServer]" = weakref.WeakSet()
# Provider credentials are kernel-wide (a login outlives any one server process): the
# one table of leafmap_tiles._credentials, pushed to every server when it starts.


def get_server(start: bool = False) -> "TileServer | None":
    """The kernel's shared :class:`TileServer`.  With ``start=True`` one is created
    when none exists (its process starts lazily, on the first request); with
    ``start=False`` None is returned when there is none."""
    global _server
    with _server_lock:
        if (_server is None or _server.closed) and start:
            _server = TileServer()
        return _server


def running_server_pids() -> list[int]:
    """Process ids of the tile-server children started by this process."""
    return [s.pid for s in list(_all_servers) if s.pid is not None and s.alive()]


class TileServer:
    """Owns one tile-server child process.

    ``client_prefix`` overrides where the browser reaches the server (see
    :mod:`leafmap_tiles.client.urls`).  Methods raise the specific errors of
    :mod:`leafmap_tiles.errors` that the server reports.
    """

    def __init__(self, client_prefix: str | None = None, workers: int | None = None) -> None:
        self.client_prefix = client_prefix
        self.workers = workers
        self.token = secrets.token_urlsafe(24)
        self._admin_key = secrets.token_urlsafe(32)
        self.port: int | None = None
        self._proc: subprocess.Popen | None = None
        self._lock = threading.RLock()
        self._sources: dict[str, Registration] = {}  # id -> registration body (re-sent after a restart)
        self._colormaps: dict[str, list | dict] = {}  # id -> colormap spec (re-sent after a restart)
        self._session = requests.Session()
        self._loopback: LoopbackPool | None = None  # http.client connections for _post_json
        self._closed = False
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self._listeners: list = []
        self.tmpdir = tempfile.mkdtemp(prefix="leafmap_tiles_")
        self.restarts = 0
        _all_servers.add(self)
        atexit.register(self.close)

    # ----------------------------------------------------------- lifecycle
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> "TileServer":
        """Start the child if it is not running; returns self."""
        with self._lock:
            if self._closed:
                raise TileServerError("this TileServer was closed; use leafmap_tiles.client.get_server(start=True)")
            if self.alive():
                return self
            self._spawn(self.port or 0)
            if self._monitor is None or not self._monitor.is_alive():
                self._monitor = threading.Thread(target=self._watch, name="leafmap_tiles-monitor", daemon=True)
                self._monitor.start()
        return self

    def _spawn(self, port: int) -> None:
        old_port = self.port
        # Credentials in the kernel's environment (e.g. GDAL_HTTP_USERPWD set by a provider's
        # login for the user's own rasterio reads) must not apply to every host the server
        # reads: the server gets them scoped to the provider's hosts via set_credentials().
        env = {k: v for k, v in os.environ.items() if k not in UNSCOPED_CREDENTIALS}
        env.setdefault("PYTHONUNBUFFERED", "1")
        # glibc makes a malloc arena per thread; with GDAL reads in many threads freed
        # memory stays fragmented and the RSS only grows.  Two arenas keep it bounded.
        env.setdefault("MALLOC_ARENA_MAX", "2")
        proc = subprocess.Popen(
            [sys.executable, "-m", "leafmap_tiles.server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None if settings.current().debug else subprocess.DEVNULL,
            start_new_session=True,  # own process group: Ctrl-C in the kernel does not hit it
            env=env,
            close_fds=True,
        )
        cfg: ServerConfig = {
            "token": self.token, "admin_key": self._admin_key, "parent_pid": os.getpid(), "port": port,
            "workers": self.workers,
            # known to the child before it accepts requests: no 404/401 gap after a restart
            "sources": list(self._sources.values()),
            "colormaps": list(self._colormaps.values()),
            "gdal": {"credentials": _credential_records()},
        }
        try:
            proc.stdin.write((json.dumps(cfg) + "\n").encode())
            proc.stdin.close()
            line = _readline_with_timeout(proc, START_TIMEOUT)
            started: ServerStarted = json.loads(line)
            bound = int(started["port"])
        except Exception as exc:
            _kill_group(proc)
            raise TileServerError(f"the tile server did not start: {exc}") from None
        self.port = bound
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                r = self._session.get(f"http://127.0.0.1:{self.port}/health", timeout=5)
                if r.ok:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                _kill_group(proc)
                raise TileServerError("the tile server started but does not answer /health")
            time.sleep(0.05)
        self._proc = proc  # published once the server answers
        if old_port is not None and old_port != self.port:
            for cb in list(self._listeners):
                try:
                    cb(self)
                except Exception:
                    pass

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            proc = self._proc
            if proc is not None and proc.poll() is not None and not self._closed:
                with self._lock:
                    if self._closed or self.alive():
                        continue
                    try:
                        self._spawn(self.port or 0)
                        self.restarts += 1
                    except Exception:
                        time.sleep(2.0)

    def add_listener(self, callback) -> None:
        """``callback(server)`` is called when a restart had to change the port."""
        self._listeners.append(callback)

    def remove_listener(self, callback) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def close(self) -> None:
        """Stop the child (its whole process group) and free the port. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            proc, self._proc = self._proc, None
        if proc is not None:
            _kill_group(proc)
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join(timeout=5)
        self._session.close()
        if self._loopback is not None:
            self._loopback.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        try:
            atexit.unregister(self.close)
        except Exception:
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ requests
    def _url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{self.token}/{path}"

    def _request(self, method: str, path: str, restart: bool = True, **kw):
        if restart:
            self.start()
        headers = {"X-Leafmap-Tiles-Key": self._admin_key}
        r = None
        for attempt in range(4 if restart else 1):
            try:
                r = self._session.request(method, self._url(path), headers=headers, timeout=REQUEST_TIMEOUT, **kw)
                break
            except requests.Timeout:
                raise SourceTimeoutError(f"the tile server did not answer {path} within {REQUEST_TIMEOUT:.0f} s") from None
            except requests.ConnectionError as exc:
                if not restart:
                    raise TileServerError(f"cannot reach the tile server: {exc}") from None
                time.sleep(0.2 * attempt)  # a killed child may not be reaped yet
                with self._lock:
                    if not self.alive():
                        self._spawn(self.port or 0)
                        self.restarts += 1
        if r is None:
            raise TileServerError(f"cannot reach the tile server for {path} (restarted {self.restarts} times)")
        if r.status_code >= 400:
            try:
                body = r.json()
            except ValueError:
                raise TileServerError(f"tile server answered {r.status_code}: {r.text[:200]}") from None
            raise from_name(body.get("error"), body.get("message") or r.text)
        return r

    def _post_json(self, path: str, body: dict) -> dict:
        """``_request("POST", path, json=body).json()`` on a kept ``http.client``
        connection (:mod:`leafmap_tiles.client.loopback`: a sixth of requests' kernel
        CPU, for calls sent many at once such as an area series' frames); a server
        that cannot be reached is left to :meth:`_request` (restart, its errors)."""
        self.start()
        pool = self._loopback
        if pool is None or pool.port != self.port:
            pool = self._loopback = LoopbackPool(self.port, REQUEST_TIMEOUT)
        try:
            status, raw = pool.post_json(f"/{self.token}/{path}", body, {"X-Leafmap-Tiles-Key": self._admin_key})
        except TimeoutError:
            raise SourceTimeoutError(f"the tile server did not answer {path} within {REQUEST_TIMEOUT:.0f} s") from None
        except (OSError, http.client.HTTPException):
            return self._request("POST", path, json=body).json()
        if status >= 400:
            try:
                err = json.loads(raw)
            except ValueError:
                raise TileServerError(f"tile server answered {status}: {raw[:200]!r}") from None
            raise from_name(err.get("error"), err.get("message") or raw.decode("utf-8", "replace"))
        return json.loads(raw)

    def register(self, path: SourcePath | list[str], style: dict | None = None, defaults: dict | None = None,
                 protected: bool = False) -> RegistrationAnswer:
        """Register ``path`` (a path/URL, or a list or :class:`~leafmap_tiles.protocol.Mosaic`
        of them shown as one mosaic) with ``style`` (validated against the file) and
        return the server's answer (:class:`~leafmap_tiles.protocol.RegistrationAnswer`):
        ``{"id", "info", "style", "statistics", "stretch", "palette", "version"}``
        (``version``: the state of local files, None for URLs).  Raises the specific
        error (missing file, bad style, 401 ...) before anything is registered;
        ``BadRequestError`` for a ``path`` that is not a path or a list of them."""
        body: Registration = {"path": _json_path(path), "style": style or {}, "defaults": defaults or {},
                              "protected": protected}
        out: RegistrationAnswer = self._request("POST", "sources", json=body).json()
        body["id"] = out["id"]
        with self._lock:  # a restart (under the lock) re-sends every registration
            self._sources[out["id"]] = body
        return out

    def register_colormap(self, spec) -> str:
        """Register a colormap and return its short id (``"cm:<hex>"``) for the
        ``colormap`` style parameter, so that a tile URL stays short whatever the
        colormap.  ``spec``: a list of colours, a ``{value: colour}`` map, or a table
        ``{"colors": [[r, g, b, a], ...], "under", "over", "bad"}`` (0..255; see
        :func:`leafmap_tiles.render.colormaps.colormap_table_spec` for a matplotlib
        Colormap).  The id depends on the content only; kept across server restarts.
        Raises ``StyleError`` for an invalid colormap, ``BadRequestError`` for a
        ``spec`` that is neither a list nor a dict."""
        body: ColormapRequest = {"colormap": spec}
        out: ColormapAnswer = self._request("POST", "colormaps", json=body).json()
        with self._lock:
            self._colormaps[out["id"]] = spec
        return out["id"]

    def release(self, source_id: str) -> None:
        """Forget a source; its tile URLs answer 404 afterwards.  A file this server
        wrote for an array source is deleted when no other source uses it."""
        with self._lock:
            body = self._sources.pop(source_id, None)
        if self.alive():
            try:
                self._request("DELETE", f"sources/{source_id}", restart=False)
            except Exception:
                pass
        if body is not None:
            with self._lock:
                used = {p for b in self._sources.values() for p in _files(b)}
            for p in _files(body):
                if p not in used and os.path.dirname(p) == self.tmpdir:
                    try:
                        os.remove(p)
                    except OSError:
                        pass

    def registration(self, source_id: str) -> Registration | None:
        """A copy of what was sent to register ``source_id``, with its ``id`` (to
        register it again, :meth:`reregister`); None for an id not registered here."""
        with self._lock:
            body = self._sources.get(source_id)
        return Registration(**body) if body is not None else None

    def is_registered(self, source_id: str) -> bool:
        with self._lock:
            return source_id in self._sources

    def reregister(self, body: Registration) -> None:
        """Register again a source released earlier (``body``: its :meth:`registration`;
        same id, so the same URLs work)."""
        out: RegistrationAnswer = self._request("POST", "sources", json=body).json()
        again = Registration(**body)
        again["id"] = out["id"]
        with self._lock:
            self._sources[out["id"]] = again

    @property
    def source_ids(self) -> list[str]:
        with self._lock:
            return list(self._sources)

    def info(self, source_id: str, style: dict | None = None) -> InfoAnswer:
        """The source's description with ``style`` (tile URL parameters): its bounds,
        bands, zooms, per-band statistics and ``version``, without its path
        (:class:`~leafmap_tiles.protocol.InfoAnswer`)."""
        out: InfoAnswer = self._request("GET", f"info/{source_id}", params=style or {}).json()
        return out

    def point(self, source_id: str, lon: float, lat: float, style: dict | None = None) -> PointAnswer:
        """Values at (lon, lat) EPSG:4326, ``None`` for nodata (shape:
        :class:`leafmap_tiles.protocol.PointAnswer`)."""
        return self._request("GET", f"point/{source_id}", params={**(style or {}), "lon": lon, "lat": lat}).json()

    def points(self, layers: list[tuple[str, dict]], lon: float, lat: float) -> list[PointResult | PointFailure]:
        """Batch point query: one request for many (source id, style) pairs (results as
        in :class:`leafmap_tiles.protocol.PointsAnswer`)."""
        body: PointsRequest = {"lon": lon, "lat": lat, "layers": [{"id": i, "style": s} for i, s in layers]}
        out: PointsAnswer = self._request("POST", "points", json=body).json()
        return out["results"]

    def statistics(self, source_id: str, geometry: dict, style: dict | None = None, percentiles=(),
                   scale: float | None = None, offset: float | None = None, stats=None) -> dict:
        """Area statistics of a source over ``geometry`` (a GeoJSON Polygon/MultiPolygon
        dict in EPSG:4326): ``{"bands", "statistics": [{count, mean, median, min, max,
        std, p<q>...}, ...], "pixels", "inside", "id"}`` in physical units (``scale``/
        ``offset`` given, else the file's tags for plain bands); see
        :mod:`leafmap_tiles.render.zonal` for the pixel rule.  ``stats``: the names
        among mean, median, min, max, std to compute (None: all); ``count`` and the
        percentiles are always given.  ``percentiles``: a number or any sequence or
        array of numbers; ``stats``: a name or a list of names.  Raises
        ``BadRequestError`` for a bad geometry, percentiles or stats, ``UnknownSourceError``."""
        body: StatisticsRequest = {"geometry": geometry, "style": style or {},
                                   "percentiles": _percentile_list(percentiles), "scale": scale, "offset": offset}
        if stats is not None:
            try:
                body["stats"] = [stats] if isinstance(stats, str) else list(stats)
            except TypeError:  # not a list of names: the server says so
                body["stats"] = stats
        try:
            json.dumps(body, allow_nan=False)
        except (TypeError, ValueError) as exc:  # NaN/inf coordinates, objects JSON cannot carry
            raise BadRequestError(f"the geometry and options must be finite numbers in JSON: {exc}") from None
        return self._post_json(f"statistics/{source_id}", body)

    def tile(self, source_id: str, z: int, x: int, y: int, style: dict | None = None, fmt: str = "png") -> bytes:
        """Tile bytes fetched by the kernel (tests, exports)."""
        return self._request("GET", f"tiles/{source_id}/{z}/{x}/{y}.{fmt}", params=style or {}).content

    # ------------------------------------------------------- credentials
    def set_credentials(self, hosts: list[str], username: str, password: str) -> None:
        """Use HTTP Basic ``username``/``password`` for URLs on ``hosts`` only (each
        ``name`` for any port, ``name:port``, or a URL; case-insensitive, see
        :mod:`leafmap_tiles._hosts`); clears GDAL's cached failures.  Kept for the
        kernel's lifetime: a server started later gets them too."""
        keys = _credentials.add(hosts, username, password)
        self._post_gdal({"credentials": [Credential(host=h, username=username, password=password) for h in keys]})

    def clear_credentials(self, hosts: list[str]) -> None:
        """Forget credentials of ``hosts`` and every cached byte read with them."""
        _credentials.remove(hosts)
        self._post_gdal({"clear_hosts": list(hosts)})

    def set_background(self, owner: str, source_ids) -> None:
        """Tell the running server that ``source_ids`` (registered ids) render after
        every other source's tiles, on behalf of ``owner`` (any string; a later call
        with the same owner replaces its set, an empty list clears it).  A time slider
        uses it for the hidden frames it preloads.  Does nothing if the server is not
        running; failures are ignored (it is only an ordering hint)."""
        if not self.alive():
            return
        body: BackgroundRequest = {"owner": owner, "ids": list(source_ids)}
        try:
            self._request("POST", "background", restart=False, json=body)
        except Exception:
            pass

    def late_tiles(self) -> dict:
        """``{source id: count}`` of tiles the running server answered 503 because their
        render passed the deadline (``{}`` when the server is not running or cannot be
        reached: it is only a hint for a redraw)."""
        if not self.alive():
            return {}
        try:
            r = self._request("GET", "late", restart=False)
            return {str(k): int(v) for k, v in r.json().items()}
        except Exception:
            return {}

    def _post_gdal(self, body: GdalChange) -> None:
        if self.alive():
            self._request("POST", "gdal", json=body, restart=False)

    # ---------------------------------------------------------------- URLs
    @property
    def route(self) -> "urls.Route":
        """How the browser reaches this server (a :class:`leafmap_tiles.client.urls.Route`:
        ``kind`` ``"explicit"``, ``"proxy"``, ``"comm"`` or ``"direct"``, and why);
        see :mod:`leafmap_tiles.client.urls` for the order."""
        return urls.route(self.client_prefix)

    def browser_base(self) -> str:
        """URL base (no trailing slash) of this server as the browser must use it."""
        self.start()
        return self.route.base(self.port)

    def tile_url(self, source_id: str, style: dict | None = None, fmt: str = "png",
                 version: str | None = None) -> str:
        """Leaflet URL template ``.../tiles/<id>/{z}/{x}/{y}.png?<style>[&v=<version>]``
        as the browser must request it.  ``version`` (from :meth:`register` or
        :meth:`info`: the state of the source's files) makes the URL cacheable: the
        server sends such tiles with a long ``max-age`` while the files are unchanged.
        Raises :class:`StyleError` when it would be longer than :data:`MAX_TILE_URL`
        characters (see :meth:`check_tile_url`)."""
        params = {k: v for k, v in (style or {}).items() if v is not None}
        if version:
            params["v"] = version
        q = urlencode(params)
        url = f"{self.browser_base()}/{self.token}/tiles/{source_id}/{{z}}/{{x}}/{{y}}.{fmt}"
        url += f"?{q}" if q else ""
        _check_url_length(len(url), style)
        return url

    def check_tile_url(self, style: dict | None) -> None:
        """Raise :class:`StyleError` if tiles with ``style`` (the query parameters of
        a tile URL) would have URLs too long to load (over :data:`MAX_TILE_URL`
        characters, e.g. a ``{value: colour}`` colormap of thousands of entries).
        Call it before registering, so that nothing changes for such a layer."""
        q = urlencode({k: v for k, v in (style or {}).items() if v is not None})
        # the longest base the browser may use: proxy prefix, token, a source id, z/x/y
        base = len(self.route.base(65535)) + len(self.token) + 64
        _check_url_length(base + len(q), style)

    def local_url(self, path: str = "") -> str:
        self.start()
        return self._url(path)


def _percentile_list(percentiles) -> list:
    """``percentiles`` as the JSON list the server takes: None -> ``[]``, one number ->
    ``[it]``, any sequence or numpy array of numbers -> its numbers as floats (numpy's
    integers are no JSON); anything else is passed on for the server to refuse with
    its message."""
    import numbers

    if percentiles is None:
        return []
    if hasattr(percentiles, "tolist") and not isinstance(percentiles, numbers.Number):
        percentiles = percentiles.tolist()  # a numpy array (or pandas Series): Python numbers
    if isinstance(percentiles, (numbers.Number, str, bytes)):
        percentiles = [percentiles]
    try:
        items = list(percentiles)
    except TypeError:
        return [percentiles]
    return [float(p) if isinstance(p, numbers.Real) and not isinstance(p, bool) else p for p in items]


def _check_url_length(length: int, style: dict | None) -> None:
    if length <= MAX_TILE_URL:
        return
    biggest = max((style or {}).items(), key=lambda kv: len(str(kv[1])), default=("style", ""))
    raise StyleError(
        f"this layer's tile URLs would be {length:,} characters long (mostly {biggest[0]}=, "
        f"{len(str(biggest[1])):,} characters); browsers and proxies load at most about "
        f"{MAX_TILE_URL:,}. Use a shorter style: a colormap name or fewer {{value: colour}} "
        "entries (a few hundred), or a shorter expression."
    )


def _json_path(path: SourcePath | list[str]) -> str | list[str]:
    """``path`` as a registration carries it: one string, or a list for a mosaic."""
    checked = source_path(path)
    if checked is None:
        raise BadRequestError(f"a source is a non-empty path/URL or a list of them, got {str(path)[:80]!r}")
    return list(checked) if is_mosaic(checked) else checked


def _files(body: Registration) -> tuple[str, ...]:
    """The files of a registration (one, or a mosaic's)."""
    path = source_path(body["path"])
    return members(path) if path is not None else ()


def _credential_records() -> list[Credential]:
    return [Credential(host=r["host"], username=r["username"], password=r["password"])
            for r in _credentials.records()]


def _readline_with_timeout(proc: subprocess.Popen, timeout: float) -> str:
    out: list[bytes] = []

    def read():
        out.append(proc.stdout.readline())

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout)
    if not out:
        raise TileServerError("no port reported by the child within %.0f s" % timeout)
    if not out[0]:  # end of its stdout: the child ended before it printed its port
        try:
            code = proc.wait(5)
        except subprocess.TimeoutExpired:
            code = None
        raise TileServerError(f"the child exited (exit code {code}) before it reported its port; "
                              "set LEAFMAP_TILES_DEBUG=1 to see its error output")
    return out[0].decode()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait(timeout=5)
    for f in (proc.stdout, proc.stdin):
        try:
            if f:
                f.close()
        except Exception:
            pass
