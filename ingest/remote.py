"""Remote imagery: which hrefs may be read, and the GDAL settings that make COG reads over HTTP fast.

An href from a STAC document is outside input: it could point at ``file:///etc/passwd``, at the
machine's own services (``http://127.0.0.1``) or at a cloud metadata endpoint (``169.254.169.254``).
:func:`check_href` refuses all of those before GDAL sees them, unless the user (or a test) allows a
host explicitly.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import rasterio

from fieldtruth.ingest.errors import RasterRefusedError

log = logging.getLogger(__name__)

#: GDAL configuration for reading cloud-optimised GeoTIFFs over HTTP with range requests.
GDAL_HTTP_OPTIONS: dict[str, str | int | bool] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # no directory listing per open
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF,.vrt",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "GDAL_HTTP_VERSION": "2",
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": 64 * 1024 * 1024,
    "GDAL_HTTP_MAX_RETRY": 4,
    "GDAL_HTTP_RETRY_CODES": "ALL",  # also retry dropped connections, not only 429/5xx
    "GDAL_HTTP_RETRY_DELAY": 0.5,
    "GDAL_HTTP_TIMEOUT": 60,
    "GDAL_HTTP_CONNECTTIMEOUT": 15,
    "CPL_VSIL_CURL_USE_HEAD": "NO",
}


def is_remote(href: str) -> bool:
    """Whether an href is a URL or GDAL virtual file read over the network, rather than a local path."""
    return urlsplit(href).scheme in ("http", "https") or href.startswith(("/vsicurl/", "/vsis3/", "/vsigs/", "/vsiaz/"))


def check_href(href: str, *, allow_hosts: Iterable[str] = (), allow_local: bool = True, base: Path | None = None) -> str:
    """Return a safe href to read, or refuse it.

    Args:
        href: a URL or local path from an outside document.
        allow_hosts: hosts that may be read even if they are loopback or private (and over plain http).
        allow_local: whether local paths are allowed (relative ones resolve against ``base``).
        base: folder that relative local paths are resolved against.

    Raises:
        RasterRefusedError: the scheme is not https (or an allowed host), or the host is loopback,
            link-local, private or otherwise not public, or a local path is not allowed.
    """
    parts = urlsplit(href)
    allowed = {h.lower() for h in allow_hosts}
    if parts.scheme in ("http", "https"):
        host = (parts.hostname or "").lower()
        if host in allowed or f"{host}:{parts.port}" in allowed:
            return href
        if parts.scheme != "https":
            raise RasterRefusedError(f"href {href!r} is not https; only https is read from remote hosts")
        _refuse_non_public(href, host, parts.port or 443)
        return href
    if parts.scheme == "":
        if not allow_local:
            raise RasterRefusedError(f"href {href!r} is a local path, and local paths are not allowed here")
        path = Path(href)
        return str((base / path).resolve() if base is not None and not path.is_absolute() else path.resolve())
    raise RasterRefusedError(f"href {href!r} has scheme {parts.scheme!r}; only https URLs and local paths are read")


def _refuse_non_public(href: str, host: str, port: int) -> None:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise RasterRefusedError(f"href {href!r}: host {host!r} could not be resolved ({exc})") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise RasterRefusedError(
                f"href {href!r} resolves to {address}, a loopback, private or link-local address; refusing to "
                "read it (allow the host explicitly if it is yours)"
            )


@contextmanager
def gdal_http_env(**overrides: str | int | bool) -> Iterator[rasterio.Env]:
    """A rasterio environment with :data:`GDAL_HTTP_OPTIONS` (plus overrides) in force."""
    with rasterio.Env(**{**GDAL_HTTP_OPTIONS, **overrides}) as env:
        yield env
