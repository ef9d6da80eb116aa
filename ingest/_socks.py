"""A SOCKS5 relay on 127.0.0.1 that asks a policy before every connection GDAL's curl makes.

curl connects to the relay instead of to the host (``GDAL_HTTP_PROXY=socks5h://...``). With ``socks5h``
the relay, not curl, gets the host *name* and port; it asks the policy which addresses it may connect to,
connects to one of exactly those addresses, and copies bytes both ways. A redirect to another host is a
new connection and is asked again; a name that resolves to another address by the time it is fetched
cannot slip through, since the relay connects to the address it checked. Only the standard library.
"""

from __future__ import annotations

import logging
import select
import socket
import struct
import threading
from collections.abc import Callable
from typing import NamedTuple

log = logging.getLogger(__name__)

#: Seconds allowed for the SOCKS handshake, for connecting upstream, and for a connection to stay idle.
HANDSHAKE_TIMEOUT = 30.0
CONNECT_TIMEOUT = 15.0
IDLE_TIMEOUT = 300.0
_BUFFER = 256 * 1024
_TLS_HANDSHAKE = 0x16  # first byte of every TLS record that opens a handshake (ClientHello)


class Refused(Exception):
    """The policy refused a connection; the message says why."""


class Route(NamedTuple):
    """Where the policy lets a connection go."""

    addresses: tuple[str, ...]
    tls_only: bool


#: ``(host, port, user) -> Route``, or raise :class:`Refused`.
Policy = Callable[[str, int, str], Route]


class Relay:
    """The relay: a listening socket on 127.0.0.1 (a free port) and a thread per connection."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.server.getsockname()[1]
        threading.Thread(target=self._accept, name="fieldtruth-netguard", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._serve, args=(client,), name="fieldtruth-netguard-conn",
                             daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            client.settimeout(HANDSHAKE_TIMEOUT)
            user = _greet(client)
            host, port = _read_request(client)
            try:
                route = self.policy(host, port, user)
                upstream = _connect(route.addresses, port)
            except Refused as exc:
                log.warning("network guard: refused a connection to %s port %d: %s", host, port, exc)
                client.sendall(_reply(0x02))  # connection not allowed by ruleset
                return
            except OSError:
                client.sendall(_reply(0x05))  # connection refused
                return
            client.sendall(_reply(0x00))
            first = client.recv(_BUFFER)
            if route.tls_only and first[:1] != bytes([_TLS_HANDSHAKE]):
                log.warning("network guard: refused plain-text traffic to %s port %d (only https is read "
                            "from hosts that were not allowed explicitly)", host, port)
                return
            upstream.sendall(first)
            _splice(client, upstream)
        except (OSError, ValueError, struct.error):
            pass  # a client that hung up or spoke nonsense: nothing was relayed
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    sock.close()


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ValueError("client closed the connection during the SOCKS handshake")
        data += chunk
    return data


def _greet(client: socket.socket) -> str:
    """SOCKS5 greeting with username/password authentication (RFC 1929); returns the username."""
    version, count = _recv_exact(client, 2)
    methods = _recv_exact(client, count)
    if version != 5 or 0x02 not in methods:
        client.sendall(b"\x05\xff")
        raise ValueError("not a SOCKS5 client offering username/password authentication")
    client.sendall(b"\x05\x02")
    _, user_len = _recv_exact(client, 2)
    user = _recv_exact(client, user_len).decode("ascii", "replace")
    (password_len,) = _recv_exact(client, 1)
    _recv_exact(client, password_len)
    client.sendall(b"\x01\x00")
    return user


def _read_request(client: socket.socket) -> tuple[str, int]:
    version, command, _, kind = _recv_exact(client, 4)
    if version != 5 or command != 1:  # CONNECT only
        client.sendall(_reply(0x07))
        raise ValueError("only SOCKS5 CONNECT is relayed")
    if kind == 1:
        host = socket.inet_ntop(socket.AF_INET, _recv_exact(client, 4))
    elif kind == 4:
        host = socket.inet_ntop(socket.AF_INET6, _recv_exact(client, 16))
    elif kind == 3:
        (length,) = _recv_exact(client, 1)
        host = _recv_exact(client, length).decode("idna")
    else:
        client.sendall(_reply(0x08))
        raise ValueError(f"unknown SOCKS5 address type {kind}")
    (port,) = struct.unpack(">H", _recv_exact(client, 2))
    return host, port


def _reply(code: int) -> bytes:
    return bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0])


def _connect(addresses: tuple[str, ...], port: int) -> socket.socket:
    last: OSError = OSError("no address to connect to")
    for address in addresses:
        try:
            sock = socket.create_connection((address, port), timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            last = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise last


def _splice(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes or the connection stays idle too long."""
    for sock in (a, b):
        sock.settimeout(None)
    peers = {a: b, b: a}
    while True:
        ready, _, _ = select.select([a, b], [], [], IDLE_TIMEOUT)
        if not ready:
            return
        for sock in ready:
            data = sock.recv(_BUFFER)
            if not data:
                return
            peers[sock].sendall(data)
