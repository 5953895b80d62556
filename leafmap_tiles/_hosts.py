"""Which URLs are on which host: the one rule used for credentials everywhere
(providers in the kernel, the tile server, collections).

A host is given as ``name`` (any port) or ``name:port``; comparison is case-insensitive
and default ports count (``https://h/`` is on ``h:443``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from leafmap_tiles import _paths

_DEFAULT_PORTS = {"http": 80, "https": 443}


def host_key(host: str) -> str:
    """Normalise a host given by a user or setting: 'Name:443' -> 'name:443'."""
    host = host.strip().lower()
    if "://" in host:
        host = urlsplit(host).netloc.lower()
    return host.rsplit("@", 1)[-1].rstrip("/")


def url_host(url: str) -> tuple[str, int | None]:
    """``(host name, port)`` of ``url``; ``("", None)`` for a URL that cannot be split
    (``http://[::1/x.tif``, a bad port): it is on no host, and reading it fails
    (``_paths.check_url`` says why)."""
    url = _paths.from_vsicurl(url)
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return "", None
    return (parts.hostname or "").lower(), port


def host_matches(url: str, host: str) -> bool:
    """True when ``url`` is on ``host`` (``name`` matches any port, ``name:port`` only that)."""
    name, port = url_host(url)
    key = host_key(host)
    if not name:
        return False
    if ":" in key and not key.startswith("["):
        kname, kport = key.rsplit(":", 1)
        return name == kname and str(port) == kport
    return name == key


