"""The one error path of both HTTP apps (the session server and ``leafmap-tiles serve``).

- :data:`STATUS` is the one status table: 4xx for the client's mistakes, 401 when a
  provider refused access, 502/504 for an unreachable or slow remote host, 500 for
  ours (including a registered file that became unreadable).
- :class:`ErrorMiddleware` turns *every* exception of a route into a JSON answer
  ``{"message", "error"}`` before it reaches Starlette's ``ServerErrorMiddleware``
  (which re-raises, so uvicorn would log a traceback and close the keep-alive
  connection).  Messages never carry a traceback, a local path or a URL
  (:func:`scrub`); each failure answered 5xx is logged on one line, rate limited
  (:class:`RateLimitedLog`).
- :class:`JSONErrorHttpTools` / :class:`JSONErrorH11` make uvicorn's own answer to a
  request it cannot parse (e.g. a URL over 65,535 bytes, which httptools' URL parser
  cannot index) a JSON 400 too; such a connection is closed by the HTTP layer.

Routes mark what they know for the error path in the ASGI scope: ``mark_sources``
(paths to replace by a source's name) and ``mark_registering`` (the request names a
file itself, so an unreadable file is the client's mistake: 400).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse

from leafmap_tiles.errors import (
    AuthenticationError,
    BadRequestError,
    HTTPError,
    S3AccessDeniedError,
    ClientGoneError,
    DatasetNotFoundError,
    InvalidDatabaseError,
    InvalidSourceError,
    LeafmapTilesError,
    SourceIsDirectoryError,
    ObjectNotFoundError,
    SourceNotFoundError,
    SourceTimeoutError,
    SourceUnreachableError,
    StoreError,
    RenderDeadlineError,
    StyleError,
    UnknownSourceError,
    UnreadableDataset,
)

#: A source that cannot be read: 400 when the request itself names the file (a
#: registration), 500 when the server already serves it (a registered source or a
#: dataset of the key store whose file went missing, truncated or corrupt).
SOURCE = "source"

#: Exception class -> HTTP status, most specific first (see :func:`status_for`).
STATUS: tuple[tuple[type, int | str], ...] = (
    (RenderDeadlineError, 503),  # with Retry-After: 1
    (ClientGoneError, 503),  # nobody reads it; not logged
    (BadRequestError, 400),
    (StyleError, 400),
    (UnknownSourceError, 404),
    (DatasetNotFoundError, 404),
    (InvalidDatabaseError, 500),
    (StoreError, 400),
    (S3AccessDeniedError, 403),
    (AuthenticationError, 401),
    (SourceTimeoutError, 504),
    (SourceUnreachableError, 502),
    (ObjectNotFoundError, 404),
    (SourceNotFoundError, SOURCE),
    (SourceIsDirectoryError, SOURCE),
    (InvalidSourceError, SOURCE),
    (UnreadableDataset, 500),
    (LeafmapTilesError, 500),
)


def status_for(exc: BaseException, registering: bool = False) -> int:
    """HTTP status of ``exc`` by :data:`STATUS`; anything else (a bug) is 500."""
    if isinstance(exc, HTTPException):
        return exc.status_code
    for cls, code in STATUS:
        if isinstance(exc, cls):
            if code == SOURCE:
                return 400 if registering else 500
            return int(code)
    return 500


# ------------------------------------------------------------------ scrubbing
_URL = re.compile(r"(?:\b[a-z][a-z0-9+.-]*://|/vsi[a-z0-9_]+/)[^\s'\"<>,;)\]]*", re.I)
_WIN_PATH = re.compile(r"\b[A-Za-z]:\\[^\s'\"<>,;)\]]*")
# an absolute path of two or more components ("/colormap" in a message is a route)
_ABS_PATH = re.compile(r"(?<![\w.~/-])/(?:[\w.~+@%-]+/)+[\w.~+@%-]+")
_EXTENSIONS = r"\.(?:tiff?|vrt|jp2|nc|hdf|h5|he5|img|ntf|grib2?|asc|sqlite|db|gpkg|zarr)\b"
_FILE_NAME = re.compile(r"[\w.~+@%/-]*" + _EXTENSIONS, re.I)
# A name with spaces ("shade copy.tif"), which _FILE_NAME would cut at the space: all of
# it from the start of the message, a bracket, a quote or "...: " up to its extension,
# when GDAL's punctuation ends it (":" of "name: message", a closing bracket or quote).
_SPACED_NAME = re.compile(r"(?:^|(?<=[(\['\"`])|(?<=: ))[^\n()\[\]:'\"`<>]*?" + _EXTENSIONS
                          + r"(?=[:)\]'\"`])", re.I)
# where a known path or file name ends and begins (not inside a longer name)
_NAME_CHARS = r"[\w.~+@%-]"


def scrub(message: str, paths: dict[str, str] | None = None) -> str:
    """``message`` without local paths or URLs: each of ``paths`` (``{path: name}``,
    also bare file names) becomes its name where it is not part of a longer name, any
    other URL ``<url>``, absolute path or file name ``<file>`` (a name with spaces
    whole, when GDAL's punctuation shows where it starts and ends)."""
    for path, name in sorted((paths or {}).items(), key=lambda kv: -len(kv[0])):
        if path:
            message = re.sub(f"(?<!{_NAME_CHARS}){re.escape(path)}(?![\\w~+@%-])", lambda _m: name, message)
    message = _URL.sub(lambda m: "<url>" + (":" if m.group(0).endswith(":") else ""), message)
    message = _WIN_PATH.sub("<file>", message)
    message = _SPACED_NAME.sub("<file>", message)
    message = _ABS_PATH.sub("<file>", message)
    return _FILE_NAME.sub("<file>", message)


def mark_sources(scope, paths: dict[str, str]) -> None:
    """Tell the error path to show each of ``paths`` (``{path: name}``) as its name."""
    scope.setdefault("leafmap_tiles.paths", {}).update(paths)


def mark_registering(scope) -> None:
    """Tell the error path that this request names its file itself (400, not 500)."""
    scope["leafmap_tiles.registering"] = True


# -------------------------------------------------------------------- logging
class RateLimitedLog:
    """At most ``burst`` lines per ``window`` seconds; the lines left out are counted
    and reported on the next line that is written."""

    def __init__(self, logger: logging.Logger, burst: int = 20, window: float = 10.0, clock=time.monotonic) -> None:
        self.logger = logger
        self.burst = burst
        self.window = window
        self._clock = clock
        self._start = clock()
        self._count = 0
        self._dropped = 0
        self._lock = threading.Lock()

    def __call__(self, level: int, line: str) -> bool:
        """Write ``line`` at ``level`` unless the limit is reached; True if written."""
        with self._lock:
            now = self._clock()
            if now - self._start >= self.window:
                self._start, self._count = now, 0
            if self._count >= self.burst:
                self._dropped += 1
                return False
            self._count += 1
            dropped, self._dropped = self._dropped, 0
        if dropped:
            line += f" ({dropped} similar line(s) left out)"
        self.logger.log(level, "%s", line)
        return True


# ------------------------------------------------------------------ responses
def error_response(scope, exc: BaseException, log: RateLimitedLog | None = None) -> JSONResponse:
    """The JSON answer for ``exc`` raised while answering the request of ``scope``."""
    status = status_for(exc, bool(scope.get("leafmap_tiles.registering")))
    if isinstance(exc, HTTPException):
        kind, message = HTTPError.__name__, str(exc.detail or "error")
    elif isinstance(exc, LeafmapTilesError):
        kind, message = type(exc).__name__, str(exc)
    else:  # a bug: name it, but never its text (it may hold anything)
        kind, message = "TileServerError", f"internal error ({type(exc).__name__}); see the server log"
    if not scope.get("leafmap_tiles.registering"):
        # a registration is an admin route: only the kernel calls it, with the path it
        # names itself, and the user must learn which file failed
        message = scrub(message, scope.get("leafmap_tiles.paths"))
    if status >= 500 and log is not None and not isinstance(exc, ClientGoneError):
        where = ""
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None and not isinstance(exc, LeafmapTilesError):
            where = f" at {tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
            message_for_log = f"{type(exc).__name__}: {exc}"
        else:
            message_for_log = message
        log(logging.ERROR if kind == "TileServerError" else logging.WARNING,
            f"{status} {scope.get('method', '')} {scope.get('path', '')}: {kind}: {message_for_log}{where}"
            .replace("\n", " "))
    headers = {"Retry-After": "1"} if isinstance(exc, RenderDeadlineError) else None
    return JSONResponse({"message": message, "error": kind}, status_code=status, headers=headers)


class ErrorMiddleware:
    """ASGI middleware: any exception of the wrapped app becomes :func:`error_response`
    (the connection stays open).  Put it inside Starlette's ``ServerErrorMiddleware``
    (``Starlette(middleware=[...])`` does)."""

    def __init__(self, app, logger: logging.Logger) -> None:
        self.app = app
        self.log = RateLimitedLog(logger)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def send_tracked(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except ClientDisconnect:
            return  # nobody to answer
        except Exception as exc:
            if started:  # too late for an answer; uvicorn ends the response
                self.log(logging.ERROR, f"error after the answer started on {scope.get('path', '')}: "
                                        f"{type(exc).__name__}")
                return
            await error_response(scope, exc, self.log)(scope, receive, send)


MAX_BODY = 1 << 20  # bytes of a JSON request body (registrations, batch points, metadata)


async def read_body(request, limit: int = MAX_BODY) -> bytes:
    """The request body, at most ``limit`` bytes; :class:`BadRequestError` (400) for a
    longer one, refused from its ``Content-Length`` before it is read."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BadRequestError(f"request body of {int(declared):,} bytes; at most {limit:,} are accepted")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequestError(f"request body over {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def http_exception_handler(request, exc: HTTPException):
    """Starlette handler for ``HTTPException`` (404 unknown route, 405 wrong method...)."""
    return error_response(request.scope, exc)


# ------------------------------------------------------------------ HTTP layer
_BAD_HTTP = json.dumps({"message": "malformed HTTP request (for example a URL longer than 65,535 bytes)",
                        "error": BadRequestError.__name__}, separators=(",", ":")).encode()


def _json_400(self, msg: str) -> None:
    content = [b"HTTP/1.1 400 Bad Request\r\n"]
    for name, value in self.server_state.default_headers:
        content.extend([name, b": ", value, b"\r\n"])
    content.extend([
        b"content-type: application/json\r\n",
        b"content-length: " + str(len(_BAD_HTTP)).encode("ascii") + b"\r\n",
        b"connection: close\r\n\r\n",
        _BAD_HTTP,
    ])
    self.transport.write(b"".join(content))
    self.transport.close()


def http_protocol() -> type:
    """uvicorn HTTP protocol class (httptools when installed, else h11) whose answer to
    a request it cannot parse is a JSON 400 instead of plain text."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return type("JSONErrorHttpTools", (HttpToolsProtocol,), {"send_400_response": _json_400})
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return type("JSONErrorH11", (H11Protocol,), {"send_400_response": _json_400})


def __getattr__(name: str):
    """``JSONErrorProtocol``: :func:`http_protocol` as a module attribute, so that
    uvicorn's worker processes can import it by name
    (``http="leafmap_tiles.server.errors:JSONErrorProtocol"``)."""
    if name == "JSONErrorProtocol":
        cls = http_protocol()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
