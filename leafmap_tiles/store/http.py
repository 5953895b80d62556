"""A Terracotta-compatible HTTP server seen as a read-only key store:
``leafmap_tiles.store.connect("http://host:5000")``.

Works with ``leafmap-tiles serve`` and with Terracotta itself.  Keys, datasets and
metadata come from the server's ``/keys``, ``/datasets`` (paged) and
``/metadata/{keys}``; a dataset's "path" is the server's singleband tile URL
template (``.../singleband/<keys>/{z}/{x}/{y}.png``), so :meth:`Map.add_dataset` and
:meth:`Map.dataset_layers` show tiles that the remote server renders (the browser
must reach that server).  Writes raise :class:`~leafmap_tiles.errors.ReadOnlyStoreError`.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from ..errors import (
    DatasetNotFoundError,
    InvalidDatabaseError,
    InvalidKeyError,
    ReadOnlyStoreError,
    SourceTimeoutError,
    SourceUnreachableError,
    StoreError,
)
from .base import KeyStore, ReadOnly

#: Datasets asked per ``/datasets`` request when listing them all.
PAGE = 1000
TIMEOUT = 30.0


def _quote(value: str) -> str:
    return urllib.parse.quote(str(value), safe="")


def normalise_url(url: str) -> str:
    """``http(s)://host:port[/prefix]`` of a Terracotta server given as a URL or as
    ``host:port`` (Terracotta's ``connect`` spelling, read as ``http://host:port``),
    without a trailing ``/``.

    Raises:
        StoreError: neither an http(s) URL nor ``host[:port]`` (e.g. ``ftp://...``).
    """
    text = str(url).strip()
    if "://" not in text:
        text = "http://" + text
    parts = urllib.parse.urlsplit(text)
    try:
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        raise StoreError(f"expected http(s)://host:port or host:port of a Terracotta server, got {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StoreError(f"expected http(s)://host:port or host:port of a Terracotta server, got {url!r}")
    return text.rstrip("/")


class RemoteStore(ReadOnly, KeyStore):
    """Read-only view of a Terracotta-compatible server (see the module docstring).

    Args:
        url: the server's root, e.g. ``http://127.0.0.1:5000`` or ``localhost:5000``
            (no scheme: ``http://``, as ``terracotta connect``); a trailing ``/`` or a
            path prefix behind a proxy is fine.
        timeout: seconds per request.

    Raises:
        StoreError: ``url`` is neither an http(s) URL nor ``host:port``.
    """

    provider = "http"

    def __init__(self, url: str, timeout: float = TIMEOUT) -> None:
        super().__init__(normalise_url(url))
        self.url = self.path
        self.timeout = float(timeout)
        import requests

        self._session = requests.Session()
        self._metadata: dict[tuple[str, ...], dict] = {}
        self._colormaps: dict[str, bool] = {}

    # ------------------------------------------------------------ HTTP
    def _get(self, route: str, params: Mapping[str, str] | None = None) -> Any:
        import requests

        try:
            r = self._session.get(self.url + route, params=params, timeout=self.timeout)
        except requests.Timeout:
            raise SourceTimeoutError(f"{self.url} did not answer {route} within {self.timeout:.0f} s") from None
        except requests.ConnectionError as exc:
            raise SourceUnreachableError(f"cannot reach the Terracotta server {self.url}: {exc}") from None
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code == 404 and route.startswith("/metadata"):
            raise DatasetNotFoundError((body or {}).get("message") or f"no dataset at {route}")
        if r.status_code == 400:
            raise InvalidKeyError((body or {}).get("message") or r.text[:200])
        if r.status_code >= 400 or body is None:
            msg = (body or {}).get("message") if isinstance(body, dict) else None
            raise InvalidDatabaseError(
                f"{self.url}{route} answered HTTP {r.status_code}"
                + (f": {msg}" if msg else " (is it a Terracotta server?)")
            )
        return body

    def tile_url(self, kind: str, keys: Sequence[str], query: Mapping[str, Any] | None = None) -> str:
        """URL template ``<server>/<kind>/<keys>/{z}/{x}/{y}.png?<query>`` (``kind``:
        ``singleband``, ``rgb``, ``compute``); JSON values of ``query`` are encoded."""
        path = "/".join(_quote(k) for k in keys)
        url = f"{self.url}/{kind}/{path + '/' if path else ''}{{z}}/{{x}}/{{y}}.png"
        if query:
            enc = {k: (v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))) for k, v in query.items()
                   if v is not None}
            url += "?" + urllib.parse.urlencode(enc)
        return url

    def has_colormap(self, name: str) -> bool:
        """Whether the server knows the colormap ``name`` (asked once per name with
        ``/colormap?colormap=<name>``, which Terracotta answers 400 for an unknown
        name).

        Raises:
            SourceUnreachableError, SourceTimeoutError: the server cannot be asked.
        """
        hit = self._colormaps.get(name)
        if hit is None:
            try:
                self._get("/colormap", {"colormap": name, "stretch_range": "[0,1]", "num_values": "2"})
                hit = True
            except InvalidKeyError:  # its 400
                hit = False
            self._colormaps[name] = hit
        return hit

    # ------------------------------------------------------------ KeyStore
    @contextlib.contextmanager
    def connect(self, verify: bool = True):
        """No-op context (each call is one HTTP request); kept for the driver API."""
        yield self

    def _db_version(self) -> str:
        return "remote"

    def _db_keys(self) -> "OrderedDict[str, str]":
        body = self._get("/keys")
        keys = body.get("keys") if isinstance(body, dict) else None
        if not isinstance(keys, list):
            raise InvalidDatabaseError(f"{self.url}/keys is not a Terracotta answer")
        return OrderedDict((k["key"], k.get("description") or "") for k in keys)

    def _db_datasets(self, where, page, limit, order_by, ascending) -> dict[tuple[str, ...], str]:
        if any(len(v) == 0 for v in where.values()):
            return {}
        params: dict[str, str] = {}
        for k, vals in where.items():
            params[k] = vals[0] if len(vals) == 1 else "[" + ",".join(vals) + "]"  # Terracotta: [a,b]
        # Terracotta's /datasets has no order_by: the server's order (all keys,
        # ascending) is fetched and the order asked for is applied here
        reorder = (order_by and list(order_by) != list(self.key_names)) or not ascending
        out: dict[tuple[str, ...], str] = {}
        names = self.key_names
        if limit is not None:
            batches = [(page, limit)]
        else:
            batches = None
        n = 0
        while True:
            pg, lim = batches[0] if batches else (n, PAGE)
            body = self._get("/datasets", dict(params, page=str(pg), limit=str(lim)))
            rows = body.get("datasets") or []
            for row in rows:
                kv = tuple(str(row[k]) for k in names)
                out[kv] = self.tile_url("singleband", kv)
            if batches or len(rows) < lim:
                break
            n += 1
        if reorder:
            idx = [names.index(k) for k in (order_by or names)]
            items = sorted(out.items(), key=lambda kv: tuple(kv[0][i] for i in idx), reverse=not ascending)
            out = dict(items)
        return out

    def get_metadata(self, keys) -> dict[str, Any]:
        """Metadata of one dataset from ``/metadata/<keys>`` (cached), in the shape of
        :meth:`KeyStore.get_metadata` (``bounds`` W,S,E,N in EPSG:4326, ``range``...).

        Raises:
            InvalidKeyError, DatasetNotFoundError: as the server answers (400, 404).
        """
        keys_d = self._as_dict(keys, require_all=True)
        kv = tuple(keys_d[k] for k in self.key_names)
        hit = self._metadata.get(kv)
        if hit is not None:
            return hit
        body = self._get("/metadata/" + "/".join(_quote(v) for v in kv))
        md = {
            "bounds": tuple(body["bounds"]),
            "convex_hull": body.get("convex_hull"),
            "valid_percentage": body.get("valid_percentage"),
            "range": tuple(body["range"]),
            "mean": body.get("mean"),
            "stdev": body.get("stdev"),
            "percentiles": list(body.get("percentiles") or []),
            "metadata": body.get("metadata"),
        }
        if len(self._metadata) > 4096:
            self._metadata.clear()
        self._metadata[kv] = md
        return md

    def _refuse(self, what: str) -> NoReturn:
        raise ReadOnlyStoreError(f"{self.url} is a remote Terracotta server (read-only): cannot {what}")

    def __repr__(self) -> str:
        return f"RemoteStore({self.url!r})"
