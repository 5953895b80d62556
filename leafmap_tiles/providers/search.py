"""Search any STAC API: the client cache, the search and its ordering.

Users call it as :func:`leafmap_tiles.providers.stac.search` (or through a provider
preset, :mod:`.terrascope`, :mod:`.earth_search`)::

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
  that (and after ``max_items``). The other items of a kept date stay reachable through
  :func:`leafmap_tiles.providers.items.same_date_items`
  so that a date's layer can show all of its tiles.

Requests to a host with credentials
(:func:`leafmap_tiles.providers.access.set_credentials`) carry HTTP Basic auth; no
other host gets it.
"""

from __future__ import annotations

import base64
import threading
import warnings
from collections.abc import Sequence
from typing import Any

from leafmap_tiles import _credentials
from leafmap_tiles.providers.dates import datetime_range
from leafmap_tiles.providers.items import item_datetime, sort_key, unique_date_items
from leafmap_tiles.errors import ProviderError

__all__ = ["forget_client", "get_client", "list_collections", "request_modifier", "search"]

_lock = threading.RLock()  # the STAC client cache


def _basic_header(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return f"Basic {token}"


def request_modifier(request: Any) -> Any:
    """pystac-client's hook (a ``requests.Request`` in and out): add Basic auth only
    for hosts that have credentials."""
    creds = _credentials.for_url(request.url)
    if creds is not None:
        request.headers["Authorization"] = _basic_header(*creds)
    return request


_clients: dict[str, Any] = {}


def get_client(url: str) -> Any:
    """A cached ``pystac_client.Client`` for the STAC API at ``url`` (auth per host
    from :func:`leafmap_tiles.providers.access.set_credentials`, looked up at each
    request)."""
    from pystac_client import Client

    with _lock:
        client = _clients.get(url)
        if client is None:
            client = Client.open(url, request_modifier=request_modifier)
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


def _supports_filter(client: Any) -> bool:
    from pystac_client import ConformanceClasses

    try:
        return bool(client.conforms_to(ConformanceClasses.FILTER))
    except Exception:
        return False


def _supports_sort(client: Any) -> bool:
    from pystac_client import ConformanceClasses

    try:
        return bool(client.conforms_to(ConformanceClasses.SORT))
    except Exception:
        return False


def _sort_fields(sortby: Any) -> list[tuple[str, bool]]:
    """``[(field, descending), ...]`` of a pystac-client ``sortby`` value; ValueError
    for anything else."""
    if sortby is None:
        return []
    entries = sortby.split(",") if isinstance(sortby, str) else list(sortby)
    out: list[tuple[str, bool]] = []
    for e in entries:
        if isinstance(e, dict):
            field, direction = e.get("field"), str(e.get("direction", "asc")).lower()
            if not isinstance(field, str) or not field or direction not in ("asc", "desc"):
                raise ProviderError(f"sortby entry {e!r} must be {{'field': name, 'direction': 'asc' or 'desc'}}")
            out.append((field, direction == "desc"))
        elif isinstance(e, str) and e.strip().lstrip("+-"):
            e = e.strip()
            out.append((e.lstrip("+-"), e.startswith("-")))
        else:
            raise ProviderError(f"sortby must be like '-properties.datetime' or a list of such names, got {sortby!r}")
    return out


def _field_value(item: Any, field: str) -> Any:
    if field == "id":
        return item.id
    if field == "collection":
        return item.collection_id
    if field in ("datetime", "properties.datetime"):
        return item_datetime(item)
    name = field[len("properties."):] if field.startswith("properties.") else field
    value = item.properties.get(name)
    return value


def _sorted_by(items: list[Any], fields: list[tuple[str, bool]]) -> list[Any]:
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


def _cloud_ok(item: Any, max_cloud_cover: float) -> bool:
    value = item.properties.get("eo:cloud_cover")
    if value is None:
        return False
    try:
        return float(value) <= float(max_cloud_cover)
    except (TypeError, ValueError):
        return False


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
    sortby: str | Sequence[Any] | None = None,
    **kwargs: Any,
) -> list[Any]:
    """Search the STAC API at ``url``; see :mod:`leafmap_tiles.providers.search` for the
    semantics (bbox W,S,E,N in EPSG:4326; dates; cloud cover; order; counts).

    ``page_size`` is the number of items the server returns per page (its default
    when None); ``max_items`` the most items returned; ``sortby`` their order. Other
    keyword arguments go to ``pystac_client.Client.search`` (``query``, ``ids``,
    ``intersects``, ``filter`` ...). Raises ``ValueError`` for bad arguments."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ProviderError(f"limit must be an integer >= 0, got {limit!r}")
    if max_items is not None and (isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0):
        raise ProviderError(f"max_items must be an integer >= 0, got {max_items!r}")
    sort_fields = _sort_fields(sortby)
    if max_cloud_cover is not None and not (0 <= float(max_cloud_cover) <= 100):
        raise ProviderError(f"max_cloud_cover must be a percentage in [0, 100], got {max_cloud_cover!r}")
    if bbox is not None:
        bbox = [float(v) for v in bbox]
        if len(bbox) != 4:
            raise ProviderError("bbox must be (west, south, east, north)")
        if bbox[1] > bbox[3]:
            raise ProviderError("bbox south is greater than north")
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

    items: list[Any] | None = None
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
                raise ProviderError(f"{url} does not support CQL2 filters (filter=...)")
            params.pop("filter", None)
            params.pop("filter_lang", None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pystac-client's DoesNotConformTo noise
            items = list(client.search(**params).items())
    if client_side_cloud and max_cloud_cover is not None:
        items = [i for i in items if _cloud_ok(i, max_cloud_cover)]

    items.sort(key=sort_key)
    if sort_fields:
        items = _sorted_by(items, sort_fields)  # stable: ties stay in datetime order
    if max_items is not None:
        items = items[:max_items]
    if unique_dates:
        items = unique_date_items(items)
    if limit is not None:
        items = items[:limit]
    return items
