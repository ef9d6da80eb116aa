"""Seeded static STAC catalogues over generated scene folders, for tests."""

from __future__ import annotations

import datetime as dt
import json
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
    geometry = {
        "type": "Polygon",
        "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
    }
    item = pystac.Item(
        item_id,
        geometry,
        [west, south, east, north],
        dt.datetime(2024, 2, 1, tzinfo=dt.UTC),
        properties={"eo:cloud_cover": cloud, "platform": "synthetic", "proj:epsg": epsg},
    )
    for stem, name in BAND_ASSETS.items():
        href = f"{href_base}/{stem}.tif" if href_base else str((folder / f"{stem}.tif").resolve())
        extra = {"eo:bands": [{"name": stem, "common_name": name}]} if use_common_names else {}
        key = stem if use_common_names else name
        item.add_asset(
            key, pystac.Asset(href, media_type=pystac.MediaType.COG, roles=["data"], extra_fields=extra)
        )
    return item


def static_catalog(root: Path, folders: dict[str, Path], **options: object) -> Path:
    """Write a self-contained static catalogue of one item per scene folder; returns catalog.json."""
    catalog = pystac.Catalog("test-catalog", "generated scenes for fieldtruth tests")
    for item_id, folder in folders.items():
        catalog.add_item(item_for_folder(folder, item_id, **options))
    catalog.normalize_and_save(str(root), catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


def published_catalog(root: Path, folders: dict[str, Path], *, shared_item: bool = True) -> Path:
    """A static catalogue as a programme publishes it on a web server: ``catalog.json`` ->
    ``sub/catalog.json`` -> one item per scene folder (its bands copied beside it), every href relative.
    With ``shared_item``, the root links the first item directly too (a diamond: the walk must read it
    once).

    Returns:
        ``root/catalog.json`` (serve ``root``).
    """
    sub = root / "sub"
    sub.mkdir(parents=True, exist_ok=True)
    item_links = []
    for item_id, folder in folders.items():
        home = root / "items" / item_id
        home.mkdir(parents=True, exist_ok=True)
        for stem in BAND_ASSETS:
            (home / f"{stem}.tif").write_bytes((folder / f"{stem}.tif").read_bytes())
        item = item_for_folder(folder, item_id).to_dict(include_self_link=False, transform_hrefs=False)
        for stem in BAND_ASSETS:
            item["assets"][stem]["href"] = f"./{stem}.tif"
        item["links"] = [{"rel": "parent", "href": "../../sub/catalog.json"}]
        (home / "item.json").write_text(json.dumps(item))
        item_links.append({"rel": "item", "href": f"../items/{item_id}/item.json"})
    write_catalog(sub / "catalog.json", [{"rel": "parent", "href": "../catalog.json"}, *item_links])
    first = next(iter(folders))
    links = [{"rel": "child", "href": "./sub/catalog.json"}, {"rel": "self", "href": "./catalog.json"}]
    if shared_item:
        links.append({"rel": "item", "href": f"./items/{first}/item.json"})
    return write_catalog(root / "catalog.json", links)


def write_catalog(path: Path, links: list[dict[str, str]], catalog_id: str = "published") -> Path:
    """A STAC Catalog document with these links."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "type": "Catalog",
                "stac_version": "1.0.0",
                "id": catalog_id,
                "description": "generated for fieldtruth tests",
                "links": links,
            }
        )
    )
    return path
