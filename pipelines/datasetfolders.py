"""What ``fieldtruth dataset build`` keeps while it cuts windows, and how it writes one as a scene folder.

A folder holds the window's bands, ``labels.geojson`` (its sites as polygons in EPSG:4326, each with the
inventory point as ``point_lon``/``point_lat``; for a background window, no feature and
``"background": true``, see :data:`~fieldtruth.detectors.labels.BACKGROUND`), ``split.json`` (its set and
full provenance) and ``scene.json`` (what :func:`~fieldtruth.ingest.scene.open_scene` and a model card
read). No record holds a site coordinate except the labels themselves.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from rasterio.warp import transform_bounds

from fieldtruth.atomicfile import write_json
from fieldtruth.detectors.labels import BACKGROUND
from fieldtruth.imagery.chip import Chip
from fieldtruth.imagery.grid import Tile
from fieldtruth.imagery.read import read_chip
from fieldtruth.imagery.windows import BAND_FILES, write_window
from fieldtruth.ingest.points import PointInventory
from fieldtruth.ingest.scene import Scene
from fieldtruth.pipelines.datasplit import SETS

#: Format tag of split.json and dataset.json.
FORMAT = "fieldtruth-dataset/1"
#: Share of a window's footprint that a window of a clearer scene may cover before the window is left out
#: (footprints are compared in EPSG:6933, where the edges of neighbouring windows meet only roughly).
MIN_OVERLAP = 0.01


@dataclass(frozen=True)
class WindowOptions:
    """How windows are cut. ``size_px``: side; ``min_valid``: least clear share of a window kept;
    ``background_share``: background windows (no site) wanted per labelled window of a set."""

    size_px: int = 512
    min_valid: float = 0.8
    background_share: float = 0.5


@dataclass
class BuildSummary:
    """What a build wrote and left out (counts only; no site coordinate)."""

    scenes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SETS, 0))
    labels: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SETS, 0))
    background: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SETS, 0))
    regions: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in SETS})
    sites: int = 0
    sites_in_sets: int = 0
    sites_outside_scenes: int = 0
    sites_labelled: int = 0
    windows_left_out: Counter = field(default_factory=Counter)
    imagery: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (``scenes`` counts every folder of a set, background ones included)."""
        return {"scenes": self.scenes, "labels": self.labels, "background_scenes": self.background,
                "regions": self.regions, "sites": self.sites, "sites_in_sets": self.sites_in_sets,
                "sites_outside_scenes": self.sites_outside_scenes, "sites_labelled": self.sites_labelled,
                "windows_left_out": dict(self.windows_left_out), "imagery": self.imagery}


@dataclass
class Sites:
    """The inventory's sites with their set (None: left out), and what became of them."""

    lon: np.ndarray
    lat: np.ndarray
    sets: np.ndarray
    regions: np.ndarray
    seen: np.ndarray  # inside at least one scene
    labelled: np.ndarray


def footprint(tile: Tile, scene: Scene) -> shapely.Polygon:
    """A window's footprint in EPSG:6933 (equal-area metres), where windows of different scenes meet."""
    return shapely.box(*transform_bounds(scene.crs, "EPSG:6933", *tile.core, densify_pts=5))


def overlaps(area: shapely.Polygon, written: list[shapely.Polygon]) -> bool:
    """Whether a window's footprint overlaps one already written by more than :data:`MIN_OVERLAP`."""
    least = MIN_OVERLAP * area.area
    return any(area.intersects(w) and area.intersection(w).area > least for w in written)


def read_window(scene: Scene, tile: Tile) -> Chip:
    """A window's bands and validity (its core, no halo)."""
    core = Tile(tile.id, tile.row, tile.col, tile.core, tile.core, tile.crs, tile.resolution)
    return read_chip(scene, core, tuple(BAND_FILES))


def folder_name(scene: Scene, tile: Tile) -> str:
    """The folder name of a window: the scene item and the window id, safe as a path component."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{scene.id}-{tile.id}")


def imagery_record(scene: Scene, source: str) -> dict[str, Any]:
    """Where a window's pixels come from (item, collection, date, cloud cover, licence, source)."""
    licence = scene.metadata.get("licence") or next((p.licence for p in scene.provenance if p.licence), None)
    return {"item": scene.id, "collection": scene.metadata.get("collection"), "acquired": scene.acquired,
            "cloud_cover": cloud_cover(scene), "licence": licence, "platform": scene.metadata.get("platform"),
            "source": source}


def cloud_cover(scene: Scene) -> float | None:
    """The scene's cloud cover (%) as its metadata gives it, or None."""
    value = scene.metadata.get("cloud_cover")
    return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True)
class Window:
    """One window to write: its pixels, set, regions and labels (``(site index, polygon)`` in the scene's
    CRS; none for a background window)."""

    scene: Scene
    tile: Tile
    chip: Chip
    split: str
    regions: list[str]
    labels: list[tuple[int, shapely.Polygon]]


def write_folder(window: Window, out: Path, sites: Sites, inventory: PointInventory,
                 imagery_source: str) -> Path:
    """Write a window as ``out/<set>/<name>/`` (see the module docstring); return the folder."""
    name = folder_name(window.scene, window.tile)
    folder = out / window.split / name
    write_window(window.chip, folder)
    _write_labels(folder, window, sites, inventory.object_class)
    _write_records(folder, name, window, inventory, imagery_record(window.scene, imagery_source))
    return folder


def _write_labels(folder: Path, window: Window, sites: Sites, object_class: str) -> None:
    to_wgs84 = Transformer.from_crs(window.scene.crs, "EPSG:4326", always_xy=True)
    features = []
    for i, shown in window.labels:
        ring = shapely.transform(shown, lambda xy: np.column_stack(to_wgs84.transform(xy[:, 0], xy[:, 1])))
        features.append({"type": "Feature", "geometry": shapely.geometry.mapping(ring),
                         "properties": {"class": object_class, "point_lon": round(float(sites.lon[i]), 7),
                                        "point_lat": round(float(sites.lat[i]), 7)}})
    document: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if not features:
        document[BACKGROUND] = True
    write_json(folder / "labels.geojson", document)


def _write_records(folder: Path, name: str, window: Window, inventory: PointInventory,
                   imagery: dict[str, Any]) -> None:
    inv = inventory.provenance()
    background = not window.labels
    split_record = {"format": FORMAT, "split": window.split, "regions": window.regions,
                    "labels": len(window.labels), "background": background, "inventory": inv,
                    "imagery": imagery, "window": {"id": window.tile.id, "crs": window.tile.crs,
                                                   "bounds": list(window.tile.core)}}
    write_json(folder / "split.json", split_record)
    what = ("background (no site: negatives only), chosen away from every site of inventory" if background
            else "labels from inventory")
    source = (f"{window.split} set of a fieldtruth dataset; imagery {imagery['item']} "
              f"({imagery['collection']}, {(imagery['acquired'] or '?')[:10]}, licence {imagery['licence']}) "
              f"from {imagery['source']}; {what} {inv['name']} (licence {inv['licence']}, sha256 "
              f"{inv['sha256']})")
    scene_record = {"id": name, "acquired": imagery["acquired"], "platform": imagery["platform"],
                    "cloud_cover": imagery["cloud_cover"], "licence": imagery["licence"], "source": source,
                    "bands": {Path(f).stem: b for b, f in BAND_FILES.items()}}
    write_json(folder / "scene.json", scene_record)
