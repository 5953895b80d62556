"""Fixtures for the browser tests: a JupyterLab server on 127.0.0.1 (token, temporary
root), Debian's Chromium driven by Playwright, and a helper that opens a notebook,
runs all its cells and waits until our layers' tiles are on screen.

Skipped, with the reason, when Chromium, JupyterLab or Playwright is missing
(``scripts/setup_browser.sh`` installs Chromium; never a browser build of Playwright's).
Screenshots are kept under the session's pytest temporary folder (``browser-artefacts``),
or under ``$LEAFMAP_TILES_BROWSER_ARTEFACTS`` when set.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import free_port

from .pagetools import SCENARIOS, NotebookPage

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1280, "height": 1600}
# Test-side observation only: the comm bridge (jupyter-loopback) replaces an image's
# loopback URL with a blob: URL of the bytes it fetched over the comm; to tell which
# layer a tile belongs to, remember the URL that was asked for in ``data-requested-src``.
# Wraps whatever ``src`` setter gets installed on HTMLImageElement.prototype.
TILE_SRC_RECORDER = """
(() => {
  const define = Object.defineProperty;
  Object.defineProperty = function (obj, prop, desc) {
    if (typeof HTMLImageElement !== 'undefined' && obj === HTMLImageElement.prototype && prop === 'src'
        && desc && typeof desc.set === 'function') {
      const inner = desc.set;
      desc = Object.assign({}, desc, {set(v) {
        if (typeof v === 'string' && !v.startsWith('blob:')) this.setAttribute('data-requested-src', v);
        return inner.call(this, v);
      }});
    }
    return define.call(this, obj, prop, desc);
  };
})();
"""
LAB_START_TIMEOUT = 90.0


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def _chromium_path() -> str:
    return os.environ.get("LEAFMAP_TILES_CHROMIUM") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_requirements():
    missing = []
    chromium = _chromium_path()
    if not os.access(chromium, os.X_OK):
        missing.append(f"{chromium} not found (run scripts/setup_browser.sh, as root: apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright is not installed (pip install -e '.[dev]')")
    lab = Path(sys.executable).with_name("jupyter-lab")
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        missing.append("jupyterlab is not installed (pip install -e '.[dev]')")
    else:
        if not lab.exists():
            missing.append(f"{lab} not found")
    if missing:
        pytest.skip("browser tests need: " + "; ".join(missing))
    return {"chromium": chromium, "jupyter_lab": str(lab)}


_artefact_dirs: list[Path] = []


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory) -> Path:
    env = os.environ.get("LEAFMAP_TILES_BROWSER_ARTEFACTS")
    path = Path(env) if env else tmp_path_factory.mktemp("browser-artefacts", numbered=False)
    path.mkdir(parents=True, exist_ok=True)
    _artefact_dirs.append(path)
    return path


def pytest_terminal_summary(terminalreporter):
    for path in _artefact_dirs:
        shots = sorted(p.name for p in path.glob("*.png"))
        if shots:
            terminalreporter.write_line(f"browser screenshots ({len(shots)}) in {path}")


@pytest.fixture(scope="module")
def browser(browser_requirements):
    # per module, not per session: Playwright's sync API keeps an asyncio loop marked
    # running in the main thread while it is started, so every later test of the
    # session calling asyncio.run() (tests/core/test_render_scheduling.py) would fail
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=browser_requirements["chromium"], headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class JupyterLab:
    """A JupyterLab (``app="lab"``) or Jupyter Notebook 7 (``app="notebook"``) server this
    test session started (and stops); ``extension=False`` disables our jupyter-server
    extension in it (as on a server started before the package was installed)."""

    def __init__(self, jupyter_lab: str, root: Path, base_url: str = "/", kernel_env: dict | None = None,
                 app: str = "lab", extension: bool = True, block_loopback: bool = False, view: str = "",
                 **_):
        self.root = root
        # view="voila": notebooks opened through the server's Voila extension (/voila/render/...)
        self.view = view
        # the browser may reach no 127.0.0.1 port but this server's (as when the browser
        # is on another machine than the kernel)
        self.block_loopback = block_loopback
        self.app = app
        self.extension = extension
        self.base_url = "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{self.base_url}"
        notebooks = root / "notebooks"
        notebooks.mkdir(parents=True, exist_ok=True)
        self.notebooks = notebooks
        env = dict(os.environ)
        # never ask a kernel of this server to use a prefix from the test's own environment
        for var in ("JUPYTERHUB_SERVICE_PREFIX", "JPY_BASE_URL", "LEAFMAP_TILES_CLIENT_PREFIX"):
            env.pop(var, None)
        env.update(kernel_env or {})  # a kernel inherits the server's environment
        env.update({
            "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(root / "lab-settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(root / "lab-workspaces"),
            "JUPYTER_CONFIG_DIR": str(root / "jupyter-config"),  # no user config of this machine
            "PYTHONUNBUFFERED": "1",
        })
        if not extension:  # the user's config (JUPYTER_CONFIG_DIR) outranks the installed one
            (root / "jupyter-config").mkdir(exist_ok=True)
            (root / "jupyter-config" / "jupyter_server_config.json").write_text(
                '{"ServerApp": {"jpserver_extensions": {"leafmap_tiles._jupyter": false}}}')
        # no "get notified about Jupyter news?" toast over the page's bottom right
        notif = root / "lab-settings" / "@jupyterlab" / "apputils-extension"
        notif.mkdir(parents=True, exist_ok=True)
        (notif / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        self.log_path = root / "jupyterlab.log"
        self._log = open(self.log_path, "wb")
        exe = jupyter_lab if app == "lab" else str(Path(jupyter_lab).with_name("jupyter-notebook"))
        app_class = "LabApp" if app == "lab" else "JupyterNotebookApp"
        cmd = [
            exe, "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={notebooks}",
            f"--ServerApp.base_url={self.base_url}",
            f"--{app_class}.expose_app_in_browser=True",
        ]
        if app == "lab":
            cmd += ["--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self.proc = subprocess.Popen(cmd, cwd=notebooks, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def _wait_ready(self) -> None:
        import requests

        deadline = time.monotonic() + LAB_START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                r = requests.get(self.url + "api/status", headers=self.auth, timeout=5)
                if r.status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer within {LAB_START_TIMEOUT:.0f} s:\n{self.log_tail()}")
            time.sleep(0.2)
        # our jupyter-server extension must be active (or not): its proxy's probe answers 204
        r = requests.get(self.url + "leafmap-tiles-proxy/__probe__", timeout=5)
        if not self.extension:
            if r.status_code != 404:
                raise AssertionError(f"the extension was to be disabled, yet its probe answered {r.status_code}")
        elif r.status_code != 204:
            raise AssertionError(
                f"the leafmap_tiles jupyter-server extension is not active in this JupyterLab "
                f"({self.url}leafmap-tiles-proxy/__probe__ answered {r.status_code}); is the package "
                f"installed in this environment (pip install -e .)?\n{self.log_tail()}")

    @property
    def auth(self) -> dict:
        return {"Authorization": f"token {self.token}"}

    def write_notebook(self, name: str, cells: list[str]) -> str:
        import nbformat

        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
        nbformat.write(nb, str(self.notebooks / name))
        return name

    def notebook_url(self, name: str) -> str:
        if self.view == "voila":
            return f"{self.url}voila/render/{name}?token={self.token}"
        if self.app == "notebook":
            return f"{self.url}notebooks/{name}?token={self.token}"
        return f"{self.url}lab/tree/{name}?token={self.token}&reset"

    def stop(self) -> None:
        import requests

        if self.proc.poll() is None:
            try:  # shuts its kernels down too (a kernel's tile server follows its kernel)
                requests.post(self.url + "api/shutdown", headers=self.auth, timeout=10)
                self.proc.wait(timeout=20)
            except Exception:
                pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except Exception:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()


class Voila(JupyterLab):
    """A standalone Voila server (``voila <folder>``): no jupyter-server extension,
    notebooks executed by Voila and rendered as a page of outputs."""

    def __init__(self, jupyter_lab: str, root: Path, kernel_env: dict | None = None, block_loopback: bool = False, **_):
        self.root = root
        self.app = "voila"
        self.view = "voila"
        self.extension = False
        self.block_loopback = block_loopback
        self.base_url = "/"
        self.token = ""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.notebooks = root / "notebooks"
        self.notebooks.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items()
               if k not in ("JUPYTERHUB_SERVICE_PREFIX", "JPY_BASE_URL", "LEAFMAP_TILES_CLIENT_PREFIX")}
        env.update(kernel_env or {})
        env.update({"JUPYTER_RUNTIME_DIR": str(root / "runtime"), "JUPYTER_CONFIG_DIR": str(root / "jupyter-config"),
                    "PYTHONUNBUFFERED": "1"})
        self.log_path = root / "voila.log"
        self._log = open(self.log_path, "wb")
        cmd = [str(Path(jupyter_lab).with_name("voila")), str(self.notebooks), "--no-browser",
               f"--port={self.port}", "--Voila.ip=127.0.0.1", "--Voila.port_retries=0",
               "--VoilaConfiguration.show_tracebacks=True"]
        self.proc = subprocess.Popen(cmd, cwd=self.notebooks, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        import requests

        deadline = time.monotonic() + LAB_START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Voila exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.url, timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Voila did not answer within {LAB_START_TIMEOUT:.0f} s:\n{self.log_tail()}")
            time.sleep(0.2)

    @property
    def auth(self) -> dict:
        return {}

    def notebook_url(self, name: str) -> str:
        return f"{self.url}voila/render/{name}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture(scope="session")
def lab_for(browser_requirements, tmp_path_factory):
    """``lab_for(scenario)``: the JupyterLab server of that scenario (see SCENARIOS),
    started on first use and stopped at the end of the session."""
    labs: dict[str, JupyterLab] = {}

    def get(scenario: str) -> JupyterLab:
        if scenario not in labs:
            conf = SCENARIOS[scenario]
            cls = Voila if conf.get("app") == "voila" else JupyterLab
            labs[scenario] = cls(browser_requirements["jupyter_lab"], tmp_path_factory.mktemp(f"lab-{scenario}"), **conf)
        return labs[scenario]

    yield get
    for lab in labs.values():
        lab.stop()


def _allow_loopback_only(blocked: list, only_port: int | None = None):
    """Only 127.0.0.1 is reachable; with ``only_port``, only that port of it (the
    Jupyter server's: the kernel's tile server is then out of the browser's reach)."""
    def handler(route):
        parts = urlsplit(route.request.url)
        ok_host = parts.hostname == "127.0.0.1" and (only_port is None or parts.port == only_port)
        if route.request.url.startswith(("data:", "blob:")) or ok_host:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("blockedbyclient")

    return handler


@pytest.fixture(scope="module")
def open_notebook(browser, artefacts):
    """``open_notebook(lab, name)``: a fresh browser context (only 127.0.0.1 reachable),
    the notebook opened in JupyterLab with all its cells run.  Returns a
    :class:`NotebookPage`; contexts are closed at the end of the module."""
    contexts = []

    def open_(lab: JupyterLab, name: str) -> NotebookPage:
        context = browser.new_context(viewport=VIEWPORT)
        contexts.append(context)
        blocked: list[str] = []
        context.route("**/*", _allow_loopback_only(blocked, lab.port if lab.block_loopback else None))
        context.add_init_script(TILE_SRC_RECORDER)
        page = context.new_page()
        nbp = NotebookPage(page, lab, blocked, artefacts)
        nbp.open_and_run(name)
        return nbp

    yield open_
    for c in contexts:
        try:
            c.close()
        except Exception:
            pass
