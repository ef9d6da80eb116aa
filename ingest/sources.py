"""One entry point for every imagery source: a path or URL in, a list of :class:`Scene` out."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from fieldtruth.ingest.errors import InputNotFoundError
from fieldtruth.ingest.remote import is_remote
from fieldtruth.ingest.scene import Scene, open_scene
from fieldtruth.ingest.stac import StacError, scenes_from_catalog, scenes_from_item_file, search_stac_api

log = logging.getLogger(__name__)


def open_imagery(
    source: str | Path, *, collection: str | None = None, datetime: str | None = None,
    bbox: Sequence[float] | None = None, max_cloud: float | None = None, allow_hosts: Iterable[str] = (),
) -> list[Scene]:
    """Open an imagery source as scenes.

    Args:
        source: a scene folder, a GeoTIFF/VRT, a STAC Item JSON, a static STAC catalogue
            (``catalog.json``/``collection.json``), or a STAC API URL (with ``collection``).
        collection: STAC API collection to search.
        datetime: STAC API date or range.
        bbox: STAC API AOI (west, south, east, north) in degrees.
        max_cloud: STAC API largest cloud cover in percent.
        allow_hosts: hosts allowed despite being loopback/private or plain http.

    Raises:
        InputNotFoundError: a local source that does not exist.
        StacError: a STAC source that yields no usable scene.
    """
    text = str(source)
    if is_remote(text):
        if not is_stac_api(text):
            raise StacError(f"remote STAC documents are read through a STAC API; give the API root for {text!r}")
        if not collection:
            raise StacError(f"{text!r} looks like a STAC API; give --collection (and --datetime) to search it")
        return search_stac_api(text, collection=collection, bbox=bbox, datetime=datetime, max_cloud=max_cloud,
                               allow_hosts=allow_hosts)
    path = Path(text)
    if not path.exists():
        raise InputNotFoundError(f"imagery {text!r} does not exist; give a scene folder, a GeoTIFF, or a STAC file")
    if path.suffix.lower() == ".json":
        return _scenes_from_json(path, allow_hosts=allow_hosts)
    return [open_scene(path)]


def is_stac_api(source: str | Path) -> bool:
    """True when ``source`` names a STAC API root (a remote address that is not a JSON document)."""
    text = str(source)
    return is_remote(text) and not text.lower().split("?")[0].endswith(".json")


def _scenes_from_json(path: Path, *, allow_hosts: Iterable[str]) -> list[Scene]:
    try:
        kind = json.loads(path.read_text(encoding="utf-8")).get("type")
    except (ValueError, AttributeError) as exc:
        raise StacError(f"{str(path)!r} is not a STAC JSON document: {exc}") from exc
    if kind == "Feature":
        return scenes_from_item_file(path, allow_hosts=allow_hosts)
    if kind in ("Catalog", "Collection"):
        return scenes_from_catalog(path, allow_hosts=allow_hosts)
    raise StacError(f"{str(path)!r} has type {kind!r}; expected a STAC Item (Feature), Catalog or Collection")
