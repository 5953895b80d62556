"""Exceptions shared by every part of leafmap_tiles.

Each class subclasses the built-in exception a Python user would catch for that
kind of problem (``FileNotFoundError``, ``ValueError``, ``PermissionError``,
``TimeoutError``), so ``except ValueError`` keeps working.  The tile server sends
the class name in its JSON error body (``{"message": ..., "error": "StyleError"}``)
and the client raises the same class in the kernel, see :func:`from_name`.
"""

from __future__ import annotations


class LeafmapTilesError(Exception):
    """Base class of every error raised on purpose by leafmap_tiles."""


class SourceNotFoundError(LeafmapTilesError, FileNotFoundError):
    """The raster does not exist: missing local file, or HTTP 404 for a URL."""


class ObjectNotFoundError(SourceNotFoundError):
    """``leafmap-tiles serve``: the raster a dataset names is not on its remote store
    (S3 or HTTP answered 404), e.g. deleted or never uploaded; answered 404 (a missing
    or corrupt *local* file stays :class:`UnreadableDataset`, 500, as in Terracotta)."""


class SourceIsDirectoryError(LeafmapTilesError, IsADirectoryError):
    """A directory was given where a raster file was expected."""


class InvalidSourceError(LeafmapTilesError, ValueError):
    """The file exists but is not a readable, georeferenced raster
    (empty, truncated, not a raster format, or without CRS/transform/GCPs)."""


class AuthenticationError(LeafmapTilesError, PermissionError):
    """The remote server answered 401/403: the user must log in to the provider."""


class S3AccessDeniedError(AuthenticationError):
    """An S3 endpoint refused the request (HTTP 403): unknown access key
    (``InvalidAccessKeyId``), wrong secret (``SignatureDoesNotMatch``) or no
    permission (``AccessDenied``).  The tile servers answer 403."""


class S3ConfigurationError(LeafmapTilesError, ValueError):
    """The S3 settings of the environment cannot be used: ``AWS_PROFILE`` names a
    profile no AWS file has, an endpoint URL that is not ``http(s)://host[:port]``,
    an ``s3://`` URL without bucket or key (see :mod:`leafmap_tiles.s3`)."""


class SourceTimeoutError(LeafmapTilesError, TimeoutError):
    """The remote server did not answer within the bounded timeout."""


class SourceUnreachableError(LeafmapTilesError, ConnectionError):
    """The remote server cannot be reached: connection refused or reset, unknown host,
    or a 5xx answer (HTTP 502 from the tile server)."""


class BadRequestError(LeafmapTilesError, ValueError):
    """A request to the tile server that is malformed in itself: a body that is not
    JSON or not of the documented shape, a number out of range, a query too long."""


class StyleError(LeafmapTilesError, ValueError):
    """A style argument is invalid for this source (``indexes``, ``vmin``/``vmax``,
    ``colormap``, ``nodata``, ``expression``, tile size or format)."""


class UnknownSourceError(LeafmapTilesError, KeyError):
    """A source id that the tile server does not know (never registered or released)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class TileServerError(LeafmapTilesError, RuntimeError):
    """The tile-server process could not be started or answered unexpectedly, or a
    closed ``Map`` (or a server's closed render pool) was used."""


class SettingsError(LeafmapTilesError, ValueError):
    """A ``LEAFMAP_TILES_*`` environment variable whose value cannot be used: not a
    number where one is expected, negative, NaN or infinite (see
    :mod:`leafmap_tiles.settings` for what each variable allows).  The message names
    the variable, its value and what is allowed.  Raised when the settings are read,
    before a server starts; ``leafmap-tiles`` prints it as one line and exits with 2."""


class StoreError(LeafmapTilesError, ValueError):
    """Invalid use of a key store (bad key names, unknown dataset, layout mismatch)."""


class InvalidKeyError(StoreError):
    """Key names or key values that the store does not accept: not alphanumeric,
    reserved (``limit``, ``page``, ``order_by``, ``ascending``), unknown to the
    database, or the wrong number of them."""


class DatasetNotFoundError(StoreError):
    """No dataset in the key store has the given key values (HTTP 404)."""


class InvalidDatabaseError(StoreError):
    """The file or server is not a usable Terracotta database: missing tables,
    version conflict, or keys that differ from the ones asked for."""


class ReadOnlyStoreError(StoreError):
    """A write (``create``, ``insert``, ``delete``, ``ingest``) to a key store that is
    read-only: a database on S3, or a remote Terracotta server (``store.connect``)."""


class PatternError(StoreError):
    """An ingest pattern that cannot be used (bad placeholder, no key, duplicate keys)."""


class UnreadableDataset(LeafmapTilesError):
    """A dataset that the key store lists but whose file cannot be read (missing,
    truncated or corrupt; HTTP 500 of ``leafmap-tiles serve``, naming the dataset, never
    the file)."""


class RenderDeadlineError(LeafmapTilesError, TimeoutError):
    """A tile render took longer than its deadline (HTTP 503 with ``Retry-After: 1``)."""


class ClientGoneError(LeafmapTilesError):
    """The HTTP client closed its connection before its tile was rendered (the render
    is dropped; nobody reads an answer)."""


class ProviderError(LeafmapTilesError, ValueError):
    """Input a data provider cannot use: STAC search arguments (``bbox``, ``start``/
    ``end`` dates, ``limit``, ``max_items``, ``sortby``, ``max_cloud_cover``), a CQL2
    filter the STAC API does not support, an item without a date or without the
    assets asked for, a login without credentials."""


class CollectionError(LeafmapTilesError, ValueError):
    """Invalid use of a collection (:mod:`leafmap_tiles.collections`): a ``bbox``,
    ``resolution``, ``points`` or band out of range, an asset to choose, a read larger
    than allowed, a workspace name that is not a plain folder name."""


class CollectionKeyError(LeafmapTilesError, KeyError):
    """An asset, item or index column that a collection does not have."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class CollectionIndexError(LeafmapTilesError, IndexError):
    """A row number outside a collection (``collection[i]``)."""


class CollectionNotFoundError(LeafmapTilesError, FileNotFoundError):
    """No collection (workspace folder, exported file, or name in the workspace root)
    at the path given to ``Collection.load``."""


class NoOverlapError(LeafmapTilesError, ValueError):
    """An area (a bbox in EPSG:4326) that does not intersect any item of a collection:
    raised before anything is read, naming the items' extent."""


class VSIError(LeafmapTilesError, OSError):
    """A failed call into GDAL's virtual file system (``/vsis3/``, ``/vsicurl/``: a
    stat, an open, a read; see :mod:`leafmap_tiles._gdal`): ``errno`` is GDAL's VSI
    error number, ``strerror`` its message.  It is what GDAL said, not yet what it
    means: :func:`leafmap_tiles.gdal_errors.classify` turns it into the specific class
    (``S3AccessDeniedError``, ``SourceNotFoundError`` ...) before anyone sees it."""


class HTTPError(TileServerError):
    """A request the HTTP layer refused before any route ran, or a route refused by
    HTTP's own rules: an unknown route (404), a method the route does not take (405),
    a wrong session token or admin key (403).  The servers' JSON ``error`` for
    Starlette's ``HTTPException``, whose status it keeps; a :class:`TileServerError`
    in the kernel, as any answer it cannot act on."""


class TileOutsideBoundsError(LeafmapTilesError):
    """The tile asked for does not overlap the dataset's data (answered with an empty,
    transparent tile, never as an error)."""


_ALL: dict[str, type[LeafmapTilesError]] = {
    cls.__name__: cls
    for cls in (
        LeafmapTilesError,
        SourceNotFoundError,
        ObjectNotFoundError,
        SourceIsDirectoryError,
        InvalidSourceError,
        AuthenticationError,
        S3AccessDeniedError,
        S3ConfigurationError,
        SourceTimeoutError,
        SourceUnreachableError,
        BadRequestError,
        StyleError,
        UnknownSourceError,
        TileServerError,
        HTTPError,
        StoreError,
        InvalidKeyError,
        DatasetNotFoundError,
        InvalidDatabaseError,
        PatternError,
        ReadOnlyStoreError,
        UnreadableDataset,
        RenderDeadlineError,
        ClientGoneError,
        TileOutsideBoundsError,
        NoOverlapError,
        ProviderError,
        CollectionError,
        CollectionKeyError,
        CollectionIndexError,
        CollectionNotFoundError,
        SettingsError,
        VSIError,
    )
}


def __getattr__(name: str) -> object:  # the path rules moved to leafmap_tiles._paths
    if name in ("REMOTE_PREFIXES", "check_local_path"):
        from leafmap_tiles import _paths

        return getattr(_paths, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def for_dataset(name: str, exc: LeafmapTilesError, remote: bool = False) -> LeafmapTilesError:
    """What a client of ``leafmap-tiles serve`` is told when the file of dataset ``name``
    (its key values joined by ``/``) failed with ``exc``: the same class for a remote
    host that is slow, unreachable or refuses access (504, 502, 401), or for an object
    that a ``remote`` store (S3, an HTTP server) does not have (404,
    :class:`SourceNotFoundError`); :class:`UnreadableDataset` (500) for a missing or
    corrupt local file; the message names the dataset, never the file."""
    if remote and isinstance(exc, SourceNotFoundError):
        return ObjectNotFoundError(f"dataset {name}: its file is not on its remote store (HTTP 404); "
                                   "the database lists an object that is not there")
    if isinstance(exc, SourceTimeoutError):
        return SourceTimeoutError(f"dataset {name}: its remote host did not answer in time; try again later")
    if isinstance(exc, SourceUnreachableError):
        return SourceUnreachableError(f"dataset {name}: its remote host cannot be reached; try again later")
    if isinstance(exc, S3AccessDeniedError):
        return S3AccessDeniedError(f"dataset {name}: S3 refused access (403) to the server's credentials")
    if isinstance(exc, AuthenticationError):
        return AuthenticationError(f"dataset {name}: its remote host refused access (credentials of the server)")
    return UnreadableDataset(f"dataset {name} cannot be read (its file is missing or corrupt)")


def for_database(url: str, exc: LeafmapTilesError, detail: str | None = None) -> LeafmapTilesError:
    """What opening the key store at ``url`` (an ``s3://`` database) tells its user when
    fetching the file failed with ``exc`` (a class of
    :func:`leafmap_tiles.gdal_errors.classify`; ``detail``: what GDAL said, for the
    message): a refusal of access keeps its class (:class:`S3AccessDeniedError`,
    :class:`AuthenticationError`); anything else (no such object or bucket, a host that
    did not answer) is an :class:`InvalidDatabaseError` naming the database, as for a
    local database file that is not there."""
    if isinstance(exc, AuthenticationError):
        return exc
    if isinstance(exc, SourceNotFoundError):
        return InvalidDatabaseError(f"Could not retrieve database {url}: no such object or bucket "
                                    f"({detail or exc})")
    return InvalidDatabaseError(f"Could not retrieve database {url}: {detail or exc}")


def from_name(name: str | None, message: str) -> LeafmapTilesError:
    """Build the exception whose class name is ``name`` (as sent by the server).

    Unknown names give a :class:`TileServerError` so that nothing is lost.
    """
    cls = _ALL.get(name or "", TileServerError)
    return cls(message)
