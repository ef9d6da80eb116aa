"""Seeded static STAC catalogues over generated scene folders, for tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pystac
import rasterio
from rasterio.warp import transform_bounds

BAND_ASSETS = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir"}


def item_for_folder(folder: Path, item_id: str, *, href_base: str | None = None, cloud: float = 5.0,
                    use_common_names: bool = True) -> pystac.Item:
    """A STAC Item whose assets are the band files of a scene folder (hrefs under ``href_base`` if given)."""
    with rasterio.open(folder / "B02.tif") as ds:
        west, south, east, north = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
        epsg = ds.crs.to_epsg()
    geometry = {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]]}
    item = pystac.Item(item_id, geometry, [west, south, east, north], dt.datetime(2024, 2, 1, tzinfo=dt.UTC),
                       properties={"eo:cloud_cover": cloud, "platform": "synthetic", "proj:epsg": epsg})
    for stem, name in BAND_ASSETS.items():
        href = f"{href_base}/{stem}.tif" if href_base else str((folder / f"{stem}.tif").resolve())
        extra = {"eo:bands": [{"name": stem, "common_name": name}]} if use_common_names else {}
        key = stem if use_common_names else name
        item.add_asset(key, pystac.Asset(href, media_type=pystac.MediaType.COG, roles=["data"], extra_fields=extra))
    return item


def static_catalog(root: Path, folders: dict[str, Path], **options: object) -> Path:
    """Write a self-contained static catalogue of one item per scene folder; returns catalog.json."""
    catalog = pystac.Catalog("test-catalog", "generated scenes for fieldtruth tests")
    for item_id, folder in folders.items():
        catalog.add_item(item_for_folder(folder, item_id, **options))
    catalog.normalize_and_save(str(root), catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"
