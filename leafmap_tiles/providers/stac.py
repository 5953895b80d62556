"""Search any STAC API and turn the results into map layers.

Generic helpers used by the provider presets (:mod:`.terrascope`,
:mod:`.earth_search`); they work with any STAC API URL::

    from leafmap_tiles.providers import stac
    items = stac.search("https://example.org/stac", "my-collection",
                        bbox=[5.0, 51.2, 5.1, 51.3], start="2025-05-01", end="2025-06-01",
                        max_cloud_cover=20)

Search semantics (the same for every provider):

* ``bbox`` is (west, south, east, north) in EPSG:4326.
* ``start``/``end`` are ``YYYY-MM-DD`` strings, ISO datetime strings, ``date`` or
  ``datetime`` objects. A date-only ``end`` includes that whole day; a date-only
  ``start`` begins at 00:00. Naive datetimes are UTC. Either may be None (open range).
* ``max_cloud_cover`` filters on ``eo:cloud_cover`` with a CQL2 filter. If the server
  does not support the Filter extension, the items are filtered here instead (an item
  without ``eo:cloud_cover`` does not match, as with CQL2 on a server).
* Items come back sorted by datetime (then id), or in the order of ``sortby``
  (pystac-client's form: ``"-properties.eo:cloud_cover"``, ``"+datetime,-id"``, a list
  of such strings or of ``{"field", "direction"}``): sorted by the server when it has the
  Sort extension, else here (items without the field last).
* ``max_items`` is the most items the search returns (pystac-client's meaning), the
  first ones in that order; without server-side sorting every page is read first, so
  they are the right ones.
* ``unique_dates=True`` keeps one item per calendar date (UTC); ``limit`` applies after
  that (and after ``max_items``). The other items of a kept date stay reachable through :func:`same_date_items`
  so that a date's layer can show all of its tiles.

Credentials are scoped to hosts: :func:`set_credentials` attaches HTTP Basic auth to
requests for the given hosts only (STAC API requests made here, rasters opened with
:func:`open_raster`, and the running tile server), never to any other host.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import os
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from leafmap_tiles.errors import AuthenticationError

__all__ = [
    "get_client",
    "list_collections",
    "search",
    "datetime_range",
    "unique_date_items",
    "same_date_items",
    "group_by_date",
    "get_asset_urls",
    "get_item_dates",
    "get_render_params",
    "set_credentials",
    "clear_credentials",
    "credentials_for",
    "set_login_hint",
    "open_raster",
    "clear_gdal_http_cache",
    "create_time_layers",
]

_SAME_DATE_ATTR = "_leafmap_tiles_same_date"

# ---------------------------------------------------------------------------- dates

from leafmap_tiles.providers.dates import datetime_range  # noqa: E402,F401  (public here since the first release)
from leafmap_tiles.providers.dates import parse_bound as _parse_bound  # noqa: E402,F401
from leafmap_tiles.providers.dates import to_utc as _to_utc  # noqa: E402


# ---------------------------------------------------------------------------- auth

_lock = threading.RLock()  # the STAC client cache

from leafmap_tiles import _credentials as _creds  # noqa: E402  (the one table of credentials)
from leafmap_tiles._hosts import host_matches  # noqa: E402,F401  (public here since the first release)


def credentials_for(url: str) -> tuple[str, str] | None:
    """(username, password) registered for the host of ``url``, else None."""
    return _creds.for_url(url)


def set_login_hint(hosts: Iterable[str] | Any, hint: str) -> None:
    """What an :class:`AuthenticationError` says for these hosts, e.g.
    ``"log in with leafmap_tiles.providers.terrascope.login()"``. ``hosts`` may be
    a callable returning the hosts, read at each lookup."""
    _creds.set_login_hint(hosts, hint)


def login_hint_for(url: str) -> str | None:
    """The login hint registered for the host of ``url``, else None."""
    return _creds.login_hint_for(url)


def set_credentials(hosts: Iterable[str], username: str, password: str) -> None:
    """Use HTTP Basic auth ``username``/``password`` for these hosts only.

    Applies to STAC API requests made by this module, to :func:`open_raster`, and to
    the running tile server (which is told at once and drops what it cached)."""
    keys = _creds.add(hosts, username, password)
    clear_gdal_http_cache()
    server = _tile_server()
    if server is not None:
        server.set_credentials(keys, username, password)


def clear_credentials(hosts: Iterable[str] | None = None) -> None:
    """Forget the credentials of these hosts (all hosts when None), here and in the
    running tile server."""
    keys = _creds.remove(hosts)
    clear_gdal_http_cache()
    server = _tile_server()
    if server is not None and keys:
        server.clear_credentials(keys)


def _tile_server():
    """The kernel's tile server handle (created if needed, but its process is not
    started here): credentials given to it now are pushed when it starts."""
    try:
        from leafmap_tiles.client import get_server
    except ImportError:
        return None
    try:
        return get_server(start=True)
    except Exception:  # a dead or half-started server must not break login/logout
        return None


def _basic_header(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return f"Basic {token}"


def _request_modifier(request):
    """pystac-client hook: add Basic auth only for hosts that have credentials."""
    creds = credentials_for(request.url)
    if creds is not None:
        request.headers["Authorization"] = _basic_header(*creds)
    return request


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
    ours = _creds.passwords()
    if (env_userpwd and env_userpwd in ours) or login_hint_for(url) is not None:
        # No credentials for this host. Provider credentials in the environment (set
        # by a provider's login() for the user's own rasterio reads) must not go to
        # it, and neither may those that GDAL's reused curl handles still hold after
        # a logout: an auth scheme whose token is not set makes curl send no
        # Authorization header at all.
        return {"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_USERPWD": ""}
    return {}


@contextlib.contextmanager
def open_raster(url: str, **kwargs) -> Iterator[Any]:
    """``rasterio.open(url)`` with the credentials of that URL's host only.

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


# ---------------------------------------------------------------------------- client


_clients: dict[str, Any] = {}


def get_client(url: str):
    """A cached ``pystac_client.Client`` for the STAC API at ``url`` (auth per host
    from :func:`set_credentials`, looked up at each request)."""
    from pystac_client import Client

    with _lock:
        client = _clients.get(url)
        if client is None:
            client = Client.open(url, request_modifier=_request_modifier)
            _clients[url] = client
        return client


def forget_client(url: str | None = None) -> None:
    """Drop the cached client of ``url`` (all when None)."""
    with _lock:
        if url is None:
            _clients.clear()
        else:
            _clients.pop(url, None)


def list_collections(url: str) -> list[str]:
    """Ids of the collections of the STAC API at ``url``."""
    return [c.id for c in get_client(url).get_collections()]


def _supports_filter(client) -> bool:
    from pystac_client import ConformanceClasses

    try:
        return bool(client.conforms_to(ConformanceClasses.FILTER))
    except Exception:
        return False


def _supports_sort(client) -> bool:
    from pystac_client import ConformanceClasses

    try:
        return bool(client.conforms_to(ConformanceClasses.SORT))
    except Exception:
        return False


def _sort_fields(sortby) -> list[tuple[str, bool]]:
    """``[(field, descending), ...]`` of a pystac-client ``sortby`` value; ValueError
    for anything else."""
    if sortby is None:
        return []
    entries = sortby.split(",") if isinstance(sortby, str) else list(sortby)
    out = []
    for e in entries:
        if isinstance(e, dict):
            field, direction = e.get("field"), str(e.get("direction", "asc")).lower()
            if not isinstance(field, str) or not field or direction not in ("asc", "desc"):
                raise ValueError(f"sortby entry {e!r} must be {{'field': name, 'direction': 'asc' or 'desc'}}")
            out.append((field, direction == "desc"))
        elif isinstance(e, str) and e.strip().lstrip("+-"):
            e = e.strip()
            out.append((e.lstrip("+-"), e.startswith("-")))
        else:
            raise ValueError(f"sortby must be like '-properties.datetime' or a list of such names, got {sortby!r}")
    return out


def _field_value(item, field: str):
    if field == "id":
        return item.id
    if field == "collection":
        return item.collection_id
    if field in ("datetime", "properties.datetime"):
        when = item.datetime or item.common_metadata.start_datetime
        return None if when is None else _to_utc(when)
    name = field[len("properties."):] if field.startswith("properties.") else field
    value = item.properties.get(name)
    return value


def _sorted_by(items: list, fields: list[tuple[str, bool]]) -> list:
    """``items`` sorted by ``fields`` here (a server without the Sort extension);
    items without a field come last in either direction."""
    out = list(items)
    for field, desc in reversed(fields):
        have = [i for i in out if _field_value(i, field) is not None]
        missing = [i for i in out if _field_value(i, field) is None]
        try:
            have.sort(key=lambda i: _field_value(i, field), reverse=desc)
        except TypeError:  # mixed types: compare as text
            have.sort(key=lambda i: str(_field_value(i, field)), reverse=desc)
        out = have + missing
    return out


def _cloud_ok(item, max_cloud_cover: float) -> bool:
    value = item.properties.get("eo:cloud_cover")
    if value is None:
        return False
    try:
        return float(value) <= float(max_cloud_cover)
    except (TypeError, ValueError):
        return False


def _sort_key(item):
    when = item.datetime or item.common_metadata.start_datetime
    if when is None:
        when = _dt.datetime.min.replace(tzinfo=_dt.timezone.utc)
    return (_to_utc(when), item.id)


def _item_date(item) -> str:
    when = item.datetime or item.common_metadata.start_datetime
    return _to_utc(when).strftime("%Y-%m-%d")


def search(
    url: str,
    collection: str | Sequence[str] | None,
    bbox: Sequence[float] | None = None,
    start: Any = None,
    end: Any = None,
    max_cloud_cover: float | None = None,
    limit: int | None = None,
    unique_dates: bool = True,
    page_size: int | None = None,
    max_items: int | None = None,
    sortby: str | Sequence | None = None,
    **kwargs,
) -> list:
    """Search the STAC API at ``url``; see the module docstring for the semantics.

    ``page_size`` is the number of items the server returns per page (its default
    when None); ``max_items`` the most items returned; ``sortby`` their order. Other
    keyword arguments go to ``pystac_client.Client.search`` (``query``, ``ids``,
    ``intersects``, ``filter`` ...). Raises ``ValueError`` for bad arguments."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be an integer >= 0, got {limit!r}")
    if max_items is not None and (isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0):
        raise ValueError(f"max_items must be an integer >= 0, got {max_items!r}")
    sort_fields = _sort_fields(sortby)
    if max_cloud_cover is not None and not (0 <= float(max_cloud_cover) <= 100):
        raise ValueError(f"max_cloud_cover must be a percentage in [0, 100], got {max_cloud_cover!r}")
    if bbox is not None:
        bbox = [float(v) for v in bbox]
        if len(bbox) != 4:
            raise ValueError("bbox must be (west, south, east, north)")
        if bbox[1] > bbox[3]:
            raise ValueError("bbox south is greater than north")
    client = get_client(url)
    params: dict[str, Any] = dict(kwargs)
    if collection is not None:
        params["collections"] = [collection] if isinstance(collection, str) else list(collection)
    if bbox is not None:
        params["bbox"] = bbox
    interval = datetime_range(start, end)
    if interval is not None:
        params["datetime"] = interval
    if page_size is not None:
        params["limit"] = int(page_size)
    server_sort = bool(sort_fields) and _supports_sort(client)
    if server_sort:
        params["sortby"] = [{"field": f, "direction": "desc" if desc else "asc"} for f, desc in sort_fields]
        if max_items is not None:
            params["max_items"] = max_items  # the server's order is the one asked for
    if max_items == 0:
        return []

    client_side_cloud = False
    if max_cloud_cover is not None:
        cloud_filter = {"op": "<=", "args": [{"property": "eo:cloud_cover"},
                                              float(max_cloud_cover)]}
        if "filter" in params:
            params["filter"] = {"op": "and", "args": [params["filter"], cloud_filter]}
        else:
            params["filter"] = cloud_filter
        params["filter_lang"] = "cql2-json"
        if not _supports_filter(client):
            client_side_cloud = True

    items = None
    if max_cloud_cover is not None and not client_side_cloud:
        try:
            items = list(client.search(**params).items())
        except Exception as exc:  # the server claimed Filter but refused it
            from pystac_client.exceptions import APIError

            if not isinstance(exc, APIError) or "filter" not in str(exc).lower():
                raise
            client_side_cloud = True
    if items is None:
        if client_side_cloud:
            if kwargs.get("filter") is not None:
                raise ValueError(f"{url} does not support CQL2 filters (filter=...)")
            params.pop("filter", None)
            params.pop("filter_lang", None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pystac-client's DoesNotConformTo noise
            items = list(client.search(**params).items())
    if client_side_cloud:
        items = [i for i in items if _cloud_ok(i, max_cloud_cover)]

    items.sort(key=_sort_key)
    if sort_fields:
        items = _sorted_by(items, sort_fields)  # stable: ties stay in datetime order
    if max_items is not None:
        items = items[:max_items]
    if unique_dates:
        items = unique_date_items(items)
    if limit is not None:
        items = items[:limit]
    return items


# ---------------------------------------------------------------------------- items


def group_by_date(items: Iterable) -> dict[str, list]:
    """{``YYYY-MM-DD``: items of that date} in date order; the items that
    :func:`unique_date_items` folded into a kept item are included."""
    groups: dict[str, list] = {}
    for item in sorted(items, key=_sort_key):
        bucket = groups.setdefault(_item_date(item), [])
        for member in same_date_items(item):
            if all(member is not m and member.id != m.id for m in bucket):
                bucket.append(member)
    return groups


def unique_date_items(items: Iterable) -> list:
    """One item per date (the earliest), sorted by datetime. Each kept item remembers
    the others of its date (:func:`same_date_items`)."""
    groups: dict[str, list] = {}
    for item in sorted(items, key=_sort_key):
        groups.setdefault(_item_date(item), []).append(item)
    kept = []
    for group in groups.values():
        first = group[0]
        members: list = []
        for item in group:
            for member in same_date_items(item):
                if all(member.id != m.id for m in members):
                    members.append(member)
        setattr(first, _SAME_DATE_ATTR, members)
        kept.append(first)
    return kept


def same_date_items(item) -> list:
    """The item and the items of the same date that :func:`unique_date_items` left out."""
    return list(getattr(item, _SAME_DATE_ATTR, None) or [item])


def get_asset_urls(items: Iterable, asset_key: str) -> list[str]:
    """The ``href`` of asset ``asset_key`` of each item that has it."""
    return [item.assets[asset_key].href for item in items if asset_key in item.assets]


def get_item_dates(items: Iterable) -> list[str]:
    """``YYYY-MM-DD`` (UTC) of each item."""
    return [_item_date(item) for item in items]


def _first(*values):
    for v in values:
        if v is not None:
            return v
    return None


def get_render_params(item, asset_key: str) -> dict[str, float | None]:
    """{"scale", "offset", "nodata"} of an asset from its STAC metadata.

    Reads ``raster:scale``/``raster:offset``/``nodata`` on the asset (raster
    extension v2, STAC 1.1) or the first entry of ``raster:bands`` (``scale``,
    ``offset``, ``nodata``; v1); missing values are None."""
    asset = item.assets[asset_key]
    fields = asset.extra_fields
    bands = fields.get("raster:bands") or fields.get("bands") or []
    band = bands[0] if bands and isinstance(bands[0], dict) else {}
    scale = _first(fields.get("raster:scale"), band.get("raster:scale"), band.get("scale"))
    offset = _first(fields.get("raster:offset"), band.get("raster:offset"), band.get("offset"))
    nodata = _first(fields.get("nodata"), band.get("nodata"), fields.get("raster:nodata"))

    def num(v):
        if v is None:
            return None
        if isinstance(v, str):  # "nan", "inf" are allowed by the spec
            return float(v)
        return float(v) if not isinstance(v, int) else v

    return {"scale": num(scale), "offset": num(offset), "nodata": num(nodata)}


# ---------------------------------------------------------------------------- layers


def time_layer_sources(items: Iterable, asset_key: str) -> dict[str, dict]:
    """{date: {"urls": [...], "scale", "offset", "nodata"}}: what each date's layer
    shows (all tiles of the date, as a mosaic) with the item's scale/offset/nodata."""
    out: dict[str, dict] = {}
    for date, group in group_by_date(items).items():
        with_asset = [i for i in group if asset_key in i.assets]
        if not with_asset:
            continue
        params = get_render_params(with_asset[0], asset_key)
        out[date] = {"urls": [i.assets[asset_key].href for i in with_asset], **params}
    return out


def create_time_layers(
    items: Iterable,
    asset_key: str | None = None,
    colormap: str | None = "RdYlGn",
    vmin: float | None = None,
    vmax: float | None = None,
    assets: Sequence[str] | str | None = None,
    expression: str | None = None,
    **style,
) -> dict:
    """``{date: RasterTileLayer}`` for ``Map.add_time_slider``, one layer per date
    (``YYYY-MM-DD``) through the kernel's tile server.  A date with several items
    (neighbouring tiles) shows them all as one mosaic.  Each item's nodata overrides
    the file's; its ``raster:scale``/``raster:offset`` travel with the layer
    (``layer.scale``/``layer.offset``) for colorbars in physical units.  Protected
    assets (hosts with credentials) are never cached by the browser.

    ``assets=["red", "nir"]`` with ``expression="(nir-red)/(nir+red)"`` reads several
    assets of each item as the bands of one raster (each asset's nodata, scale/offset
    applied, so the expression is in physical units; ``vmin``/``vmax`` too); see
    :mod:`leafmap_tiles.providers.assets` (``unscale=``, ``resolution=``).  Three
    assets without an expression give an RGB composite (use ``colormap=None``).

    Raises the errors of ``Map.add_raster`` (e.g. ``AuthenticationError`` before
    login) before any layer is returned."""
    from leafmap_tiles.map.layers import make_raster_layer

    if assets is not None or expression is not None:
        from leafmap_tiles.providers import assets as _assets

        names = _assets.asset_names(assets if assets is not None else asset_key)
        if len(names) > 1 and expression is None and colormap == "RdYlGn":
            colormap = None  # an RGB composite has no colormap
        return _assets.time_layers(items, assets=names, expression=expression, colormap=colormap,
                                   vmin=vmin, vmax=vmax, **style)
    if asset_key is None:
        raise TypeError("create_time_layers needs asset_key= (one asset) or assets=[...]")

    layers = {}
    try:
        for date, source in time_layer_sources(items, asset_key).items():
            urls = source["urls"]
            layers[date] = make_raster_layer(
                None, urls if len(urls) > 1 else urls[0], name=date, colormap=colormap,
                vmin=vmin, vmax=vmax, nodata=source["nodata"], scale=source["scale"],
                offset=source["offset"], protected=any(credentials_for(u) for u in urls), **style,
            )
    except Exception:
        for layer in layers.values():  # nothing half-made stays registered
            layer.release()
        raise
    return layers


def cleanup_tile_servers() -> int:
    """Stop the tile-server processes that this package started (by their process
    ids, from ``leafmap_tiles.client.running_server_pids()``) and return how many
    were stopped. No other process is touched, whatever its command line."""
    try:
        from leafmap_tiles.client import running_server_pids
    except ImportError:
        return 0
    import psutil

    pids = [int(p) for p in running_server_pids()]
    if not pids:
        return 0
    server = _tile_server()
    close = getattr(server, "close", None)
    if close is not None:  # let the client forget its server cleanly
        try:
            close()
        except Exception:
            pass
    procs = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                proc.terminate()
            procs.append(proc)
        except psutil.NoSuchProcess:
            procs.append(None)
    live = [p for p in procs if p is not None]
    _, alive = psutil.wait_procs(live, timeout=5)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    return len(pids)


_gdal_auth_options = gdal_auth_options  # the name before issue 17 (branches written before it)
