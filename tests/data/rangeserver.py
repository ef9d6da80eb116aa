"""A throwaway HTTP server on 127.0.0.1 that honours Range requests, for tests of remote COG reads.

Modes: ``normal`` serves files with single byte ranges; ``flaky`` drops the connection on every
other request (GDAL must retry); ``redirect`` answers every ``/r/<path>`` with a 302 to ``/<path>`` (on
this server, or on ``redirect_to``: how a host redirects a reader to another one). Every request is
counted in the log, so a test can assert that a refused read never reached the server.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class ServerLog:
    """What the server saw."""

    requests: list[tuple[str, str | None]] = field(default_factory=list)
    dropped: int = 0

    @property
    def range_requests(self) -> int:
        return sum(1 for _, rng in self.requests if rng)


def _handler(root: Path, mode: str, log: ServerLog, redirect_to: str) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
            self._serve(body=False)

        def do_GET(self) -> None:  # noqa: N802
            self._serve(body=True)

        def _serve(self, body: bool) -> None:
            rng = self.headers.get("Range")
            with lock:
                log.requests.append((self.path, rng))
                count = len(log.requests)
            if mode == "redirect" and self.path.startswith("/r/"):
                self.send_response(302)
                self.send_header("Location", redirect_to + self.path[2:])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if mode == "flaky" and count % 2 == 1:
                with lock:
                    log.dropped += 1
                # Reset the connection (RST, not FIN): what a dying proxy or a network cut looks like.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                return
            path = (root / self.path.lstrip("/").split("?")[0]).resolve()
            if root.resolve() not in path.parents or not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            start, end = 0, len(data) - 1
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
            if match:
                start = int(match.group(1))
                end = min(int(match.group(2)) if match.group(2) else end, len(data) - 1)
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start + 1))
            self.end_headers()
            if body:
                try:
                    self.wfile.write(data[start : end + 1])
                except (ConnectionResetError, BrokenPipeError):
                    pass  # the client read what it needed and hung up (GDAL does, on speculative reads)

    return Handler


@contextmanager
def serve(root: Path, mode: str = "normal", *, host: str = "127.0.0.1",
          redirect_to: str = "") -> Iterator[tuple[str, ServerLog]]:
    """Serve ``root`` on ``host`` (a free port) for the duration of the block; yields (base URL, log).

    ``redirect_to``: base URL that mode ``redirect`` sends readers to (this server when empty).
    """
    log = ServerLog()
    server = ThreadingHTTPServer((host, 0), _handler(root, mode, log, redirect_to))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
