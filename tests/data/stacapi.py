"""A minimal STAC API on 127.0.0.1 for tests: a landing page and ``/search`` over a list of items.

It implements what pystac-client needs (landing page with conformance classes and a search link;
GET and POST item search with ``collections``, ``bbox``, ``datetime`` and the ``query`` extension for
``eo:cloud_cover``), nothing more. For tests of the network guard it can answer searches with a
``next`` page link anywhere (``next_href``) or redirect them (``search_redirect``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pystac

CONFORMS = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#query",
]


def _matches(item: dict, params: dict) -> bool:
    collections = params.get("collections")
    if collections and item.get("collection") not in collections:
        return False
    bbox = params.get("bbox")
    if bbox:
        w, s, e, n = (float(v) for v in bbox)
        iw, is_, ie, in_ = item["bbox"]
        if iw > e or ie < w or is_ > n or in_ < s:
            return False
    limit = ((params.get("query") or {}).get("eo:cloud_cover") or {}).get("lte")
    return limit is None or item["properties"].get("eo:cloud_cover", 0) <= float(limit)


def _handler(items: list[dict], next_href: str | None,
             search_redirect: str | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/geo+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _base(self) -> str:
            return f"http://{self.headers['Host']}"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            parts = urlsplit(self.path)
            if parts.path in ("", "/"):
                base = self._base()
                search = {"href": base + "/search", "type": "application/geo+json"}
                self._send({"type": "Catalog", "id": "test-api", "description": "test STAC API",
                            "stac_version": "1.0.0", "conformsTo": CONFORMS, "links": [
                                {"rel": "self", "href": base + "/"}, {"rel": "root", "href": base + "/"},
                                {"rel": "search", "method": "GET", **search},
                                {"rel": "search", "method": "POST", **search}]})
            elif parts.path == "/search":
                query = parse_qs(parts.query)
                params = {"collections": (query.get("collections", [""])[0].split(",")
                                          if "collections" in query else None),
                          "bbox": query["bbox"][0].split(",") if "bbox" in query else None,
                          "query": json.loads(query["query"][0]) if "query" in query else None}
                self._search(params)
            else:
                self.send_error(404)

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", 0))
            self._search(json.loads(self.rfile.read(length) or b"{}"))

        def _search(self, params: dict) -> None:
            if search_redirect:
                self.send_response(302)
                self.send_header("Location", search_redirect)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            found = [item for item in items if _matches(item, params)]
            links = [{"rel": "next", "href": next_href, "method": "GET"}] if next_href else []
            self._send({"type": "FeatureCollection", "features": found, "links": links})

    return Handler


@contextmanager
def stac_api(items: list[pystac.Item], *, next_href: str | None = None,
             search_redirect: str | None = None) -> Iterator[str]:
    """Serve the items on 127.0.0.1 for the duration of the block; yields the API root URL.

    Args:
        items: what every search finds (filtered by its parameters).
        next_href: a ``next`` page link added to every search answer.
        search_redirect: answer every search with a 302 to this URL instead.
    """
    payload = [item.to_dict() for item in items]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(payload, next_href, search_redirect))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
