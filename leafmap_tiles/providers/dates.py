"""Dates of STAC searches and collections: the one reader of ``start``/``end`` values
(``YYYY-MM-DD``, ``YYYYMMDD``, ISO 8601 datetimes, ``date``/``datetime`` objects) and of
``"start/end"`` ranges, used by :mod:`leafmap_tiles.providers.stac` and
:mod:`leafmap_tiles.collections`."""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any
from leafmap_tiles.errors import ProviderError

__all__ = ["date_bounds", "datetime_range", "parse_bound", "to_utc"]


_DATE_ONLY = re.compile(r"^\d{4}-?\d{2}-?\d{2}$")  # YYYY-MM-DD or YYYYMMDD


def to_utc(value: _dt.datetime) -> _dt.datetime:
    """``value`` as an aware UTC datetime (a naive one is taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=_dt.timezone.utc)
    return value.astimezone(_dt.timezone.utc)


def parse_bound(value: Any, *, is_end: bool) -> _dt.datetime | None:
    """``start`` (``is_end=False``) or ``end`` of a date range as an aware UTC datetime;
    None for an open end (None, ``""``, ``".."``).  A date-only ``end`` is the last
    microsecond of that day, a date-only start its first; naive datetimes are UTC.

    Raises ValueError for an unreadable text, TypeError for another type."""
    if value is None or value == "" or value == "..":
        return None
    if isinstance(value, _dt.datetime):
        return to_utc(value)
    if isinstance(value, _dt.date):
        day = _dt.datetime(value.year, value.month, value.day, tzinfo=_dt.timezone.utc)
        return day + _dt.timedelta(days=1, microseconds=-1) if is_end else day
    if isinstance(value, str):
        text = value.strip()
        if _DATE_ONLY.match(text):
            digits = text.replace("-", "")
            try:
                date = _dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
            except ValueError as exc:
                raise ProviderError(f"cannot read {'end' if is_end else 'start'} date {value!r}: {exc}") from None
            return parse_bound(date, is_end=is_end)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            return to_utc(_dt.datetime.fromisoformat(text))
        except ValueError:
            raise ProviderError(
                f"cannot read {'end' if is_end else 'start'} date {value!r}: "
                "use 'YYYY-MM-DD', an ISO 8601 datetime or a datetime object"
            ) from None
    raise TypeError(f"start/end must be a string, date or datetime, not {type(value).__name__}")


def _iso(value: _dt.datetime) -> str:
    return value.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def datetime_range(start: Any = None, end: Any = None) -> str | None:
    """The STAC ``datetime`` interval for ``start``/``end`` (None when both are open).

    >>> datetime_range("2025-05-01", "2025-05-31")
    '2025-05-01T00:00:00.000000Z/2025-05-31T23:59:59.999999Z'
    """
    lo = parse_bound(start, is_end=False)
    hi = parse_bound(end, is_end=True)
    if lo is None and hi is None:
        return None
    if lo is not None and hi is not None and lo > hi:
        raise ProviderError(f"start ({start}) is after end ({end})")
    return f"{_iso(lo) if lo else '..'}/{_iso(hi) if hi else '..'}"


def date_bounds(date_range: Any) -> tuple[Any, Any]:
    """``(start, end)`` of a range given as ``(start, end)``, ``"start/end"`` (``..`` or
    nothing for an open end) or one date (``"2025-05-01"``: that day); None: open."""
    if date_range is None:
        return None, None
    if isinstance(date_range, str):
        if "/" not in date_range:
            return date_range, date_range
        lo, hi = date_range.split("/", 1)
        return (None if lo in ("", "..") else lo), (None if hi in ("", "..") else hi)
    lo, hi = date_range
    return lo, hi
