"""The jupyter-server extension is enabled by an install alone, editable or not."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = "etc/jupyter/jupyter_server_config.d/leafmap_tiles.json"
sys.path.insert(0, str(ROOT / "_build_backend"))
import leafmap_tiles_build  # noqa: E402

sys.path.remove(str(ROOT / "_build_backend"))


def _pyproject() -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomli = pytest.importorskip("tomli")
        return tomli.loads((ROOT / "pyproject.toml").read_text())
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_backend_adds_what_pyproject_lists():
    conf = _pyproject()
    assert conf["build-system"]["build-backend"] == "leafmap_tiles_build"
    listed = [(folder, src) for folder, files in conf["tool"]["setuptools"]["data-files"].items() for src in files]
    assert listed == leafmap_tiles_build.DATA_FILES


def test_add_data_files_to_a_wheel(tmp_path):
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("demo.pth", "/src\n")
        z.writestr("demo-1.0.dist-info/METADATA", "Name: demo\n")
        z.writestr("demo-1.0.dist-info/RECORD", "demo.pth,sha256=x,5\ndemo-1.0.dist-info/METADATA,sha256=y,12\n"
                                                "demo-1.0.dist-info/RECORD,,\n")
    leafmap_tiles_build.add_data_files(str(wheel), leafmap_tiles_build.DATA_FILES, root=str(ROOT))
    with zipfile.ZipFile(wheel) as z:
        body = z.read(f"demo-1.0.data/data/{CONFIG}")
        rows = list(csv.reader(io.StringIO(z.read("demo-1.0.dist-info/RECORD").decode())))
    assert json.loads(body) == {"ServerApp": {"jpserver_extensions": {"leafmap_tiles._jupyter": True}}}
    by_name = {r[0]: r for r in rows}
    # sha256 of the file, urlsafe base64 without padding, as PEP 376 / 427 want
    import base64
    import hashlib

    want = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
    assert by_name[f"demo-1.0.data/data/{CONFIG}"][1:] == [want, str(len(body))]
    assert by_name["demo-1.0.dist-info/RECORD"][1:] == ["", ""]
    assert rows[-1][0] == "demo-1.0.dist-info/RECORD"
    assert "demo.pth" in by_name


def test_this_install_enables_the_extension():
    import sysconfig

    # the installed one, not the egg-info a build may leave in the source tree
    dists = list(metadata.distributions(name="leafmap_tiles", path=[sysconfig.get_paths()["purelib"]]))
    assert dists, "leafmap_tiles is not installed in this environment"
    dist = dists[0]
    files = [str(f) for f in dist.files or []]
    # installed by pip from the wheel (editable or not), so uninstall removes it too
    assert any(f.endswith(CONFIG) for f in files), files
    config = Path(sys.prefix) / CONFIG
    assert json.loads(config.read_text())["ServerApp"]["jpserver_extensions"]["leafmap_tiles._jupyter"] is True
    out = subprocess.run([str(Path(sys.executable).with_name("jupyter")), "server", "extension", "list"],
                         capture_output=True, text=True, timeout=120)
    text = out.stdout + out.stderr
    line = next((ln for ln in text.splitlines() if "leafmap_tiles._jupyter" in ln and "enabled" in ln), None)
    assert line, text
