"""The one classifier of GDAL/rasterio/HTTP failures: every reader of a raster
(:mod:`leafmap_tiles.render.engine`, :mod:`leafmap_tiles.render.terracotta`, the
store's metadata and its S3 database, ``providers.access.open_raster``, the VRT stacks,
the collections' header reads) turns what GDAL raised into one of the specific errors
of :mod:`leafmap_tiles.errors`; no other module reads GDAL's, curl's or PROJ's words:

=============================  ==============================================================
``AuthenticationError``        HTTP 401/403
``SourceNotFoundError``        HTTP 404, or a local file that does not exist
``SourceTimeoutError``         no (complete) answer within GDAL's timeout: a hanging host,
                               a host sending a few bytes per second
``SourceUnreachableError``     connection refused/reset, unknown host, HTTP 5xx/429
``InvalidSourceError``         not a raster format, truncated or corrupt pixel data
=============================  ==============================================================

GDAL reports a timeout during a *read* only as ``TIFFFillTile: Read error ... got 0
bytes``, the same words as a truncated file.  For a remote source a failure that
took at least about the HTTP timeout (``elapsed``) is therefore a timeout, not a
corrupt file.  rasterio chains the earlier GDAL errors of one call as ``__cause__``;
the whole chain is read.  A :class:`~leafmap_tiles.errors.VSIError` (a failed call into
GDAL's virtual file system, :mod:`leafmap_tiles._gdal`) is classified by its VSI error
number too.

Besides :func:`classify`: :func:`error_kind` (the short kind of a failed header read
that a collection's index keeps) and :func:`is_outside` (rio-tiler or PROJ saying a
point or tile lies outside the raster or its CRS's domain: an empty answer, not an
error).
"""

from __future__ import annotations

import os
import re

from leafmap_tiles._paths import is_remote, is_s3
from leafmap_tiles.errors import (
    AuthenticationError,
    InvalidSourceError,
    LeafmapTilesError,
    S3AccessDeniedError,
    SourceNotFoundError,
    SourceTimeoutError,
    SourceUnreachableError,
    VSIError,
)

#: The error classes that mean "the network or the remote host failed", not the file:
#: a source failing with one of them is retried later (see :mod:`leafmap_tiles.render.remote`).
NETWORK_ERRORS = (SourceTimeoutError, SourceUnreachableError)


_HTTP_CODE = re.compile(r"HTTP (?:response )?code[: ]+(\d{3})", re.I)
# a remote host's refusal worded without GDAL's "HTTP response code" (curl, S3, a proxy)
_REMOTE_AUTH = re.compile(r"\b(401|403)\b|unauthori[sz]ed|forbidden", re.I)
_URL_TEXT = re.compile(r"\S+://\S*|/vsi\S*")  # a "403" in a URL is not an answer
_MISSING_WORDS = ("no such file", "does not exist in the file system")
_TIMEOUT_WORDS = ("timed out", "timeout", "operation too slow")
_UNREACHABLE_WORDS = (
    "connection refused", "couldn't connect", "could not connect", "failed to connect",
    "could not resolve", "couldn't resolve", "connection reset", "recv failure", "send failure",
    "empty reply", "ssl connect error", "network is unreachable", "no route to host",
)


#: The messages of S3's 403 answers (AWS's words, which S3-compatible servers reuse),
#: as GDAL reports them for a ``/vsis3/`` path.
S3_DENIED_WORDS = (
    "access key id you provided does not exist",   # InvalidAccessKeyId
    "signature we calculated does not match",      # SignatureDoesNotMatch
    "security token included in the request is invalid",  # InvalidToken
    "access denied", "accessdenied", "invalidaccesskeyid", "signaturedoesnotmatch",
)
_S3_MISSING_WORDS = ("does not exist", "nosuchkey", "nosuchbucket")
_CODE_403 = re.compile(r"\b403\b")
_CODE_404 = re.compile(r"\b404\b")

#: A file that is not in a raster format GDAL reads (or whose TIFF header is broken),
#: in GDAL's words and :func:`classify`'s: a header read's ``"not_raster"`` kind.
_NOT_RASTER = re.compile(r"not recognized as (being in )?a supported file format|not a TIFF|"
                         r"TIFFReadDirectory|cannot read TIFF header|not a raster format", re.I)
#: rio-tiler's exceptions for a point or tile outside the raster, and PROJ's words for
#: a coordinate outside the CRS's domain.
_OUTSIDE_TYPES = ("PointOutsideBounds", "TileOutsideBounds")
_OUTSIDE_WORDS = ("outside of projection domain",)


def s3_url(path: object) -> str:
    """``s3://bucket/key`` of a ``/vsis3/`` path, for messages."""
    return "s3://" + path[len("/vsis3/"):] if isinstance(path, str) and path.startswith("/vsis3/") else str(path)


def http_timeout() -> float:
    """The shorter of GDAL's HTTP connect and transfer timeouts in seconds, as this
    process set them (``GDAL_HTTP_CONNECTTIMEOUT``, ``GDAL_HTTP_TIMEOUT``; 30 s when unset)."""
    values = []
    for key in ("GDAL_HTTP_TIMEOUT", "GDAL_HTTP_CONNECTTIMEOUT"):
        try:
            values.append(float(os.environ.get(key, "")))
        except ValueError:
            pass
    return min(values) if values else 30.0


def _chain(exc: BaseException) -> list[str]:
    out: list[str] = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen and len(out) < 20:
        seen.add(id(cur))
        out.append(str(cur).strip())
        cur = cur.__cause__ or cur.__context__
    return out


def classify(path: object, exc: BaseException, during: str = "open", elapsed: float | None = None) -> LeafmapTilesError:
    """The specific error for an exception raised while opening (``during="open"``)
    or reading (``"read"``) ``path``.

    Args:
        path: the local path or URL that was read (named in the message), or a
            tuple of them for a mosaic.
        exc: what rasterio/rio-tiler/GDAL raised; a :class:`LeafmapTilesError` is returned as is.
        during: ``"open"`` or ``"read"``; a read failure that matches nothing else is
            a truncated or corrupt file.
        elapsed: seconds the failed call took; for a remote source, a failure after
            about the HTTP timeout (:func:`http_timeout`) is a :class:`SourceTimeoutError`.
    """
    if isinstance(exc, LeafmapTilesError) and not isinstance(exc, VSIError):
        return exc
    from leafmap_tiles import _gdal

    _gdal.reset_error()  # a failure must not stay this thread's GDAL "last error" (see reset_error)
    if isinstance(exc, VSIError):
        messages = [str(exc.strerror or exc).strip()]
    else:
        messages = _chain(exc) or [type(exc).__name__]
    msg = " | ".join(messages)
    low = msg.lower()
    detail = messages[-1] if "see previous" in messages[0].lower() else messages[0]
    remote = is_remote(path)
    m = _HTTP_CODE.search(msg)
    code = int(m.group(1)) if m else None
    vsi_no = exc.errno if isinstance(exc, VSIError) else None
    if code is None and vsi_no in _gdal.VSIE_DENIED:
        code = 403
    elif code is None and vsi_no is not None and (vsi_no in _gdal.VSIE_MISSING or vsi_no == 1):
        code = 404  # VSIE_FileError (1): GDAL's "does not exist" of a stat or an open
    if is_s3(path):
        bare = _URL_TEXT.sub("", msg)  # S3's answer as GDAL words it, without the URL
        if code == 403 or any(w in low for w in S3_DENIED_WORDS) or _CODE_403.search(bare):
            from leafmap_tiles import s3

            try:
                where = s3.settings().describe()
            except LeafmapTilesError:
                where = "the configured endpoint"
            return S3AccessDeniedError(
                f"{s3_url(path)}: S3 refused access (HTTP 403: {detail}) at {where}; check "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or the AWS_PROFILE profile) and the key's permissions"
            )
        if code == 404 or any(w in low for w in _S3_MISSING_WORDS) or _CODE_404.search(bare):
            return SourceNotFoundError(f"{s3_url(path)}: no such object or bucket (HTTP 404: {detail})")
    if (code in (401, 403) or ("401" in msg and "unauthorized" in low) or "access denied" in low
            or (remote and code is None and _REMOTE_AUTH.search(_URL_TEXT.sub("", msg)))):
        return AuthenticationError(
            f"{path}: the server refused access (HTTP {code or 401}). Log in to the data provider first "
            "(e.g. leafmap_tiles.providers.terrascope.login()) or check the credentials."
        )
    if code == 404 or (remote and ("404" in msg or "not found" in low)):
        return SourceNotFoundError(f"{path}: the server answered HTTP 404 (not found)")
    if any(w in low for w in _TIMEOUT_WORDS):
        return SourceTimeoutError(f"{path}: no answer from the server within the timeout ({detail})")
    if remote and code is not None and (code >= 500 or code == 429):
        return SourceUnreachableError(f"{path}: the server answered HTTP {code}; try again later")
    if remote and any(w in low for w in _UNREACHABLE_WORDS):
        return SourceUnreachableError(f"{path}: cannot reach the server ({detail})")
    if remote and elapsed is not None and elapsed >= 0.9 * http_timeout():
        return SourceTimeoutError(
            f"{path}: no complete answer from the server within the timeout "
            f"({elapsed:.0f} s; GDAL reported: {detail})"
        )
    if remote and code is not None:
        return InvalidSourceError(f"{path}: the server answered HTTP {code}")
    if code is None and any(w in low for w in _MISSING_WORDS):
        return SourceNotFoundError(f"{path}: no such file ({detail})")
    if "not recognized as" in low or "not a supported file format" in low:
        return InvalidSourceError(f"{path} is not a raster format that GDAL can read ({detail})")
    if during == "read" or any(k in low for k in ("tiffread", "ireadblock", "read error", "truncat", "cannot read", "failed to read")):
        return InvalidSourceError(
            f"{path}: pixel data cannot be read, the file is truncated or corrupt ({detail})"
        )
    return InvalidSourceError(f"{path}: cannot open as a raster ({detail})")


def error_kind(exc: BaseException, path: object = "") -> str:
    """The short kind of a failed header read of ``path`` that a collection's index
    keeps: ``"auth"``, ``"not_found"``, ``"timeout"``, ``"not_raster"`` (a file GDAL
    does not read as a raster, or a broken TIFF header) or ``"error"``, from the class
    :func:`classify` gives (an error of :mod:`leafmap_tiles.errors` keeps its class)."""
    err = exc if isinstance(exc, (PermissionError, FileNotFoundError, TimeoutError)) else classify(path, exc)
    if isinstance(err, PermissionError):  # AuthenticationError
        return "auth"
    if isinstance(err, FileNotFoundError):  # SourceNotFoundError
        return "not_found"
    if isinstance(err, TimeoutError):  # SourceTimeoutError
        return "timeout"
    if isinstance(err, InvalidSourceError) and any(_NOT_RASTER.search(t) for t in [str(err), *_chain(exc)]):
        return "not_raster"
    return "error"


def is_outside(exc: BaseException, domain: bool = True) -> bool:
    """Whether ``exc`` says that a point or tile lies outside the raster (rio-tiler's
    ``PointOutsideBounds``/``TileOutsideBounds``) or, with ``domain``, outside its
    CRS's domain (PROJ's words): an empty answer, not a failure of the source."""
    if type(exc).__name__ in _OUTSIDE_TYPES:
        return True
    return domain and any(w in str(exc).lower() for w in _OUTSIDE_WORDS)
