"""Reading a static STAC catalogue without following it anywhere it should not go.

pystac's own traversal follows ``child`` and ``item`` links wherever they point: back up the tree (a
loop recurses until Python gives up), to any file on the machine, or to any URL (fetched with urllib,
unchecked). This walker reads local documents only, inside the catalogue's folder (or folders allowed
explicitly), each once; it refuses loops and bounds the depth, the number of documents and their size,
with one-line errors that name the document.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pystac

from fieldtruth.ingest.errors import InputNotFoundError, StacError
from fieldtruth.ingest.guard import is_url, local_file

log = logging.getLogger(__name__)

#: Deepest chain of catalogues followed, most documents read, largest document (bytes).
MAX_DEPTH = 16
MAX_DOCUMENTS = 10_000
MAX_DOCUMENT_BYTES = 16 * 1024**2


@dataclass
class _Walk:
    within: tuple[Path, ...]
    seen: set[Path] = field(default_factory=set)
    items: list[pystac.Item] = field(default_factory=list)


def read_document(path: Path) -> dict[str, Any]:
    """Read one local STAC JSON document (size and nesting bounded).

    Raises:
        StacError: too large, not JSON, or not a JSON object.
    """
    if path.stat().st_size > MAX_DOCUMENT_BYTES:
        raise StacError(f"STAC document {str(path)!r} is over {MAX_DOCUMENT_BYTES} bytes; refused")
    try:
        document = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
        raise StacError(f"{str(path)!r} is not a readable STAC JSON document ({type(exc).__name__})") from exc
    if not isinstance(document, dict):
        raise StacError(f"{str(path)!r} is not a STAC document (a JSON object); got "
                        f"{type(document).__name__}")
    return document


def walk_catalog(root: Path, allow_dirs: Sequence[Path] = ()) -> list[pystac.Item]:
    """Every Item of a static catalogue (``catalog.json``/``collection.json``) or the Item itself.

    Args:
        root: the catalogue, collection or item file.
        allow_dirs: folders besides the root's own that its links may point into.

    Raises:
        StacError: a loop, a chain deeper than :data:`MAX_DEPTH`, over :data:`MAX_DOCUMENTS` documents,
            a malformed document or link, or a link to a remote document.
        RefusedInputError: a link to a path outside the allowed folders, or GDAL syntax.
    """
    root = root.resolve()
    walk = _Walk(within=(root.parent, *allow_dirs), seen={root})
    _visit(root, (root,), walk)
    return walk.items


def _visit(path: Path, chain: tuple[Path, ...], walk: _Walk) -> None:
    document = read_document(path)
    kind = document.get("type")
    if kind == "Feature":
        walk.items.append(to_item(document, path))
        return
    if kind not in ("Catalog", "Collection"):
        raise StacError(f"{str(path)!r} has type {kind!r}; expected a STAC Item (Feature), Catalog or "
                        "Collection")
    for target in _links(document, path, walk.within):
        if target in chain:
            raise StacError(
                f"STAC catalogue links loop: {str(path)!r} links back to {str(target)!r}; fix its child links"
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


def _links(document: dict[str, Any], path: Path, within: tuple[Path, ...]) -> list[Path]:
    """The local documents a catalogue's ``child`` and ``item`` links point to (checked by the guard)."""
    links = document.get("links", [])
    if not isinstance(links, list):
        raise StacError(f"STAC document {str(path)!r}: 'links' is a {type(links).__name__}, not a list")
    targets = []
    for link in links:
        if not isinstance(link, dict) or not isinstance(link.get("href"), str):
            raise StacError(f"STAC document {str(path)!r} has a link without a text 'href'")
        if link.get("rel") not in ("child", "item"):
            continue
        href = link["href"]
        if is_url(href):
            raise StacError(
                f"STAC document {str(path)!r} links to the remote document {href!r}; remote catalogues are "
                "read through a STAC API (give its root URL with --collection)"
            )
        try:
            targets.append(local_file(href, path.parent, within, what=f"STAC link of {str(path)!r}"))
        except InputNotFoundError as exc:
            raise StacError(str(exc)) from exc
    return targets


def to_item(document: dict[str, Any], path: Path) -> pystac.Item:
    """A pystac Item from a document read at ``path`` (its hrefs resolve against that location).

    Raises:
        StacError: not a valid Item.
    """
    try:
        return pystac.Item.from_dict(document, href=str(path), migrate=True)
    except Exception as exc:  # pystac raises many kinds on malformed items
        raise StacError(f"{str(path)!r} is not a valid STAC Item ({type(exc).__name__}); fix or remove "
                        "it") from exc
