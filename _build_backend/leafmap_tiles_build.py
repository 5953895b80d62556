"""Build backend: setuptools' own (``setuptools.build_meta``), with one addition for
editable installs.

A wheel install puts ``[tool.setuptools.data-files]`` (the config file that enables our
jupyter-server extension, ``etc/jupyter/jupyter_server_config.d/leafmap_tiles.json``)
under ``sys.prefix``.  setuptools' editable wheels (PEP 660) carry only the import hook,
so ``pip install -e .`` alone left the extension disabled and the proxy path 404'd.
:func:`build_editable` adds the same files to the editable wheel's ``.data/data``
folder (PEP 427), which pip installs under ``sys.prefix`` and removes on uninstall, as
it does for a regular wheel.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import zipfile

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403  (every other PEP 517/660 hook)

# (install folder under sys.prefix, file in the source tree); must match
# [tool.setuptools.data-files] in pyproject.toml (tests/core/test_jupyter_extension.py
# checks that they agree)
DATA_FILES = [
    ("etc/jupyter/jupyter_server_config.d", "jupyter-config/jupyter_server_config.d/leafmap_tiles.json"),
]


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """setuptools' editable wheel, plus :data:`DATA_FILES` in its ``.data`` folder."""
    name = _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
    add_data_files(os.path.join(wheel_directory, name), DATA_FILES, root=os.getcwd())
    return name


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def add_data_files(wheel_path: str, data_files, root: str = ".") -> None:
    """Add ``data_files`` ([(folder, source file), ...]) to the wheel at ``wheel_path``
    as ``<name>-<version>.data/data/<folder>/<file name>``, and list them in its
    ``RECORD`` with their sha256 and size."""
    with zipfile.ZipFile(wheel_path) as zin:
        entries = [(info, zin.read(info.filename)) for info in zin.infolist()]
    record_name = next(i.filename for i, _ in entries if i.filename.endswith(".dist-info/RECORD"))
    data_dir = record_name.split("/")[0][: -len(".dist-info")] + ".data/data"
    added = []
    for folder, source in data_files:
        with open(os.path.join(root, source), "rb") as f:
            body = f.read()
        added.append((f"{data_dir}/{folder.strip('/')}/{os.path.basename(source)}", body))
    names = {name for name, _ in added}
    rows = []
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for info, body in entries:
            if info.filename == record_name or info.filename in names:
                continue
            zout.writestr(info, body)
        for name, body in added:
            zout.writestr(name, body)
        record = entries[[i.filename for i, _ in entries].index(record_name)][1].decode("utf-8")
        rows = [r for r in csv.reader(io.StringIO(record)) if r and r[0] not in names and r[0] != record_name]
        rows += [[name, _record_hash(body), str(len(body))] for name, body in added]
        rows.append([record_name, "", ""])
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        zout.writestr(record_name, text.getvalue())
    with open(wheel_path, "wb") as f:
        f.write(out.getvalue())
