"""Who may read what: a provider's credentials, scoped to its hosts, and the GDAL
options and raster opening that use them.

:func:`set_credentials` writes the kernel's one table
(:mod:`leafmap_tiles._credentials`), drops GDAL's HTTP cache (GDAL remembers a 401
per URL) and tells the running tile server at once; :func:`gdal_auth_options` gives a
URL the credentials of its own host and no one else's; :func:`open_raster` is
``rasterio.open`` with those options and one classification of what failed
(:func:`leafmap_tiles.gdal_errors.classify`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Union

from leafmap_tiles import _credentials
from leafmap_tiles.providers import servers
from leafmap_tiles.errors import AuthenticationError

__all__ = [
    "clear_credentials",
    "clear_gdal_http_cache",
    "credentials_for",
    "forget_gdal_config",
    "gdal_auth_options",
    "login_hint_for",
    "open_raster",
    "set_credentials",
    "set_login_hint",
]


def credentials_for(url: str) -> tuple[str, str] | None:
    """(username, password) registered for the host of ``url``, else None."""
    return _credentials.for_url(url)


def set_login_hint(hosts: Union[Iterable[str], Callable[[], Iterable[str]]], hint: str) -> None:
    """What an :class:`AuthenticationError` says for these hosts, e.g.
    ``"log in with leafmap_tiles.providers.terrascope.login()"``. ``hosts`` may be
    a callable returning the hosts, read at each lookup."""
    _credentials.set_login_hint(hosts, hint)


def login_hint_for(url: str) -> str | None:
    """The login hint registered for the host of ``url``, else None."""
    return _credentials.login_hint_for(url)


def set_credentials(hosts: Iterable[str], username: str, password: str) -> None:
    """Use HTTP Basic auth ``username``/``password`` for these hosts only (``name``
    or ``name:port``).

    Applies to STAC API requests (:mod:`leafmap_tiles.providers.search`), to
    :func:`open_raster`, and to the running tile server (which is told at once and
    drops what it cached)."""
    keys = _credentials.add(hosts, username, password)
    clear_gdal_http_cache()
    server = servers.tile_server()
    if server is not None:
        server.set_credentials(keys, username, password)


def clear_credentials(hosts: Iterable[str] | None = None) -> None:
    """Forget the credentials of these hosts (all hosts when None), here and in the
    running tile server."""
    keys = _credentials.remove(hosts)
    clear_gdal_http_cache()
    server = servers.tile_server()
    if server is not None and keys:
        server.clear_credentials(keys)


# ---------------------------------------------------------------------------- GDAL


def clear_gdal_http_cache() -> None:
    """Drop GDAL's /vsicurl/ cache in this process (GDAL remembers a 401 per URL, so
    a raster that failed before login would keep failing after it)."""
    try:
        import rasterio  # noqa: F401  (loads GDAL)

        from leafmap_tiles import _gdal

        _gdal.clear_caches()
    except Exception:  # best effort: no GDAL library found by name
        pass


def forget_gdal_config(values: dict[str, str]) -> None:
    """Unset the GDAL config options ``{name: value}`` still holding these values.

    Removing a variable from ``os.environ`` is not enough: leaving a
    ``rasterio.Env`` that set the same option writes the environment's value back
    as a process-wide GDAL option, which would keep sending old credentials
    (to every host) after a logout."""
    try:
        from rasterio._env import del_gdal_config, get_gdal_config
    except ImportError:  # pragma: no cover
        return
    for name, value in values.items():
        try:
            current = get_gdal_config(name, normalize=False)
        except TypeError:
            current = get_gdal_config(name)
        if current is not None and str(current) == str(value):
            del_gdal_config(name)


def gdal_auth_options(url: str) -> dict[str, str]:
    """GDAL configuration options (for ``rasterio.Env``) that give ``url`` the
    credentials of its own host only, and no one else's (see :func:`set_credentials`)."""
    creds = credentials_for(url)
    if creds is not None:
        return {"GDAL_HTTP_AUTH": "BASIC", "GDAL_HTTP_USERPWD": f"{creds[0]}:{creds[1]}"}
    env_userpwd = os.environ.get("GDAL_HTTP_USERPWD")
    ours = _credentials.passwords()
    if (env_userpwd and env_userpwd in ours) or login_hint_for(url) is not None:
        # No credentials for this host. Provider credentials in the environment (set
        # by a provider's login() for the user's own rasterio reads) must not go to
        # it, and neither may those that GDAL's reused curl handles still hold after
        # a logout: an auth scheme whose token is not set makes curl send no
        # Authorization header at all.
        return {"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_USERPWD": ""}
    return {}


@contextlib.contextmanager
def open_raster(url: str, **kwargs: Any) -> Iterator[Any]:
    """``rasterio.open(url)`` with the credentials of that URL's host only (a
    context manager yielding the open dataset; ``kwargs`` go to ``rasterio.open``).

    Failures are classified by :func:`leafmap_tiles.gdal_errors.classify`:
    :class:`~leafmap_tiles.errors.AuthenticationError` (a ``PermissionError``) naming
    how to log in when the host refuses the request,
    :class:`~leafmap_tiles.errors.SourceNotFoundError` for a 404 or a missing file,
    ``SourceTimeoutError``/``SourceUnreachableError`` for a slow or unreachable host,
    ``InvalidSourceError`` for anything else."""
    import rasterio
    from rasterio.errors import RasterioIOError

    from leafmap_tiles.gdal_errors import classify

    options = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", **gdal_auth_options(url)}
    with rasterio.Env(**options):
        t0 = time.monotonic()
        try:
            ds = rasterio.open(url, **kwargs)
        except RasterioIOError as exc:
            err = classify(url, exc, "open", elapsed=time.monotonic() - t0)
            if isinstance(err, AuthenticationError):
                text = str(exc).strip()
                hint = login_hint_for(url)
                msg = f"{url} refused access ({text}): " + (hint or "log in to the provider of this host first")
                if credentials_for(url) is not None:
                    msg = (f"{url} refused the credentials given at login "
                           f"({text}): check the username and password and log in again")
                err = AuthenticationError(msg)
            raise err from exc
        try:
            yield ds
        finally:
            ds.close()
