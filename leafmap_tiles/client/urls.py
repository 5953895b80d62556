"""Where the browser reaches the tile server.

Order of precedence:
1. an explicit prefix: ``TileServer(client_prefix=...)`` or env ``LEAFMAP_TILES_CLIENT_PREFIX``
   (a URL or path with ``{port}``, e.g. ``"/proxy/{port}"`` for jupyter-server-proxy);
2. JupyterHub/Binder (``JUPYTERHUB_SERVICE_PREFIX`` or a non-root ``JPY_BASE_URL`` in a
   kernel): the Jupyter server's own proxy path from jupyter-loopback,
   ``<base_url>/leafmap-tiles-proxy/{port}``;
3. otherwise direct loopback ``http://127.0.0.1:{port}`` (local Jupyter).

For VS Code, Colab and other front ends without a jupyter-server, call
``jupyter_loopback.enable_comm_bridge()`` once; the map then asks jupyter-loopback to
route loopback URLs of our port through the comm bridge.
"""

from __future__ import annotations

import os

# the jupyter-loopback namespace of our server extension (leafmap_tiles._jupyter): only
# [a-z0-9][a-z0-9-]* is accepted there, hence the hyphen.
NAMESPACE = "leafmap-tiles"


def browser_base(port: int, client_prefix: str | None = None) -> str:
    prefix = client_prefix or os.environ.get("LEAFMAP_TILES_CLIENT_PREFIX")
    if prefix:
        return prefix.replace("{port}", str(port)).rstrip("/")
    from jupyter_loopback import autodetect_prefix, is_in_jupyter_kernel

    hub = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    base = os.environ.get("JPY_BASE_URL")
    if is_in_jupyter_kernel() and (hub or (base and base.strip("/"))):
        tmpl = autodetect_prefix(NAMESPACE)
        if tmpl:
            return tmpl.format(port=port).rstrip("/")
    return f"http://127.0.0.1:{port}"
