"""Remote imagery: which hrefs may be read, and the GDAL settings that make COG reads over HTTP fast.

An href from a STAC document is outside input: it could point at ``file:///etc/passwd``, at a GDAL
virtual file system (``/vsicurl/http://127.0.0.1/...``), at the machine's own services
(``http://127.0.0.1``) or at a cloud metadata endpoint (``169.254.169.254``). :func:`check_href` refuses
all of those before GDAL sees them, unless the user (or a test) allows a host explicitly; the network
guard (:mod:`fieldtruth.ingest.netguard`) then checks every connection GDAL makes, redirects included.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import rasterio

from fieldtruth.ingest import netguard
from fieldtruth.ingest.errors import RasterRefusedError, RefusedInputError
from fieldtruth.ingest.guard import is_url, local_file, refuse_gdal_syntax

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
    """Whether an href is an http(s) URL. Anything else is a local path (GDAL syntax such as ``/vsicurl/``
    included: :func:`check_href` and the raster opener refuse it)."""
    return is_url(href)


def check_href(
    href: str, *, allow_hosts: Iterable[str] = (), allow_local: bool = True, base: Path | None = None,
    within: Sequence[Path] | None = None,
) -> str:
    """Return a safe href to read, or refuse it.

    Args:
        href: a URL or local path from an outside document.
        allow_hosts: hosts that may be read even if they are loopback or private (and over plain http).
        allow_local: whether local paths are allowed (relative ones resolve against ``base``).
        base: folder that relative local paths are resolved against.
        within: folders a local path must lie in (the document's own, say); anywhere when None.

    Raises:
        RasterRefusedError: the scheme is not https (or an allowed host), the host is loopback,
            link-local, private or otherwise not public, a local path is not allowed, is GDAL syntax
            (``/vsi...``), is not a file or lies outside ``within``.
        InputNotFoundError: a local path that does not exist.
    """
    try:
        if is_url(href):
            return netguard.check_url(href, allow_hosts)
        refuse_gdal_syntax(href, "href")
        if not allow_local:
            raise RefusedInputError(f"href {href!r} is a local path, and local paths are not allowed here")
        return str(local_file(href, base, within, what="href"))
    except RasterRefusedError:
        raise
    except RefusedInputError as exc:
        raise RasterRefusedError(str(exc)) from exc


@contextmanager
def gdal_http_env(**overrides: str | int | bool) -> Iterator[rasterio.Env]:
    """A rasterio environment with :data:`GDAL_HTTP_OPTIONS` (plus overrides) in force; the network guard
    is started first, so every connection GDAL makes in it is checked."""
    netguard.ensure_gdal_guard()
    with rasterio.Env(**{**GDAL_HTTP_OPTIONS, **overrides}) as env:
        yield env
