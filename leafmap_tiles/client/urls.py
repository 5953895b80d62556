"""Where the browser reaches the tile server, found by the kernel itself.

The tile server binds 127.0.0.1 in the kernel's machine; the browser may be elsewhere.
:func:`detect_route` picks the first of these that applies (once per kernel; the answer
does not depend on the port):

1. ``"explicit"``: ``TileServer(client_prefix=...)`` or env ``LEAFMAP_TILES_CLIENT_PREFIX``
   (a URL or root-absolute path with ``{port}``, e.g. ``"/proxy/{port}"`` for
   jupyter-server-proxy, or ``"http://127.0.0.1:{port}"`` to force the direct URL).
2. ``"proxy"``: the kernel was started by a jupyter-server (JupyterLab, Notebook 7,
   JupyterHub, Binder, a plain remote Jupyter with base URL ``/``, ``jupyter server``
   with Voila's extension) that has this package's server extension: the server's info
   file in the Jupyter runtime folder (``jpserver-<pid>.json``, the pid being the
   kernel's ``JPY_PARENT_PID``) gives its URL and base URL, and the extension's probe
   ``<url>leafmap-tiles-proxy/__probe__`` answers 204.  The browser then asks
   ``<base_url>leafmap-tiles-proxy/<port>/...`` on the origin of the Jupyter page,
   behind Jupyter's own authentication.  On JupyterHub without a readable info file,
   ``JUPYTERHUB_SERVICE_URL`` is probed instead (else the Hub prefix is trusted).
3. ``"comm"``: an IPython kernel (whose front end can speak widget comms) without such
   a jupyter-server: VS Code, Colab, Voila's standalone server, a jupyter-server lacking
   the extension.  URLs stay ``http://127.0.0.1:<port>``; :class:`leafmap_tiles.Map`
   enables jupyter-loopback's comm bridge, whose browser half sends the requests of
   those URLs over the kernel's comm channel.
4. ``"direct"``: ``http://127.0.0.1:<port>`` (a plain Python or IPython terminal, a
   browser on the same machine).
"""

from __future__ import annotations

import glob
import json
import os
import warnings
from dataclasses import dataclass
from typing import Callable, Mapping

from leafmap_tiles import settings

# the jupyter-loopback namespace of our server extension (leafmap_tiles._jupyter): only
# [a-z0-9][a-z0-9-]* is accepted there, hence the hyphen.
NAMESPACE = "leafmap-tiles"
PROXY_SEGMENT = f"{NAMESPACE}-proxy"
DIRECT = "http://127.0.0.1:{port}"
PROBE_TIMEOUT = 3.0  # seconds; the probe goes to a server on the same machine
ROUTES = ("explicit", "proxy", "comm", "direct")


@dataclass(frozen=True)
class Route:
    """How the browser reaches the tile server.

    ``kind`` is one of :data:`ROUTES`; ``template`` is the URL base with ``{port}``
    (``http://127.0.0.1:{port}`` for ``"comm"`` and ``"direct"``); ``reason`` says in
    words why this route was chosen (shown by ``m.server.route``)."""

    kind: str
    template: str
    reason: str

    def base(self, port: int) -> str:
        """The URL base for ``port`` (no trailing slash)."""
        return self.template.replace("{port}", str(int(port))).rstrip("/")


_detected: Route | None = None


def browser_base(port: int, client_prefix: str | None = None) -> str:
    """URL base (no trailing slash) under which the browser reaches the tile server
    listening on 127.0.0.1:``port``; ``client_prefix`` (with ``{port}``) wins over
    everything, as ``LEAFMAP_TILES_CLIENT_PREFIX`` does."""
    return route(client_prefix).base(port)


def route(client_prefix: str | None = None) -> Route:
    """The :class:`Route` of this kernel: ``client_prefix`` if given, else
    :func:`detect_route`'s answer, computed once per process (the jupyter-server that
    started a kernel does not change while the kernel lives)."""
    global _detected
    if client_prefix:
        return Route("explicit", client_prefix, "client_prefix= was given")
    env_prefix = settings.current().client_prefix
    if env_prefix:
        return Route("explicit", env_prefix, "LEAFMAP_TILES_CLIENT_PREFIX is set")
    if _detected is None:
        _detected = detect_route()
    return _detected


def detect_route(environ: Mapping[str, str] | None = None, *, runtime_dirs: list[str] | None = None,
                 probe: Callable[[str], bool] | None = None, comm_capable: bool | None = None) -> Route:
    """Find the route in the order of this module's docstring (without a cache).

    Args:
        environ: the environment to read (default ``os.environ``).
        runtime_dirs: folders holding ``jpserver-<pid>.json`` files (default: Jupyter's
            runtime folder and the folder of this kernel's connection file).
        probe: ``probe(server_url) -> bool``, whether the jupyter-server at that URL
            (with its base URL, ending in ``/``) has our proxy (default
            :func:`probe_proxy`, an HTTP request).
        comm_capable: whether this process is an IPython kernel whose front end may
            speak comms, with ``anywidget`` installed (default: looked up).
    """
    env = os.environ if environ is None else environ
    probe = probe or probe_proxy
    env_prefix = settings.Settings.from_env(env).client_prefix
    if env_prefix:
        return Route("explicit", env_prefix, "LEAFMAP_TILES_CLIENT_PREFIX is set")
    in_kernel = bool(env.get("JPY_PARENT_PID") or env.get("JPY_SESSION_NAME"))
    why_not = "not started by a jupyter-server"
    if in_kernel:
        info = kernel_server_info(environ, runtime_dirs)
        if info is not None:
            base_url = _slashed(str(info.get("base_url") or "/"))
            if info.get("sock"):  # a unix socket: only a proxy in front of it reaches it
                return Route("proxy", f"{base_url}{PROXY_SEGMENT}/{{port}}",
                             f"jupyter-server pid {info.get('pid')} on a unix socket")
            url = str(info.get("url") or "")
            if url and probe(url):
                return Route("proxy", f"{base_url}{PROXY_SEGMENT}/{{port}}",
                             f"jupyter-server pid {info.get('pid')} at {url} has the leafmap_tiles extension")
            why_not = f"jupyter-server pid {info.get('pid')} at {url} lacks the leafmap_tiles extension"
        else:
            hub = env.get("JUPYTERHUB_SERVICE_PREFIX") or ""
            if hub.strip("/"):
                hub_url = env.get("JUPYTERHUB_SERVICE_URL")
                base_url = _slashed(hub)
                if not hub_url or probe(hub_url.rstrip("/") + "/"):
                    return Route("proxy", f"{base_url}{PROXY_SEGMENT}/{{port}}",
                                 f"JupyterHub single-user server {hub_url or base_url}")
                why_not = f"JupyterHub server {hub_url} lacks the leafmap_tiles extension"
            else:
                why_not = "no running jupyter-server started this kernel"
    if comm_capable is None:
        comm_capable = _comm_capable()
    if comm_capable:
        return Route("comm", DIRECT, f"comm bridge: {why_not}")
    return Route("direct", DIRECT, f"direct loopback: {why_not}, and no comm-capable IPython kernel")


def kernel_server_info(environ: Mapping[str, str] | None = None,
                       runtime_dirs: list[str] | None = None) -> dict | None:
    """The info of the jupyter-server that started this kernel (the content of its
    ``jpserver-<pid>.json``: ``url``, ``base_url``, ``pid``, ``port``, ``sock`` ...), or
    ``None``.  A server is this kernel's when its pid is the kernel's
    ``JPY_PARENT_PID`` (set by jupyter_client when it launches a kernel) or the
    kernel's parent process; info files of dead servers are skipped, never removed."""
    env = os.environ if environ is None else environ
    pids = set()
    for value in (env.get("JPY_PARENT_PID"), os.getppid() if environ is None else None):
        try:
            pids.add(int(value))
        except (TypeError, ValueError):
            pass
    if not pids:
        return None
    for folder in runtime_dirs if runtime_dirs is not None else _runtime_dirs(env):
        for pid in pids:
            path = os.path.join(folder, f"jpserver-{pid}.json")
            try:
                with open(path, encoding="utf-8") as f:
                    info = json.load(f)
            except (OSError, ValueError):
                continue
            if isinstance(info, dict) and info.get("pid") == pid:
                return info
    return None


def _runtime_dirs(env: Mapping[str, str]) -> list[str]:
    dirs = []
    try:
        from jupyter_core.paths import jupyter_runtime_dir

        dirs.append(jupyter_runtime_dir())
    except Exception:  # pragma: no cover - jupyter_core missing or broken
        pass
    try:  # a kernel's connection file lives in its server's runtime folder
        from ipykernel.connect import get_connection_file

        dirs.append(os.path.dirname(get_connection_file()))
    except Exception:
        pass
    out = []
    for d in dirs:
        if d and d not in out and glob.glob(os.path.join(d, "jpserver-*.json")):
            out.append(d)
    return out


def probe_proxy(server_url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether the jupyter-server at ``server_url`` (its URL with base URL, e.g.
    ``http://127.0.0.1:8888/user/a/``) mounts our extension's proxy: its
    jupyter-loopback probe ``leafmap-tiles-proxy/__probe__`` answers 204 (the probe
    needs no token).  Any failure (refused, timeout, TLS) counts as no."""
    import requests

    url = server_url.rstrip("/") + f"/{PROXY_SEGMENT}/__probe__"
    try:
        with requests.Session() as s, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # urllib3's warning about the unverified local TLS
            s.trust_env = False  # the server is on this machine: never through an HTTP proxy
            r = s.get(url, timeout=timeout, verify=False, allow_redirects=False)
    except Exception:
        return False
    return r.status_code == 204


def _slashed(path: str) -> str:
    """``"user/a"`` -> ``"/user/a/"``; ``""`` or ``"/"`` -> ``"/"``."""
    inner = path.strip("/")
    return f"/{inner}/" if inner else "/"


def _comm_capable() -> bool:
    """An IPython kernel (ipykernel: its front end may open widget comms) with
    ``anywidget`` installed (jupyter-loopback's comm bridge is an anywidget)."""
    import importlib.util
    import sys

    ip_mod = sys.modules.get("IPython")
    if ip_mod is None:
        return False
    try:
        shell = ip_mod.get_ipython()
    except Exception:
        return False
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    return importlib.util.find_spec("anywidget") is not None
