"""jupyter-server extension: mounts jupyter-loopback's proxy at
``<base_url>/leafmap-tiles-proxy/<port>/...`` so that browsers on JupyterHub/Binder
reach the kernel's tile server through the Jupyter server (loopback only, behind
Jupyter's own authentication; GET/HEAD forwarded by :mod:`.proxy`, which cancels a
tile the browser aborted).  Enabled by
``etc/jupyter/jupyter_server_config.d/leafmap_tiles.json`` installed with the package.
"""

from __future__ import annotations

# jupyter-loopback accepts only [a-z0-9][a-z0-9-]* as a namespace (an underscore makes
# setup_proxy_handler raise and the extension fail to load); must equal
# leafmap_tiles.client.urls.NAMESPACE, which the kernel uses to build the same path.
NAMESPACE = "leafmap-tiles"


def _jupyter_server_extension_points():
    return [{"module": "leafmap_tiles._jupyter"}]


def _load_jupyter_server_extension(server_app):
    from jupyter_loopback import setup_proxy_handler

    from leafmap_tiles._jupyter.proxy import TileProxyHandler

    setup_proxy_handler(server_app.web_app, namespace=NAMESPACE, handler_cls=TileProxyHandler)
