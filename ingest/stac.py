"""Scenes from STAC: one Item, a static catalogue (``catalog.json``, local or by URL), or a STAC API search.

Bands are matched by the ``eo`` extension's common names (``eo:bands`` of STAC 1.0, ``bands`` with
``eo:common_name`` of 1.1) or, failing that, by asset keys (``blue``, ``B02``, ...). Every href is
checked by :func:`fieldtruth.ingest.remote.check_href` before GDAL sees it: local files only inside the
document's folder (or folders allowed explicitly), URLs only https to public hosts (or hosts allowed
explicitly). Static catalogues are walked by :mod:`fieldtruth.ingest._stac_walk` (bounded, no loops;
remote ones through the network guard, never naming local files); API searches go through the network
guard. The grid comes from the first band's header.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pystac
from rasterio.coords import BoundingBox
from rasterio.crs import CRS

from fieldtruth.ingest._stac_walk import read_document, walk_catalog, walk_remote_catalog
from fieldtruth.ingest._stac_walk import to_item as _to_item
from fieldtruth.ingest.errors import NotARasterError, StacError
from fieldtruth.ingest.guard import allowed_dirs
from fieldtruth.ingest.provenance import Provenance
from fieldtruth.ingest.rasters import open_raster
from fieldtruth.ingest.remote import check_href, gdal_http_env, is_remote
from fieldtruth.ingest.scene import CLOUD_MASK, COMMON_NAMES, SENTINEL2_BANDS, BandSource, Scene

log = logging.getLogger(__name__)

__all__ = ["StacError", "scene_from_item", "scenes_from_catalog", "scenes_from_item_file",
           "scenes_from_remote_catalog", "search_stac_api"]

_KEY_NAMES = {**{k.lower(): v for k, v in SENTINEL2_BANDS.items()}, **{n: n for n in COMMON_NAMES},
              "nir08": "nir08"}


def _common_name(key: str, asset: pystac.Asset) -> str | None:
    fields = asset.extra_fields
    for band in fields.get("eo:bands") or fields.get("bands") or []:
        name = band.get("common_name") or band.get("eo:common_name") if isinstance(band, dict) else None
        if name:
            return str(name).lower()
    return _KEY_NAMES.get(key.lower())


def _is_raster(asset: pystac.Asset) -> bool:
    media = (asset.media_type or "").lower()
    return "tiff" in media or asset.href.lower().split("?")[0].endswith((".tif", ".tiff"))


def scene_from_item(item: pystac.Item, *, allow_hosts: Iterable[str] = (), bands: Sequence[str] | None = None,
                    allow_dirs: Sequence[str | Path] = ()) -> Scene:
    """Turn a STAC Item into a :class:`Scene`.

    Args:
        item: the Item (hrefs made absolute against its own location where it has one).
        allow_hosts: hosts allowed despite being loopback/private or plain http (tests, own servers).
        bands: common names wanted, in order; blue, green, red, nir when None.
        allow_dirs: folders local asset files may lie in, besides the Item's own folder (an Item from a
            STAC API, or without a location, may name local files only in these).

    Raises:
        StacError: the Item lacks a wanted band.
        RasterRefusedError: an href is not allowed (see :func:`fieldtruth.ingest.remote.check_href`).
    """
    wanted = tuple(bands or ("blue", "green", "red", "nir"))
    allow_hosts = tuple(allow_hosts)
    self_href = item.get_self_href()
    if self_href:
        item.make_asset_hrefs_absolute()
    home = Path(self_href).parent if self_href and not is_remote(self_href) else None
    within = (*([home] if home else []), *(Path(d) for d in allow_dirs))
    local_ok = bool(within or allowed_dirs())
    found: dict[str, pystac.Asset] = {}
    for key, asset in item.assets.items():
        name = _common_name(key, asset)
        if name in wanted and name not in found and _is_raster(asset):
            found[name] = asset
    missing = [b for b in wanted if b not in found]
    if missing:
        raise StacError(
            f"STAC item {item.id!r} has no asset for band(s) {missing!r}; its assets are "
            f"{sorted(item.assets)!r}"
        )
    found = {name: found[name] for name in wanted}
    mask = next((a for k, a in item.assets.items() if k.lower() == CLOUD_MASK and _is_raster(a)), None)
    if mask is not None and CLOUD_MASK not in found:
        found[CLOUD_MASK] = mask
    ordered = {name: BandSource(check_href(asset.href, allow_hosts=allow_hosts, allow_local=local_ok,
                                           base=home, within=within))
               for name, asset in found.items()}
    crs, bounds, res, width, height = _grid_of(item, ordered, allow_hosts)
    props = item.properties
    licence = props.get("license")
    provenance = tuple(
        Provenance(href=src.href, source=self_href or "stac", licence=licence, item_id=item.id,
                   size=_size(found[name]))
        for name, src in ordered.items()
    )
    metadata = {"platform": props.get("platform"), "cloud_cover": props.get("eo:cloud_cover"),
                "collection": item.collection_id, "source": "stac"}
    return Scene(
        id=item.id, bands=ordered, crs=crs, bounds=bounds, resolution=res, width=width, height=height,
        acquired=props.get("datetime") or props.get("start_datetime"), provenance=provenance,
        nodata=None, metadata={k: v for k, v in metadata.items() if v is not None},
        allow_hosts=allow_hosts,
    )


def _size(asset: pystac.Asset) -> int | None:
    size = asset.extra_fields.get("file:size")
    return int(size) if isinstance(size, int | float) else None


def _grid_of(item: pystac.Item, bands: dict[str, BandSource],
             allow_hosts: tuple[str, ...]) -> tuple[CRS, BoundingBox, tuple[float, float], int, int]:
    """The scene grid: the finest band's header (read with the HTTP settings for remote files)."""
    best = None
    for source in bands.values():
        with gdal_http_env() if is_remote(source.href) else nullcontext():
            with open_raster(source.href, allow_hosts=allow_hosts) as dataset:
                candidate = (dataset.crs, dataset.bounds, dataset.res, dataset.width, dataset.height)
        if best is None or candidate[2][0] < best[2][0]:
            best = candidate
        if best[0] is None:
            raise NotARasterError(f"STAC item {item.id!r}: asset {source.href!r} has no CRS")
    return best


def scenes_from_item_file(path: Path, **options: Any) -> list[Scene]:
    """Scenes from an Item JSON file (one scene).

    Raises:
        StacError: the file is not a valid STAC Item; and the errors of :func:`scene_from_item`.
    """
    path = Path(path).resolve()
    return [scene_from_item(_to_item(read_document(path), path), **options)]


def scenes_from_catalog(path: Path, *, allow_dirs: Sequence[str | Path] = (), **options: Any) -> list[Scene]:
    """Scenes from every Item of a static STAC catalogue (``catalog.json`` or ``collection.json``).

    Links are followed to local documents inside the catalogue's folder (or ``allow_dirs``), each once;
    asset files may lie anywhere in those folders too.

    Raises:
        StacError: a malformed, looping, too deep or too large catalogue, or one without items.
        RefusedInputError: a link outside the allowed folders.
    """
    path = Path(path).resolve()
    dirs = (path.parent, *(Path(d) for d in allow_dirs))
    scenes = [scene_from_item(item, allow_dirs=dirs, **options) for item in walk_catalog(path, dirs[1:])]
    if not scenes:
        raise StacError(f"STAC catalogue {str(path)!r} holds no items")
    return scenes


def scenes_from_remote_catalog(url: str, *, allow_hosts: Iterable[str] = (), **options: Any) -> list[Scene]:
    """Scenes from a static STAC catalogue, collection or item published over https.

    Every document is fetched once through the network guard (depth, count and size bounded, loops
    refused); relative hrefs resolve against each document's URL, and assets must be http(s) URLs, each
    checked like every href.

    Raises:
        StacError: a malformed, looping, too deep or too large catalogue, one without items, or a link or
            asset naming a local file.
        RefusedInputError: a URL the network guard refuses.
    """
    allow_hosts = tuple(allow_hosts)
    items = walk_remote_catalog(url, allow_hosts)
    scenes = [scene_from_item(item, allow_hosts=allow_hosts, **options) for item in items]
    if not scenes:
        raise StacError(f"STAC catalogue {url!r} holds no items")
    return scenes


def search_stac_api(
    url: str, *, collection: str, bbox: Sequence[float] | None = None, datetime: str | None = None,
    max_cloud: float | None = None, max_items: int = 100, allow_hosts: Iterable[str] = (), **options: Any,
) -> list[Scene]:
    """Scenes from a STAC API search (pystac-client), least cloudy first.

    Every request (pages and redirects included) goes through the network guard; the items' assets may
    be local files only in folders allowed explicitly (``allow_dirs``).

    Args:
        url: the API's root URL.
        collection: collection id (e.g. ``sentinel-2-l2a``).
        bbox: AOI as (west, south, east, north) in degrees.
        datetime: a date or range (``2024-01-01/2024-03-31``).
        max_cloud: largest ``eo:cloud_cover`` accepted, in percent.
        max_items: most items taken.
        allow_hosts: hosts allowed despite being loopback/private or plain http.
    """
    from pystac_client import Client

    from fieldtruth.ingest._stac_api import GuardedStacApiIO

    allow_hosts = tuple(allow_hosts)
    check_href(url, allow_hosts=allow_hosts, allow_local=False)
    query = {"eo:cloud_cover": {"lte": max_cloud}} if max_cloud is not None else None
    try:
        client = Client.open(url, stac_io=GuardedStacApiIO(allow_hosts))
        search = client.search(collections=[collection], bbox=bbox, datetime=datetime, query=query,
                               max_items=max_items)
        items = list(search.items())
    except Exception as exc:  # pystac-client raises many kinds (HTTP, JSON, its own API errors)
        raise StacError(f"STAC API search at {url!r} failed: {exc}") from exc
    if not items:
        raise StacError(f"STAC API {url!r} found no {collection!r} items for bbox={bbox!r} "
                        f"datetime={datetime!r}")
    items.sort(key=lambda it: (it.properties.get("eo:cloud_cover") is None,
                               it.properties.get("eo:cloud_cover") or 0))
    return [scene_from_item(item, allow_hosts=allow_hosts, **options) for item in items]
