"""Where ``s3://`` URLs are read from, as GDAL and boto users configure it.

Rasters (``add_raster("s3://bucket/key.tif")``) and key-store databases
(``store.open("s3://bucket/db.sqlite")``) are both read through GDAL's ``/vsis3/``
file system, so one configuration serves both, read from the environment of the
process (never written to it):

=================================  ==============================================================
endpoint                           ``AWS_S3_ENDPOINT`` (GDAL: ``host:port``), else boto's
                                   ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``
                                   (``http://host:port``), else the profile's ``endpoint_url``
                                   (also in its ``s3 =`` sub-section); none = AWS
``https``                          ``AWS_HTTPS`` (``YES``/``NO``), else the scheme of a boto URL
path-style addressing              ``AWS_VIRTUAL_HOSTING=FALSE``, else the profile's
                                   ``addressing_style``; an endpoint given by a boto URL or
                                   whose host is an IP address or ``localhost`` is path-style
credentials                        ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (/
                                   ``AWS_SESSION_TOKEN``), else the profile ``AWS_PROFILE``
                                   (default ``default``) of ``~/.aws/credentials`` and
                                   ``~/.aws/config`` (``AWS_SHARED_CREDENTIALS_FILE``,
                                   ``AWS_CONFIG_FILE``; GDAL's own name of the first is
                                   ``CPL_AWS_CREDENTIALS_FILE``); ``AWS_NO_SIGN_REQUEST=YES`` for a
                                   public bucket.  GDAL resolves these itself.
region                             ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else the profile's
=================================  ==============================================================

Scope: the keys are only ever used by GDAL's ``/vsis3/`` requests, which go to the
one endpoint above (an endpoint given the boto way is handed to GDAL, so keys meant
for a local server are never sent to AWS); ``http(s)://`` URLs never carry them,
and host credentials of :mod:`leafmap_tiles.providers` are never sent to the S3
endpoint.  :func:`gdal_options` is what a process passes to GDAL (the tile servers
as path-specific options on ``/vsis3/``, the kernel as thread-local options while it
downloads a database).
"""

from __future__ import annotations

import configparser
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from leafmap_tiles.errors import S3ConfigurationError

_TRUE = {"yes", "true", "on", "1"}
_FALSE = {"no", "false", "off", "0"}


@dataclass(frozen=True)
class S3Settings:
    """The S3 configuration of a process (see the module docstring).

    Attributes:
        endpoint: ``host:port`` of an S3-compatible server, or None for AWS.
        https: whether the endpoint is spoken to over HTTPS.
        virtual_hosting: bucket in the host name (AWS's default) rather than the path.
        region: AWS region, or None (GDAL's default ``us-east-1``).
        profile: the profile read from the AWS files, or None.
        endpoint_source: the variable or file the endpoint came from.
        gdal: GDAL configuration options that GDAL would not find by itself.
    """

    endpoint: str | None
    https: bool
    virtual_hosting: bool
    region: str | None
    profile: str | None
    endpoint_source: str
    gdal: Mapping[str, str]

    def describe(self) -> str:
        """``"endpoint 127.0.0.1:9000 (AWS_S3_ENDPOINT)"`` or ``"AWS"``, for messages."""
        if self.endpoint is None:
            return "AWS" + (f" (region {self.region})" if self.region else "")
        scheme = "https" if self.https else "http"
        return f"endpoint {scheme}://{self.endpoint} (from {self.endpoint_source})"


def _flag(value: str | None, name: str) -> bool | None:
    if value is None or value.strip() == "":
        return None
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise S3ConfigurationError(f"{name}={value!r}: expected YES or NO")


def _read_ini(path: str) -> configparser.ConfigParser | None:
    if not os.path.isfile(path):
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise S3ConfigurationError(f"{path} is not a valid AWS configuration file: {exc}") from None
    return parser


def _profile_settings(env: Mapping[str, str]) -> tuple[str | None, dict[str, str]]:
    """``(profile name or None, its settings from ~/.aws/config and credentials)``."""
    explicit = env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE")
    name = explicit or "default"
    home = os.path.expanduser("~")
    config_file = env.get("AWS_CONFIG_FILE") or os.path.join(home, ".aws", "config")
    creds_file = env.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.join(home, ".aws", "credentials")
    found: dict[str, str] = {}
    seen = False
    config = _read_ini(config_file)
    if config is not None:
        section = "default" if name == "default" else f"profile {name}"
        if config.has_section(section):
            seen = True
            found.update(config.items(section))
    creds = _read_ini(creds_file)
    if creds is not None and creds.has_section(name):
        seen = True
        found.update(creds.items(name))
    if explicit and not seen:
        raise S3ConfigurationError(
            f"AWS_PROFILE={explicit!r}: no such profile in {creds_file} or {config_file}"
        )
    return (name if seen else None), found


def _sub(value: str | None) -> dict[str, str]:
    """The nested ``s3 =`` block of a profile (``\\n endpoint_url = ...``)."""
    out = {}
    for line in (value or "").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k.strip().lower()] = v.strip()
    return out


def _is_local_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def settings(environ: Mapping[str, str] | None = None) -> S3Settings:
    """The S3 configuration read from ``environ`` (default ``os.environ``) and the AWS
    files it points to; nothing is written anywhere.

    Raises:
        S3ConfigurationError: ``AWS_PROFILE`` names a profile that no file has, an
            unreadable AWS file, an endpoint URL that is not ``http(s)://host[:port]``,
            or a ``YES``/``NO`` variable with another value.
    """
    env = os.environ if environ is None else environ
    profile, prof = _profile_settings(env)
    s3sub = _sub(prof.get("s3"))
    gdal: dict[str, str] = {}

    endpoint = None
    source = ""
    boto_style = False
    if env.get("AWS_S3_ENDPOINT"):
        endpoint, source = env["AWS_S3_ENDPOINT"].strip(), "AWS_S3_ENDPOINT"
        if "://" in endpoint:  # GDAL also accepts a URL here
            boto_style = True
    else:
        for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
            if env.get(name):
                endpoint, source, boto_style = env[name].strip(), name, True
                break
        else:
            url = s3sub.get("endpoint_url") or prof.get("endpoint_url")
            if url:
                endpoint, source, boto_style = url.strip(), f"profile {profile!r}", True

    https = _flag(env.get("AWS_HTTPS"), "AWS_HTTPS")
    virtual = _flag(env.get("AWS_VIRTUAL_HOSTING"), "AWS_VIRTUAL_HOSTING")
    if endpoint is not None:
        if boto_style:
            parts = urlsplit(endpoint)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
                raise S3ConfigurationError(
                    f"{source}={endpoint!r}: expected http(s)://host[:port] (or AWS_S3_ENDPOINT=host:port)"
                )
            if https is None:
                https = parts.scheme == "https"
            endpoint = parts.netloc
            if virtual is None:
                style = (s3sub.get("addressing_style") or "").lower()
                virtual = style == "virtual"
        host = urlsplit("//" + endpoint).hostname or endpoint
        if virtual is None and _is_local_host(host):
            virtual = False  # a bucket cannot be a sub-domain of an IP address
        gdal["AWS_S3_ENDPOINT"] = endpoint
    if https is None:
        https = True
    if virtual is None:
        virtual = True
    if endpoint is not None:
        gdal["AWS_HTTPS"] = "YES" if https else "NO"
        gdal["AWS_VIRTUAL_HOSTING"] = "TRUE" if virtual else "FALSE"
    if env.get("AWS_SHARED_CREDENTIALS_FILE") and not env.get("CPL_AWS_CREDENTIALS_FILE"):
        # boto's name of the credentials file; GDAL's is CPL_AWS_CREDENTIALS_FILE
        gdal["CPL_AWS_CREDENTIALS_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"]
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or prof.get("region")
    if region and not (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")):
        gdal["AWS_REGION"] = region
    return S3Settings(endpoint, bool(https), bool(virtual), region or None, profile, source, gdal)


def gdal_options(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """GDAL options for ``/vsis3/`` derived from the boto-style settings (endpoint,
    HTTPS, addressing, region) that GDAL would not read by itself; ``{}`` when GDAL's
    own variables say everything.  Raises :class:`S3ConfigurationError` as :func:`settings`."""
    return dict(settings(environ).gdal)


def vsi_path(url: str) -> str:
    """``/vsis3/bucket/key`` of ``s3://bucket/key`` (a ``/vsis3/`` path is returned as
    is): :func:`leafmap_tiles._paths.to_gdal_path`, after checking the bucket and key.

    Raises:
        S3ConfigurationError: not an ``s3://`` URL, or no bucket or no key.
    """
    from leafmap_tiles import _paths

    if url.startswith("/vsis3/"):
        rest = url[len("/vsis3/"):]
    elif url[:5].lower() == "s3://":
        rest = url[len("s3://"):]
    else:
        raise S3ConfigurationError(f"not an s3:// URL: {url!r}")
    bucket, _, key = rest.partition("/")
    if not bucket or not key.strip("/"):
        raise S3ConfigurationError(f"{url!r}: expected s3://bucket/key")
    return _paths.to_gdal_path(f"s3://{bucket}/{key}")
