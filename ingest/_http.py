"""fieldtruth's own HTTP (STAC API searches): a requests session that checks every hop and connection.

Each request, and each redirect (requests sends every hop through the adapter), must be https unless its
host was allowed explicitly; each connection resolves the host, checks every address with the network
guard's policy (:func:`fieldtruth.ingest.netguard.addresses_for`) and connects to a checked address, so
a name that resolves differently at connection time cannot slip through. TLS still verifies the host
name. Proxies, ``NO_PROXY`` and ``.netrc`` from the environment are not used.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection

from fieldtruth.ingest import netguard
from fieldtruth.ingest.errors import RefusedInputError

log = logging.getLogger(__name__)

#: Most redirects one request may follow (each one checked).
MAX_REDIRECTS = 5


class _CheckedConnect:
    """Connect only to addresses the network guard allows (mixed into urllib3's connections)."""

    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        last: OSError = OSError("no address")
        for address in netguard.addresses_for(self.host, self.port):
            try:
                return connection.create_connection((address, self.port), self.timeout,
                                                    source_address=self.source_address,
                                                    socket_options=self.socket_options)
            except TimeoutError as exc:
                raise ConnectTimeoutError(self, f"connection to {self.host} timed out") from exc
            except OSError as exc:
                last = exc
        raise NewConnectionError(self, f"Failed to establish a new connection: {last}")  # type: ignore[arg-type]


class _HTTPConnection(_CheckedConnect, HTTPConnection):
    pass


class _HTTPSConnection(_CheckedConnect, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        check_scheme(str(request.url))
        return super().send(request, *args, **kwargs)


def check_scheme(url: str) -> None:
    """Refuse a URL that is not https, unless its host was allowed explicitly (then http is read too).

    Raises:
        RefusedInputError: another scheme, or plain http to a host not allowed.
    """
    parts = urlsplit(url)
    allowed = netguard.is_allowed(parts.hostname or "", parts.port)
    if parts.scheme == "https" or (parts.scheme == "http" and allowed):
        return
    raise RefusedInputError(f"URL {url!r} is not https; only https is read from hosts not allowed explicitly")


def guarded_session(allow_hosts: Iterable[str] = ()) -> requests.Session:
    """A requests session whose every hop and connection passes the network guard.

    Args:
        allow_hosts: hosts (``host`` or ``host:port``) allowed although not public or not https.
    """
    netguard.allow(allow_hosts)
    session = requests.Session()
    session.trust_env = False
    session.max_redirects = MAX_REDIRECTS
    adapter = _GuardedAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
