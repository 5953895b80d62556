"""The kernel's one table of provider credentials (HTTP Basic, per host), and what to
tell a user whose request to a host was refused.

Providers (``leafmap_tiles.providers``) write it when a user logs in or out; the
STAC client, :func:`leafmap_tiles.providers.access.open_raster` and the kernel's tile
server (:mod:`leafmap_tiles.client.server`, which pushes it to every server process it
starts) read it.  Hosts are ``name`` (any port) or ``name:port``, matched by
:func:`leafmap_tiles._hosts.host_matches`: credentials go only to their own hosts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Union

from leafmap_tiles._hosts import host_key, host_matches

__all__ = ["add", "for_url", "login_hint_for", "passwords", "records", "remove", "set_login_hint"]

_lock = threading.RLock()
_table: dict[str, tuple[str, str]] = {}  # host key -> (username, password)
_hints: dict[str, str] = {}  # host key -> what to tell a refused user
# (callable returning the current hosts, hint) of providers whose hosts are settings
# that may change (tests point them at local servers)
_hint_providers: list[tuple[Callable[[], Iterable[str]], str]] = []


def add(hosts: Iterable[str], username: str, password: str) -> list[str]:
    """Use ``username``/``password`` for URLs on ``hosts``; returns the host keys."""
    keys = [host_key(h) for h in hosts]
    with _lock:
        for k in keys:
            _table[k] = (username, password)
    return keys


def remove(hosts: Iterable[str] | None = None) -> list[str]:
    """Forget the credentials of ``hosts`` (all when None); returns the host keys."""
    with _lock:
        keys = list(_table) if hosts is None else [host_key(h) for h in hosts]
        for k in keys:
            _table.pop(k, None)
    return keys


def for_url(url: str) -> tuple[str, str] | None:
    """``(username, password)`` for the host of ``url``, else None."""
    with _lock:
        for host, value in _table.items():
            if host_matches(url, host):
                return value
    return None


def records() -> list[dict[str, str]]:
    """The table as the tile server takes it: ``[{"host", "username", "password"}]``."""
    with _lock:
        return [{"host": h, "username": u, "password": p} for h, (u, p) in _table.items()]


def passwords() -> set[str]:
    """Every ``"username:password"`` of the table (to tell provider credentials in the
    environment from a user's own)."""
    with _lock:
        return {f"{u}:{p}" for u, p in _table.values()}


def set_login_hint(hosts: Union[Iterable[str], Callable[[], Iterable[str]]], hint: str) -> None:
    """What an ``AuthenticationError`` says for these hosts; ``hosts`` may be a callable
    returning the hosts, read at each lookup."""
    with _lock:
        if callable(hosts):
            _hint_providers[:] = [(f, h) for f, h in _hint_providers if f is not hosts]
            _hint_providers.append((hosts, hint))
        else:
            for h in hosts:
                _hints[host_key(h)] = hint


def login_hint_for(url: str) -> str | None:
    """The login hint for the host of ``url``, else None."""
    with _lock:
        for host, hint in _hints.items():
            if host_matches(url, host):
                return hint
        providers = list(_hint_providers)
    for hosts, text in providers:
        try:
            current = list(hosts())
        except Exception:
            continue
        if any(host_matches(url, h) for h in current):
            return text
    return None
