"""Scenes from STAC: one Item, a static catalogue (``catalog.json``), or a STAC API search.

Bands are matched by the ``eo`` extension's common names (``eo:bands`` of STAC 1.0, ``bands`` with
``eo:common_name`` of 1.1) or, failing that, by asset keys (``blue``, ``B02``, ...). Every href is
checked by :func:`fieldtruth.ingest.remote.check_href` before GDAL sees it. The grid comes from the
``proj`` extension where given, otherwise from the first band's header.
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

from fieldtruth.ingest.errors import IngestError, NotARasterError
from fieldtruth.ingest.provenance import Provenance
from fieldtruth.ingest.rasters import open_raster
from fieldtruth.ingest.remote import check_href, gdal_http_env, is_remote
from fieldtruth.ingest.scene import CLOUD_MASK, COMMON_NAMES, SENTINEL2_BANDS, BandSource, Scene

log = logging.getLogger(__name__)

_KEY_NAMES = {**{k.lower(): v for k, v in SENTINEL2_BANDS.items()}, **{n: n for n in COMMON_NAMES}, "nir08": "nir08"}


class StacError(IngestError, ValueError):
    """A STAC document could not be turned into scenes."""


def _common_name(key: str, asset: pystac.Asset) -> str | None:
    fields = asset.extra_fields
    for band in fields.get("eo:bands") or fields.get("bands") or []:
        name = band.get("common_name") or band.get("eo:common_name")
        if name:
            return str(name).lower()
    return _KEY_NAMES.get(key.lower())


def _is_raster(asset: pystac.Asset) -> bool:
    media = (asset.media_type or "").lower()
    return "tiff" in media or asset.href.lower().split("?")[0].endswith((".tif", ".tiff"))


def scene_from_item(item: pystac.Item, *, allow_hosts: Iterable[str] = (), bands: Sequence[str] | None = None) -> Scene:
    """Turn a STAC Item into a :class:`Scene`.

    Args:
        item: the Item (hrefs made absolute against its own location where it has one).
        allow_hosts: hosts allowed despite being loopback/private or plain http (tests, own servers).
        bands: common names wanted, in order; blue, green, red, nir when None.

    Raises:
        StacError: the Item lacks a wanted band.
        RasterRefusedError: an href is not allowed.
    """
    wanted = tuple(bands or ("blue", "green", "red", "nir"))
    if item.get_self_href():
        item.make_asset_hrefs_absolute()
    found: dict[str, BandSource] = {}
    sizes: dict[str, int | None] = {}
    for key, asset in item.assets.items():
        name = _common_name(key, asset)
        if name in wanted and name not in found and _is_raster(asset):
            found[name] = BandSource(check_href(asset.href, allow_hosts=allow_hosts))
            size = asset.extra_fields.get("file:size")
            sizes[found[name].href] = int(size) if size is not None else None
    mask = next((BandSource(check_href(a.href, allow_hosts=allow_hosts)) for k, a in item.assets.items()
                 if k.lower() == CLOUD_MASK and _is_raster(a)), None)
    missing = [b for b in wanted if b not in found]
    if missing:
        raise StacError(
            f"STAC item {item.id!r} has no asset for band(s) {missing!r}; its assets are {sorted(item.assets)!r}"
        )
    ordered = {name: found[name] for name in wanted}
    if mask is not None and CLOUD_MASK not in ordered:
        ordered[CLOUD_MASK] = mask
    crs, bounds, res, width, height = _grid_of(item, ordered)
    props = item.properties
    licence = props.get("license")
    provenance = tuple(
        Provenance(href=src.href, source=item.get_self_href() or "stac", licence=licence, item_id=item.id,
                   size=sizes.get(src.href))
        for src in ordered.values()
    )
    metadata = {"platform": props.get("platform"), "cloud_cover": props.get("eo:cloud_cover"),
                "collection": item.collection_id, "source": "stac"}
    return Scene(
        id=item.id, bands=ordered, crs=crs, bounds=bounds, resolution=res, width=width, height=height,
        acquired=props.get("datetime") or props.get("start_datetime"), provenance=provenance,
        nodata=None, metadata={k: v for k, v in metadata.items() if v is not None},
    )


def _grid_of(item: pystac.Item, bands: dict[str, BandSource]) -> tuple[CRS, BoundingBox, tuple[float, float], int, int]:
    """The scene grid: the finest band's header (read with the HTTP settings for remote files)."""
    best = None
    for source in bands.values():
        with gdal_http_env() if is_remote(source.href) else nullcontext():
            with open_raster(source.href) as dataset:
                candidate = (dataset.crs, dataset.bounds, dataset.res, dataset.width, dataset.height)
        if best is None or candidate[2][0] < best[2][0]:
            best = candidate
        if best[0] is None:
            raise NotARasterError(f"STAC item {item.id!r}: asset {source.href!r} has no CRS")
    return best


def scenes_from_item_file(path: Path, **options: Any) -> list[Scene]:
    """Scenes from an Item JSON file (one scene)."""
    try:
        item = pystac.Item.from_file(str(path))
    except Exception as exc:  # pystac raises many kinds on bad documents
        raise StacError(f"{str(path)!r} is not a readable STAC Item: {exc}") from exc
    return [scene_from_item(item, **options)]


def scenes_from_catalog(path: Path, **options: Any) -> list[Scene]:
    """Scenes from every Item of a static STAC catalogue (``catalog.json`` or ``collection.json``)."""
    try:
        catalog = pystac.read_file(str(path))
    except Exception as exc:
        raise StacError(f"{str(path)!r} is not a readable STAC catalogue: {exc}") from exc
    if isinstance(catalog, pystac.Item):
        return [scene_from_item(catalog, **options)]
    scenes = [scene_from_item(item, **options) for item in catalog.get_items(recursive=True)]
    if not scenes:
        raise StacError(f"STAC catalogue {str(path)!r} holds no items")
    return scenes


def search_stac_api(
    url: str, *, collection: str, bbox: Sequence[float] | None = None, datetime: str | None = None,
    max_cloud: float | None = None, max_items: int = 100, **options: Any,
) -> list[Scene]:
    """Scenes from a STAC API search (pystac-client), least cloudy first.

    Args:
        url: the API's root URL.
        collection: collection id (e.g. ``sentinel-2-l2a``).
        bbox: AOI as (west, south, east, north) in degrees.
        datetime: a date or range (``2024-01-01/2024-03-31``).
        max_cloud: largest ``eo:cloud_cover`` accepted, in percent.
        max_items: most items taken.
    """
    from pystac_client import Client

    check_href(url, allow_hosts=options.get("allow_hosts", ()), allow_local=False)
    query = {"eo:cloud_cover": {"lte": max_cloud}} if max_cloud is not None else None
    try:
        search = Client.open(url).search(collections=[collection], bbox=bbox, datetime=datetime, query=query,
                                         max_items=max_items)
        items = list(search.items())
    except Exception as exc:
        raise StacError(f"STAC API search at {url!r} failed: {exc}") from exc
    if not items:
        raise StacError(f"STAC API {url!r} found no {collection!r} items for bbox={bbox!r} datetime={datetime!r}")
    items.sort(key=lambda it: (it.properties.get("eo:cloud_cover") is None, it.properties.get("eo:cloud_cover") or 0))
    return [scene_from_item(item, **options) for item in items]
