"""The network guard: every connection is checked when it is made, not only the URL it started from.

Checking a URL before GDAL sees it is not enough: a public https host can redirect to ``127.0.0.1`` or to
a cloud metadata address (``169.254.169.254``), and a name can resolve to another address by the time it
is fetched. So the policy (:func:`route`) is asked at connection time, for each connection:

- GDAL (rasterio's and pyogrio's libraries): ``GDAL_HTTP_PROXY`` names a SOCKS5 relay in this process
  (:mod:`fieldtruth.ingest._socks`) that resolves each host itself, connects only to addresses the policy
  allows, and lets only TLS through to hosts that were not allowed explicitly. Redirects are new
  connections, so every hop is checked. OGR (vector files) is given a token the relay refuses outright:
  a sector dataset or AOI never reaches the network.
- fieldtruth's own HTTP (STAC API searches): :func:`fieldtruth.ingest._http.guarded_session`.

The policy: an address is reachable when it is public (``ipaddress``'s ``is_global``, IPv4 inside IPv6
checked too), or when its host (``host`` or ``host:port``) was allowed explicitly in this process
(``--allow-host``); allowed hosts may also be read over plain http. :func:`ensure_gdal_guard` starts the
relay once per process, removes ``NO_PROXY`` (curl would bypass the relay for the hosts it lists), and
sets the GDAL options that keep VRTs from running Python and GDAL from opening side-car files.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterable
from urllib.parse import urlsplit

from fieldtruth.ingest._socks import Refused, Relay, Route
from fieldtruth.ingest.errors import RefusedInputError

log = logging.getLogger(__name__)

#: Set in the environment for rasterio's GDAL once the guard starts (see the module docstring).
GDAL_SAFETY = {
    "GDAL_VRT_ENABLE_PYTHON": "NO",  # a VRT pixel function never runs Python code
    # No side-car discovery (x.tif.ovr, x.tif.msk, x.aux, x.tif.aux.xml): files GDAL would open unseen.
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

_lock = threading.Lock()
_allowed: set[str] = set()
_tokens: dict[str, str] = {}
_started_in: int | None = None
_relay: Relay | None = None


def normalise_host(entry: str) -> str:
    """An allow-list entry (``host``, ``host:port``, ``[v6]:port``) in the form connections are matched."""
    return entry.strip().lower().replace("[", "").replace("]", "")


def allow(hosts: Iterable[str]) -> None:
    """Allow ``hosts`` (``host`` or ``host:port``) for the rest of this process, redirects to them
    included."""
    entries = {normalise_host(h) for h in hosts if h and h.strip()}
    with _lock:
        _allowed.update(entries)


def is_allowed(host: str, port: int | None, extra: Iterable[str] = (), *, in_process: bool = True) -> bool:
    """Whether ``host`` (on ``port``) was allowed explicitly: by ``extra``, or (``in_process``) by any
    caller in this process (what connections, redirects included, are judged by)."""
    name = normalise_host(host)
    with _lock:
        entries = (_allowed if in_process else set()) | {normalise_host(h) for h in extra}
    return name in entries or (port is not None and f"{name}:{port}" in entries)


def is_public(address: str) -> bool:
    """Whether an IP address is publicly routable (and so not this machine, its network or a metadata
    service); an IPv4 address carried inside IPv6 (mapped, 6to4, Teredo, NAT64) is judged as IPv4."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not embedded.is_global:
            return False
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int) -> tuple[str, ...]:
    """The addresses ``host`` resolves to, in the resolver's order, without duplicates.

    Raises:
        RefusedInputError: the name does not resolve.
    """
    try:
        infos = socket.getaddrinfo(normalise_host(host), port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise RefusedInputError(f"host {host!r} could not be resolved ({exc}); check the URL") from exc
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


def public_addresses(host: str, port: int, *, what: str | None = None) -> tuple[str, ...]:
    """Resolve ``host``; return its addresses when every one of them is public.

    Raises:
        RefusedInputError: the name does not resolve, or one of its addresses is not public.
    """
    addresses = resolve(host, port)
    for address in addresses:
        if not is_public(address):
            raise RefusedInputError(
                f"{what or 'host ' + repr(host)} resolves to {address}, a loopback, private, link-local or "
                "otherwise non-public address; refusing to connect (allow the host explicitly with "
                "--allow-host if it is yours)"
            )
    return addresses


def addresses_for(host: str, port: int, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The addresses a connection to ``host:port`` may use: any for an allowed host, else public ones.

    Raises:
        RefusedInputError: as :func:`public_addresses`.
    """
    if is_allowed(host, port, extra):
        return resolve(host, port)
    return public_addresses(host, port)


def check_url(url: str, allow_hosts: Iterable[str] = ()) -> str:
    """Return ``url`` if it may be read: https to a public host, or http(s) to a host allowed explicitly.

    Raises:
        RefusedInputError: another scheme, plain http to a host not allowed, no host, or a host that
            resolves to a non-public address.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise RefusedInputError(f"URL {url!r} is malformed ({exc})") from exc
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise RefusedInputError(f"href {url!r} is not an http(s) URL with a host; only https URLs are read")
    if is_allowed(host, port, allow_hosts, in_process=False):
        return url
    if parts.scheme != "https":
        raise RefusedInputError(f"href {url!r} is not https; only https is read from remote hosts")
    public_addresses(host, port, what=f"href {url!r}")
    return url


def route(host: str, port: int, user: str) -> Route:
    """The relay's policy: where a GDAL connection to ``host:port`` may go (see the module docstring)."""
    if _tokens.get(user) != "read":
        raise Refused("this library may not reach the network (vector files are read locally only)")
    allowed = is_allowed(host, port)
    try:
        return Route(addresses_for(host, port), tls_only=not allowed)
    except RefusedInputError as exc:
        raise Refused(str(exc)) from exc


def ensure_gdal_guard() -> None:
    """Start the relay in this process (once) and point rasterio's and pyogrio's GDAL at it."""
    global _started_in, _relay
    with _lock:
        if _started_in == os.getpid():
            return
        relay = Relay(route)
        read, deny = secrets.token_hex(16), secrets.token_hex(16)
        _tokens.clear()
        _tokens.update({read: "read", deny: "deny"})
        proxy = f"socks5h://127.0.0.1:{relay.port}"
        for name in ("no_proxy", "NO_PROXY"):
            os.environ.pop(name, None)
        os.environ.update({"GDAL_HTTP_PROXY": proxy, "GDAL_HTTP_PROXYUSERPWD": f"{read}:-", **GDAL_SAFETY})
        _configure_ogr(proxy, deny)
        _started_in, _relay = os.getpid(), relay
    log.debug("network guard listening on 127.0.0.1:%d", relay.port)


def _configure_ogr(proxy: str, deny: str) -> None:
    """pyogrio has its own GDAL: its global options win over the environment set for rasterio's."""
    import pyogrio

    pyogrio.set_gdal_config_options({
        "GDAL_HTTP_PROXY": proxy, "GDAL_HTTP_PROXYUSERPWD": f"{deny}:-",
        "GDAL_DISABLE_READDIR_ON_OPEN": "NO",  # shapefiles need their .dbf/.shx/.prj side-cars
    })
