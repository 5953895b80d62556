"""STAC items by date: the grouping that time layers and searches share.

A date is the item's ``datetime`` (or ``start_datetime``) as a UTC calendar date,
``YYYY-MM-DD``.  :func:`unique_date_items` keeps one item per date and remembers the
others of that date, so that :func:`group_by_date` (and a date's layer) still shows
all of a date's tiles.  The items are ``pystac.Item`` objects; nothing here reads
the network.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import Any

from leafmap_tiles.providers.dates import to_utc
from leafmap_tiles.errors import ProviderError

__all__ = [
    "get_asset_urls",
    "get_item_dates",
    "get_render_params",
    "group_by_date",
    "item_date",
    "item_datetime",
    "same_date_items",
    "sort_key",
    "unique_date_items",
]

_SAME_DATE_ATTR = "_leafmap_tiles_same_date"
_EARLIEST = _dt.datetime.min.replace(tzinfo=_dt.timezone.utc)


def item_datetime(item: Any) -> _dt.datetime | None:
    """The item's ``datetime`` (else its ``start_datetime``) in UTC; None when it has
    neither."""
    when = item.datetime or item.common_metadata.start_datetime
    return None if when is None else to_utc(when)


def sort_key(item: Any) -> tuple[_dt.datetime, str]:
    """(UTC datetime, id): the order of search results; items without a date first."""
    return (item_datetime(item) or _EARLIEST, item.id)


def item_date(item: Any) -> str:
    """The item's UTC calendar date, ``YYYY-MM-DD``; ValueError when it has no date."""
    when = item_datetime(item)
    if when is None:
        raise ProviderError(f"STAC item {item.id!r} has neither datetime nor start_datetime")
    return when.strftime("%Y-%m-%d")


def group_by_date(items: Iterable[Any]) -> dict[str, list[Any]]:
    """{``YYYY-MM-DD``: items of that date} in date order; the items that
    :func:`unique_date_items` folded into a kept item are included."""
    groups: dict[str, list[Any]] = {}
    for item in sorted(items, key=sort_key):
        bucket = groups.setdefault(item_date(item), [])
        for member in same_date_items(item):
            if all(member is not m and member.id != m.id for m in bucket):
                bucket.append(member)
    return groups


def unique_date_items(items: Iterable[Any]) -> list[Any]:
    """One item per date (the earliest), sorted by datetime. Each kept item remembers
    the others of its date (:func:`same_date_items`)."""
    groups: dict[str, list[Any]] = {}
    for item in sorted(items, key=sort_key):
        groups.setdefault(item_date(item), []).append(item)
    kept = []
    for group in groups.values():
        first = group[0]
        members: list[Any] = []
        for item in group:
            for member in same_date_items(item):
                if all(member.id != m.id for m in members):
                    members.append(member)
        setattr(first, _SAME_DATE_ATTR, members)
        kept.append(first)
    return kept


def same_date_items(item: Any) -> list[Any]:
    """The item and the items of the same date that :func:`unique_date_items` left out."""
    return list(getattr(item, _SAME_DATE_ATTR, None) or [item])


def get_asset_urls(items: Iterable[Any], asset_key: str) -> list[str]:
    """The ``href`` of asset ``asset_key`` of each item that has it."""
    return [str(item.assets[asset_key].href) for item in items if asset_key in item.assets]


def get_item_dates(items: Iterable[Any]) -> list[str]:
    """``YYYY-MM-DD`` (UTC) of each item."""
    return [item_date(item) for item in items]


def first_given(*values: Any) -> Any:
    """The first of ``values`` that is not None (None if all are)."""
    for v in values:
        if v is not None:
            return v
    return None


def _number(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, str):  # "nan", "inf" are allowed by the spec
        return float(v)
    return float(v) if not isinstance(v, int) else v


def get_render_params(item: Any, asset_key: str) -> dict[str, float | None]:
    """{"scale", "offset", "nodata"} of an asset from its STAC metadata.

    Reads ``raster:scale``/``raster:offset``/``nodata`` on the asset (raster
    extension v2, STAC 1.1) or the first entry of ``raster:bands`` (``scale``,
    ``offset``, ``nodata``; v1); missing values are None.  Raises ``KeyError`` when
    the item has no asset ``asset_key``."""
    asset = item.assets[asset_key]
    fields = asset.extra_fields
    bands = fields.get("raster:bands") or fields.get("bands") or []
    band = bands[0] if bands and isinstance(bands[0], dict) else {}
    scale = first_given(fields.get("raster:scale"), band.get("raster:scale"), band.get("scale"))
    offset = first_given(fields.get("raster:offset"), band.get("raster:offset"), band.get("offset"))
    nodata = first_given(fields.get("nodata"), band.get("nodata"), fields.get("raster:nodata"))
    return {"scale": _number(scale), "offset": _number(offset), "nodata": _number(nodata)}
