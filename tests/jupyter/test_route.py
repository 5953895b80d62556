"""How the kernel finds the browser's way to the tile server (leafmap_tiles.client.urls),
against real jupyter-servers started here: with our extension (base URL ``/`` as a plain
remote Jupyter, and a Hub-like base URL) and without it."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
import requests

from leafmap_tiles.client import urls

JUPYTER_SERVER = Path(sys.executable).with_name("jupyter-server")


class Server:
    def __init__(self, root: Path, base_url: str = "/", extension: bool = True):
        self.runtime = root / "runtime"
        self.port = free_port()
        self.base_url = base_url
        env = {k: v for k, v in os.environ.items()
               if k not in ("JUPYTERHUB_SERVICE_PREFIX", "JPY_BASE_URL", "LEAFMAP_TILES_CLIENT_PREFIX")}
        env.update(JUPYTER_RUNTIME_DIR=str(self.runtime), JUPYTER_CONFIG_DIR=str(root / "config"))
        cmd = [str(JUPYTER_SERVER), "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={secrets.token_hex(8)}",
               f"--ServerApp.root_dir={root}", f"--ServerApp.base_url={base_url}"]
        if not extension:  # the user's config (JUPYTER_CONFIG_DIR) outranks the installed one
            (root / "config").mkdir(exist_ok=True)
            (root / "config" / "jupyter_server_config.json").write_text(
                json.dumps({"ServerApp": {"jpserver_extensions": {"leafmap_tiles._jupyter": False}}}))
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log = open(root / "server.log", "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        info = self.runtime / f"jpserver-{self.proc.pid}.json"
        deadline = time.monotonic() + 60
        while not info.exists() or not info.read_text().strip():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"jupyter-server did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.1)
        self.info = json.loads(info.read_text())

    def kernel_env(self) -> dict:
        """What jupyter_client puts in the environment of a kernel this server starts."""
        return {"JPY_PARENT_PID": str(self.proc.pid), "JPY_SESSION_NAME": "x.ipynb"}

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    if not JUPYTER_SERVER.exists():
        pytest.skip(f"{JUPYTER_SERVER} not found (pip install -e '.[dev]')")
    made = {}
    try:
        made["root"] = Server(tmp_path_factory.mktemp("root"), "/")
        made["hub"] = Server(tmp_path_factory.mktemp("hub"), "/user/alice/")
        made["without"] = Server(tmp_path_factory.mktemp("without"), "/", extension=False)
        yield made
    finally:
        for s in made.values():
            s.stop()


def test_probe_answers_only_where_the_extension_is(servers):
    assert urls.probe_proxy(servers["root"].info["url"]) is True
    assert urls.probe_proxy(servers["hub"].info["url"]) is True
    assert servers["hub"].info["url"].endswith("/user/alice/")
    assert urls.probe_proxy(servers["without"].info["url"]) is False
    # nothing listening
    assert urls.probe_proxy(f"http://127.0.0.1:{free_port()}/") is False


def test_plain_remote_jupyter_with_base_url_root_uses_the_proxy(servers):
    s = servers["root"]
    # no JupyterHub variable, base URL "/": as on a VM or in Docker behind an SSH tunnel
    r = urls.detect_route(s.kernel_env(), runtime_dirs=[str(s.runtime)], comm_capable=True)
    assert r.kind == "proxy", r
    assert r.base(41234) == "/leafmap-tiles-proxy/41234"
    # the path answers through that server (its probe route; the tile routes are in
    # tests/browser)
    assert requests.get(f"http://127.0.0.1:{s.port}/leafmap-tiles-proxy/41234/__probe__", timeout=5).status_code == 204


def test_hub_base_url_from_the_servers_own_info(servers):
    s = servers["hub"]
    r = urls.detect_route(s.kernel_env(), runtime_dirs=[str(s.runtime)], comm_capable=True)
    assert (r.kind, r.base(5)) == ("proxy", "/user/alice/leafmap-tiles-proxy/5")


def test_server_without_the_extension_gives_the_comm_bridge(servers):
    s = servers["without"]
    r = urls.detect_route(s.kernel_env(), runtime_dirs=[str(s.runtime)], comm_capable=True)
    assert r.kind == "comm", r
    assert r.base(5) == "http://127.0.0.1:5"
    assert "lacks the leafmap_tiles extension" in r.reason
    # and outside an IPython kernel, the direct URL
    r = urls.detect_route(s.kernel_env(), runtime_dirs=[str(s.runtime)], comm_capable=False)
    assert (r.kind, r.base(5)) == ("direct", "http://127.0.0.1:5")


def test_kernel_of_another_server_is_not_matched(servers):
    # a kernel whose parent is not a jupyter-server (VS Code, nbclient, Voila)
    env = {"JPY_PARENT_PID": str(os.getpid())}
    dirs = [str(s.runtime) for k, s in servers.items()]
    assert urls.kernel_server_info(env, dirs) is None
    r = urls.detect_route(env, runtime_dirs=dirs, comm_capable=True)
    assert r.kind == "comm" and "no running jupyter-server" in r.reason


def test_explicit_prefix_wins(servers):
    s = servers["root"]
    env = dict(s.kernel_env(), LEAFMAP_TILES_CLIENT_PREFIX="/proxy/{port}/")
    r = urls.detect_route(env, runtime_dirs=[str(s.runtime)], comm_capable=True)
    assert (r.kind, r.base(7)) == ("explicit", "/proxy/7")
    assert urls.route("https://tiles.example.org/{port}").base(7) == "https://tiles.example.org/7"


def test_hub_variables_without_an_info_file():
    env = {"JPY_PARENT_PID": str(os.getpid()), "JUPYTERHUB_SERVICE_PREFIX": "/user/bob/"}
    r = urls.detect_route(env, runtime_dirs=[], comm_capable=True)
    assert (r.kind, r.base(9)) == ("proxy", "/user/bob/leafmap-tiles-proxy/9")
    # the Hub tells the server's own URL: probed, and nothing answers there
    env["JUPYTERHUB_SERVICE_URL"] = f"http://127.0.0.1:{free_port()}/user/bob/"
    assert urls.detect_route(env, runtime_dirs=[], comm_capable=True).kind == "comm"


def test_not_a_kernel_is_direct():
    r = urls.detect_route({}, runtime_dirs=[], comm_capable=False)
    assert (r.kind, r.base(3)) == ("direct", "http://127.0.0.1:3")
    # this pytest process is no IPython kernel
    assert urls._comm_capable() is False
