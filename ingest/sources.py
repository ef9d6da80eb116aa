"""One entry point for every imagery source: a path or URL in, a list of :class:`Scene` out."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from fieldtruth.ingest._stac_walk import read_document
from fieldtruth.ingest.errors import InputNotFoundError, StacError
from fieldtruth.ingest.remote import is_remote
from fieldtruth.ingest.safe import is_safe_folder, open_safe
from fieldtruth.ingest.scene import Scene, open_scene
from fieldtruth.ingest.stac import (
    scenes_from_catalog,
    scenes_from_item_file,
    scenes_from_remote_catalog,
    search_stac_api,
)

log = logging.getLogger(__name__)


def open_imagery(
    source: str | Path, *, collection: str | None = None, datetime: str | None = None,
    bbox: Sequence[float] | None = None, max_cloud: float | None = None, allow_hosts: Iterable[str] = (),
    allow_dirs: Sequence[str | Path] = (),
) -> list[Scene]:
    """Open an imagery source as scenes.

    Args:
        source: a scene folder, a GeoTIFF/VRT, a Sentinel-2 L2A product (``.SAFE`` folder or its
            ``.zip``), a STAC Item JSON or static STAC catalogue (``catalog.json``/``collection.json``), by
            path or by URL, or a STAC API URL (with ``collection``).
        collection: STAC API collection to search.
        datetime: STAC API date or range.
        bbox: STAC API AOI (west, south, east, north) in degrees.
        max_cloud: STAC API largest cloud cover in percent.
        allow_hosts: hosts allowed despite being loopback/private or plain http.
        allow_dirs: folders a STAC document may point into besides its own (with those of
            ``FIELDTRUTH_ALLOW_DIRS``); the only local folders a STAC API's items may name.

    Raises:
        InputNotFoundError: a local source that does not exist.
        StacError: a STAC source that yields no usable scene.
        ProductError: a Sentinel-2 product fieldtruth cannot read (not L2A, incomplete, ...).
        RefusedInputError: an href, link, archive or address the input guard does not allow.
    """
    text = str(source)
    allow_hosts = tuple(allow_hosts)
    if is_remote(text):
        if not is_stac_api(text):
            return scenes_from_remote_catalog(text, allow_hosts=allow_hosts)
        if not collection:
            raise StacError(f"{text!r} looks like a STAC API; give --collection (and --datetime) to search "
                            "it")
        return search_stac_api(text, collection=collection, bbox=bbox, datetime=datetime, max_cloud=max_cloud,
                               allow_hosts=allow_hosts, allow_dirs=allow_dirs)
    path = Path(text)
    if not path.exists():
        raise InputNotFoundError(f"imagery {text!r} does not exist; give a scene folder, a GeoTIFF, or a "
                                 "STAC file")
    if path.suffix.lower() == ".json":
        return _scenes_from_json(path, allow_hosts=allow_hosts, allow_dirs=allow_dirs)
    if is_safe_folder(path) or path.suffix.lower() == ".zip":
        return [open_safe(path)]
    return [open_scene(path)]


def is_stac_api(source: str | Path) -> bool:
    """True when ``source`` names a STAC API root (a remote address that is not a JSON document; one that
    is, a static catalogue, collection or item, is read as such)."""
    text = str(source)
    return is_remote(text) and not text.lower().split("?")[0].endswith(".json")


def _scenes_from_json(path: Path, *, allow_hosts: tuple[str, ...],
                      allow_dirs: Sequence[str | Path]) -> list[Scene]:
    kind = read_document(path).get("type")
    if kind == "Feature":
        return scenes_from_item_file(path, allow_hosts=allow_hosts, allow_dirs=allow_dirs)
    if kind in ("Catalog", "Collection"):
        return scenes_from_catalog(path, allow_hosts=allow_hosts, allow_dirs=allow_dirs)
    raise StacError(f"{str(path)!r} has type {kind!r}; expected a STAC Item (Feature), Catalog or Collection")
