"""Reading a static STAC catalogue without following it anywhere it should not go.

pystac's own traversal follows ``child`` and ``item`` links wherever they point: back up the tree (a
loop recurses until Python gives up), to any file on the machine, or to any URL (fetched with urllib,
unchecked). This walker reads each document once; it refuses loops and bounds the depth, the number of
documents and their size, with one-line errors that name the document. It reads either kind of static
catalogue, never a mix:

- **local** (:func:`walk_catalog`): documents on this machine, inside the catalogue's folder (or folders
  allowed explicitly); a link to a remote document is refused.
- **remote** (:func:`walk_remote_catalog`): documents fetched over https (or from hosts allowed
  explicitly) through the checked session of :mod:`fieldtruth.ingest._http`, whose every hop and
  connection passes the network guard. Relative hrefs, of links and of assets alike, resolve against the
  document's URL; a link or asset that is not an http(s) URL after that (``file://``, another scheme)
  is refused, so a remote catalogue never names a file on this machine.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

import pystac
import requests

from fieldtruth.ingest import netguard
from fieldtruth.ingest._http import guarded_session
from fieldtruth.ingest.errors import InputNotFoundError, StacError
from fieldtruth.ingest.guard import is_url, local_file

log = logging.getLogger(__name__)

#: Deepest chain of catalogues followed, most documents read, largest document (bytes).
MAX_DEPTH = 16
MAX_DOCUMENTS = 10_000
MAX_DOCUMENT_BYTES = 16 * 1024**2
#: Seconds to connect to a host, and to wait for its answer, per remote document.
REMOTE_TIMEOUT = (15, 60)


@dataclass
class _Walk:
    """One walk: how documents are read and links resolved, what was seen, the items found."""

    read: Callable[[Any], dict[str, Any]]
    resolve: Callable[[str, Any], Any]
    item: Callable[[dict[str, Any], Any], pystac.Item]
    seen: set[Hashable] = field(default_factory=set)
    items: list[pystac.Item] = field(default_factory=list)


def read_document(path: Path) -> dict[str, Any]:
    """Read one local STAC JSON document (size and nesting bounded).

    Raises:
        StacError: too large, not JSON, or not a JSON object.
    """
    if path.stat().st_size > MAX_DOCUMENT_BYTES:
        raise StacError(f"STAC document {str(path)!r} is over {MAX_DOCUMENT_BYTES} bytes; refused")
    return parse_document(path.read_bytes(), str(path))


def parse_document(data: bytes, where: str) -> dict[str, Any]:
    """Parse one STAC JSON document (nesting bounded by Python's recursion limit).

    Raises:
        StacError: not JSON, or not a JSON object.
    """
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
        raise StacError(f"{where!r} is not a readable STAC JSON document ({type(exc).__name__})") from exc
    if not isinstance(document, dict):
        raise StacError(f"{where!r} is not a STAC document (a JSON object); got {type(document).__name__}")
    return document


def walk_catalog(root: Path, allow_dirs: Sequence[Path] = ()) -> list[pystac.Item]:
    """Every Item of a local static catalogue (``catalog.json``/``collection.json``) or the Item itself.

    Args:
        root: the catalogue, collection or item file.
        allow_dirs: folders besides the root's own that its links may point into.

    Raises:
        StacError: a loop, a chain deeper than :data:`MAX_DEPTH`, over :data:`MAX_DOCUMENTS` documents,
            a malformed document or link, or a link to a remote document.
        RefusedInputError: a link to a path outside the allowed folders, or GDAL syntax.
    """
    root = root.resolve()
    within = (root.parent, *allow_dirs)

    def resolve(href: str, path: Path) -> Path:
        if is_url(href):
            raise StacError(f"STAC document {str(path)!r} links to the remote document {href!r}; a local "
                            "catalogue is read locally only (give a remote catalogue by its URL)")
        try:
            return local_file(href, path.parent, within, what=f"STAC link of {str(path)!r}")
        except InputNotFoundError as exc:
            raise StacError(str(exc)) from exc

    return _walk(_Walk(read_document, resolve, to_item), root)


def walk_remote_catalog(url: str, allow_hosts: Iterable[str] = ()) -> list[pystac.Item]:
    """Every Item of a static catalogue published over https (or of the Item at ``url``).

    Args:
        url: the catalogue's, collection's or item's URL.
        allow_hosts: hosts allowed although not public or not https (``--allow-host``).

    Raises:
        StacError: as :func:`walk_catalog`, a document that could not be fetched, or a link that is not an
            http(s) URL once resolved against its document (a local file).
        RefusedInputError: a URL the network guard refuses (not https, a private address, ...).
    """
    allow_hosts = tuple(allow_hosts)
    session = guarded_session(allow_hosts)

    def resolve(href: str, base: str) -> str:
        target = urldefrag(urljoin(base, href)).url
        if not is_url(target):
            raise StacError(f"STAC document {base!r} links to {href!r}, which is not an http(s) URL; a "
                            "remote catalogue may not name files on this machine")
        return netguard.check_url(target, allow_hosts)

    def read(target: str) -> dict[str, Any]:
        return fetch_document(session, target)

    with session:
        return _walk(_Walk(read, resolve, remote_item), resolve(url, url))


def fetch_document(session: requests.Session, url: str) -> dict[str, Any]:
    """Fetch one remote STAC document (size bounded) through a guarded session.

    Raises:
        StacError: the host answered with an error, the connection failed, or the document is too large
            or not a JSON object.
        RefusedInputError: a hop the network guard refused.
    """
    try:
        with session.get(url, stream=True, timeout=REMOTE_TIMEOUT,
                         headers={"Accept": "application/json, application/geo+json"}) as response:
            if response.status_code != 200:
                raise StacError(f"STAC document {url!r} could not be fetched (HTTP {response.status_code}); "
                                "check the URL")
            data = bytearray()
            for chunk in response.iter_content(1 << 16):
                data += chunk
                if len(data) > MAX_DOCUMENT_BYTES:
                    raise StacError(f"STAC document {url!r} is over {MAX_DOCUMENT_BYTES} bytes; refused")
    except requests.RequestException as exc:
        raise StacError(f"STAC document {url!r} could not be fetched ({type(exc).__name__}); check the URL "
                        "and the network") from exc
    log.debug("fetched STAC document %s (%d bytes)", url, len(data))
    return parse_document(bytes(data), url)


def _walk(walk: _Walk, root: Any) -> list[pystac.Item]:
    walk.seen.add(root)
    _visit(root, (root,), walk)
    return walk.items


def _visit(ref: Any, chain: tuple[Any, ...], walk: _Walk) -> None:
    document = walk.read(ref)
    kind = document.get("type")
    if kind == "Feature":
        walk.items.append(walk.item(document, ref))
        return
    if kind not in ("Catalog", "Collection"):
        raise StacError(f"{str(ref)!r} has type {kind!r}; expected a STAC Item (Feature), Catalog or "
                        "Collection")
    for target in [walk.resolve(href, ref) for href in _link_hrefs(document, ref)]:
        if target in chain:
            raise StacError(
                f"STAC catalogue links loop: {str(ref)!r} links back to {str(target)!r}; fix its child links"
            )
        if target in walk.seen:
            continue  # reached before by another path: read once
        if len(chain) >= MAX_DEPTH:
            raise StacError(f"STAC catalogue {str(chain[0])!r} nests catalogues over {MAX_DEPTH} deep; "
                            "refused")
        walk.seen.add(target)
        if len(walk.seen) > MAX_DOCUMENTS:
            raise StacError(
                f"STAC catalogue {str(chain[0])!r} links to over {MAX_DOCUMENTS} documents; split it or "
                "use a STAC API search"
            )
        _visit(target, (*chain, target), walk)


def _link_hrefs(document: dict[str, Any], ref: Any) -> list[str]:
    """The hrefs of a catalogue's ``child`` and ``item`` links (as written; the walk resolves them)."""
    links = document.get("links", [])
    if not isinstance(links, list):
        raise StacError(f"STAC document {str(ref)!r}: 'links' is a {type(links).__name__}, not a list")
    hrefs = []
    for link in links:
        if not isinstance(link, dict) or not isinstance(link.get("href"), str):
            raise StacError(f"STAC document {str(ref)!r} has a link without a text 'href'")
        if link.get("rel") in ("child", "item"):
            hrefs.append(link["href"])
    return hrefs


def remote_item(document: dict[str, Any], url: str) -> pystac.Item:
    """A pystac Item from a document fetched from ``url``, every asset href resolved against that URL.

    pystac would keep an absolute path (``/data/x.tif``) as a local file; by the URL rules it is a path on
    the document's host, and so it is here.

    Raises:
        StacError: not a valid Item, or an asset that is not an http(s) URL once resolved.
    """
    item = to_item(document, url)
    for key, asset in item.assets.items():
        asset.href = urldefrag(urljoin(url, asset.href)).url
        if not is_url(asset.href):
            raise StacError(f"STAC item {url!r}: asset {key!r} is not an http(s) URL once resolved; a remote "
                            "item may not name files on this machine")
    return item


def to_item(document: dict[str, Any], path: Path | str) -> pystac.Item:
    """A pystac Item from a document read at ``path`` (its hrefs resolve against that location).

    Raises:
        StacError: not a valid Item.
    """
    try:
        return pystac.Item.from_dict(document, href=str(path), migrate=True)
    except Exception as exc:  # pystac raises many kinds on malformed items
        raise StacError(f"{str(path)!r} is not a valid STAC Item ({type(exc).__name__}); fix or remove "
                        "it") from exc
