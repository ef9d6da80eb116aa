"""A generated kiln inventory over generated scenes, for tests of ``fieldtruth dataset build``.

Each synthetic scene (:func:`fieldtruth.imagery.synthetic.generate_scene`) is one district; the inventory
lists the centre of every kiln the generator drew (as KilnEye lists real ones: ``kiln_type``, ``lat``,
``lon``, and here ``district``), declared as a sector dataset with ``object_size_m``. The scenes are
served as STAC Items whose assets are the scene folders' band files.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pystac
import rasterio
from pyproj import Transformer

from fieldtruth.imagery.synthetic import SyntheticScene, generate_scene
from fieldtruth.tests.data.stac import item_for_folder

#: Class of the generator's kilns, and the label class the inventory declares.
KILN = "brick_kiln"


def kiln_scenes(root: Path, seeds: list[int], *, size: int = 512, n_kilns: int | None = None,
                n_camps: int = 0) -> dict[str, SyntheticScene]:
    """One generated scene per seed, named ``d<seed>`` (its district)."""
    return {f"d{seed}": generate_scene(root / f"d{seed}", seed=seed, size=size, n_kilns=n_kilns,
                                       n_camps=n_camps) for seed in seeds}


def kiln_centres(scene: SyntheticScene, *, above_row: float | None = None) -> np.ndarray:
    """(lon, lat) of the centre of each kiln the generator drew in a scene (only those whose pixel row is
    under ``above_row``, when given: an inventory that lists part of the ground)."""
    kilns = [s for s in scene.sites if s.label == KILN and (above_row is None or s.centre[0] < above_row)]
    xs, ys = zip(*(scene.transform * (s.centre[1], s.centre[0]) for s in kilns), strict=True)
    lon, lat = Transformer.from_crs(scene.crs, "EPSG:4326", always_xy=True).transform(xs, ys)
    return np.column_stack([lon, lat])


def write_inventory(folder: Path, scenes: dict[str, SyntheticScene], *, object_size_m: float = 120.0,
                    extra: str = "", above_row: float | None = None) -> Path:
    """Write ``kilns.csv`` (every generated kiln) and its declaration ``kilns.yaml``; return the latter.

    Args:
        folder: where both files go.
        scenes: district -> scene.
        object_size_m: the declared size of a kiln.
        extra: more YAML lines appended to the declaration (e.g. a personal column, for refusals).
        above_row: list only the kilns above this pixel row of each scene (see :func:`kiln_centres`).
    """
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "kilns.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["kiln_type", "lat", "lon", "district"])
        for district, scene in scenes.items():
            for lon, lat in kiln_centres(scene, above_row=above_row):
                writer.writerow(["FCBK", f"{lat:.7f}", f"{lon:.7f}", district])
    decl = folder / "kilns.yaml"
    decl.write_text(
        "name: generated-kilns\nsource: fieldtruth synthetic generator\nlicence: CC0-1.0\n"
        "purpose: test training scenes built from points\nsector: brick_kilns\nfiles: [kilns.csv]\n"
        "geometry: {x: lon, y: lat, crs: EPSG:4326}\nkeep: [kiln_type, district]\n"
        f"object_size_m: {object_size_m}\nobject_class: {KILN}\n{extra}", encoding="utf-8")
    return decl


def kiln_item(scene: SyntheticScene, item_id: str, *, cloud: float = 5.0, day: int = 1,
              scl: Path | None = None) -> pystac.Item:
    """A STAC Item of a generated scene (Sentinel-2 L2A-like), acquired on 2024-02-``day``, with an SCL
    asset when ``scl`` is given."""
    item = item_for_folder(scene.path, item_id, cloud=cloud)
    item.datetime = dt.datetime(2024, 2, day, tzinfo=dt.UTC)
    item.collection_id = "sentinel-2-l2a"
    item.properties["license"] = "proprietary"
    if scl is not None:
        item.add_asset("scl", pystac.Asset(str(scl.resolve()), media_type=pystac.MediaType.COG))
    return item


def write_scl(scene: SyntheticScene, path: Path, cloudy_rows: slice) -> Path:
    """A scene classification layer for a generated scene: vegetation (4) everywhere, cloud (9) over
    ``cloudy_rows``."""
    classes = np.full((scene.size, scene.size), 4, dtype=np.uint8)
    classes[cloudy_rows, :] = 9
    profile = {"driver": "GTiff", "width": scene.size, "height": scene.size, "count": 1, "dtype": "uint8",
               "crs": scene.crs, "transform": scene.transform}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(classes, 1)
    return path
