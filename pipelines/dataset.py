"""Training scenes from a point inventory and open imagery: ``fieldtruth dataset build``.

From a declared inventory of site positions (:mod:`fieldtruth.ingest.points`) and an imagery source
(anything :func:`~fieldtruth.ingest.sources.open_imagery` opens: a STAC API search, a static catalogue,
scene folders), it writes labelled scene folders that ``fieldtruth train`` and ``evaluate`` read:

* scenes are taken least cloudy first, within the date window; each is cut into windows of at most
  :data:`~fieldtruth.imagery.windows.MAX_WINDOW_PX` pixels on its own grid, and a window is kept when it
  holds sites, lies on the ground of one set (:mod:`fieldtruth.pipelines.datasplit`), overlaps no window
  already written (the same ground is labelled once, from the clearest scene), and is mostly clear (the
  scene classification layer's clouds are invalid pixels);
* each site whose square (``object_size_m`` a side, in the scene's CRS) shows for at least a quarter in
  the window becomes a polygon label (``labels.geojson``, EPSG:4326, with the point itself as
  ``point_lon``/``point_lat``); a site under cloud is not labelled;
* every folder records its set and provenance (``split.json``: inventory name, licence and sha256, the
  imagery item, date and licence, the window; ``scene.json``: what a model card copies), and
  ``dataset.json`` at the top sums it up, without any site coordinate.

Folders land in ``OUT/<set>/<item>-<window>/``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer

from fieldtruth.atomicfile import write_json
from fieldtruth.imagery.chip import Chip
from fieldtruth.imagery.grid import Tile
from fieldtruth.imagery.target import ground_resolution, is_metric
from fieldtruth.imagery.windows import scene_windows
from fieldtruth.ingest.points import PointInventory
from fieldtruth.ingest.scene import Scene
from fieldtruth.pipelines.background import add_background
from fieldtruth.pipelines.datasetfolders import (
    FORMAT,
    BuildSummary,
    Sites,
    Window,
    WindowOptions,
    cloud_cover,
    footprint,
    imagery_record,
    overlaps,
    read_window,
    write_folder,
)
from fieldtruth.pipelines.datasplit import SETS, SplitPlan, in_one_block, window_set
from fieldtruth.pipelines.errors import DatasetError

log = logging.getLogger(__name__)

#: Least share of a site's square that must show in a window for it to be labelled there.
MIN_LABEL_SHARE = 0.25


def choose_scenes(scenes: Sequence[Scene], *, datetime: str | None, max_cloud: float | None,
                  source: str) -> list[Scene]:
    """The scenes within the date window and cloud limit, least cloudy first (unknown cover last).

    Raises:
        DatasetError: no scene is left, naming the source, the filters and what was found.
    """
    start, end = _window(datetime)
    def taken(scene: Scene) -> bool:
        day = (scene.acquired or "")[:10]
        cloud = cloud_cover(scene)
        return ((start is None or day >= start) and (end is None or day <= end)
                and (max_cloud is None or cloud is None or cloud <= max_cloud))

    kept = [s for s in scenes if taken(s)]
    if not kept:
        found = [(s.id, (s.acquired or "?")[:10], cloud_cover(s)) for s in scenes[:5]]
        raise DatasetError(
            f"imagery {source!r} has no scene within datetime={datetime!r} and max_cloud={max_cloud!r}; "
            f"found {len(scenes)} scene(s) (id, date, cloud %): {found!r}: widen the date window or the "
            "cloud limit")
    return sorted(kept, key=lambda s: (cloud_cover(s) is None, cloud_cover(s) or 0.0))


def _window(datetime: str | None) -> tuple[str | None, str | None]:
    if not datetime:
        return None, None
    parts = [p.strip()[:10] for p in datetime.split("/")]
    if len(parts) == 1:
        return parts[0], parts[0]
    open_ended = ("", "..")
    return (None if parts[0] in open_ended else parts[0]), (None if parts[1] in open_ended else parts[1])


def build_dataset(inventory: PointInventory, assignment: dict[str, str], regions: np.ndarray,
                  scenes: Sequence[Scene], out: Path, plan: SplitPlan, options: WindowOptions,
                  imagery_source: str) -> BuildSummary:
    """Cut labelled windows of ``scenes`` (in order of preference) over the inventory's sites.

    Args:
        inventory: the sites.
        assignment: region -> set (regions absent are left out).
        regions: each site's region, in the inventory's row order.
        scenes: the imagery, most preferred first (see :func:`choose_scenes`).
        out: the dataset folder (must be empty or absent).
        plan: the split (buffer and blocks).
        options: window size and the least clear share.
        imagery_source: the imagery as the user gave it (recorded).

    Raises:
        DatasetError: ``out`` is not empty, no site lies in any scene, or no window could be kept.
    """
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"dataset folder {str(out)!r} is not empty; give a new folder (a dataset is "
                           "built whole, so its split holds)")
    frame = inventory.frame
    n = len(frame)
    sites = Sites(frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy(),
                   np.array([assignment.get(r) for r in regions], dtype=object), regions,
                   np.zeros(n, bool), np.zeros(n, bool))
    summary = BuildSummary(sites=n, sites_in_sets=int(sum(s is not None for s in sites.sets)))
    written: list[shapely.Polygon] = []
    for scene in scenes:
        used = _cut_scene(scene, sites, inventory, plan, options, out, written, summary, imagery_source)
        if used:
            summary.imagery.append(imagery_record(scene, imagery_source) | {"windows": used})
    add_background(scenes, sites, inventory, assignment, plan, options, out, written, summary, imagery_source)
    in_sets = sites.sets != None  # noqa: E711 - elementwise over an object array
    summary.sites_outside_scenes = int((in_sets & ~sites.seen).sum())
    summary.sites_labelled = int(sites.labelled.sum())
    if not (in_sets & sites.seen).any():
        raise DatasetError(
            f"none of the {summary.sites_in_sets} site(s) of inventory {inventory.name!r} "
            f"({str(inventory.declaration)!r}) lies inside any of the {len(scenes)} scene(s) of "
            f"{imagery_source!r}; check --aoi, --datetime and that the imagery covers the inventory")
    if not sum(summary.scenes.values()):
        raise DatasetError(
            f"no window of {imagery_source!r} could be kept over inventory {inventory.name!r}: "
            f"{dict(summary.windows_left_out)!r} (cloudy: under --min-valid clear; straddling: sites of two "
            "sets, or across two blocks, which must be wider than a window plus the buffer; "
            "near-other-set: within --buffer-km of another set); try other dates, a smaller buffer or "
            "larger blocks")
    summary.regions = {s: sorted({str(r) for r, t in assignment.items() if t == s}) for s in SETS}
    for name in SETS:
        if summary.regions[name] and not summary.scenes[name]:
            log.warning("the %s set (regions %s) got no scene: none of its windows could be kept", name,
                        summary.regions[name][:5])
    record = {"format": FORMAT, "inventory": inventory.provenance(), "split": plan.describe(),
              "window": {"size_px": options.size_px, "min_valid": options.min_valid}, **summary.to_dict()}
    write_json(out / "dataset.json", record)
    return summary


def _cut_scene(scene: Scene, sites: Sites, inventory: PointInventory, plan: SplitPlan,
               options: WindowOptions, out: Path, written: list[shapely.Polygon], summary: BuildSummary,
               imagery_source: str) -> int:
    """Write the windows of one scene; return how many."""
    x, y = Transformer.from_crs("EPSG:4326", scene.crs, always_xy=True).transform(sites.lon, sites.lat)
    b = scene.bounds
    inside = (x >= b.left) & (x < b.right) & (y > b.bottom) & (y <= b.top) & (sites.sets != None)  # noqa: E711
    sites.seen |= inside
    if not inside.any():
        return 0
    metres = 1.0 if is_metric(scene.crs) else float(scene.resolution[0]) / ground_resolution(scene)
    half = inventory.object_size_m * metres / 2
    buffer = plan.buffer_m * metres
    count = 0
    earlier = list(written)  # windows of clearer scenes; this scene's own windows never overlap
    for tile in scene_windows(scene, options.size_px):
        c = tile.core
        held = np.flatnonzero(inside & (x >= c.left) & (x < c.right) & (y > c.bottom) & (y <= c.top))
        if not len(held):
            continue
        reason = _window_reason(tile, scene, sites, held, x, y, buffer, plan, earlier)
        if reason is None:
            reason = _write(tile, scene, sites, inventory, x, y, half, options, out, summary, imagery_source)
        if reason is None:
            count += 1
            written.append(footprint(tile, scene))
        else:
            summary.windows_left_out[reason] += 1
    return count


def _window_reason(tile: Tile, scene: Scene, sites: Sites, held: np.ndarray, x: np.ndarray, y: np.ndarray,
                   buffer: float, plan: SplitPlan, written: list[shapely.Polygon]) -> str | None:
    """Why a window holding sites ``held`` must be left out (None: it may be kept)."""
    c = tile.core
    near = np.flatnonzero((x >= c.left - buffer) & (x < c.right + buffer) & (y > c.bottom - buffer)
                          & (y <= c.top + buffer))
    chosen = window_set(list(sites.sets[held]), list(sites.sets[near]))
    if chosen is None:
        return "straddling" if len({s for s in sites.sets[held] if s}) > 1 else "near-other-set"
    if plan.block_m is not None and not in_one_block(tile.core, scene.crs, plan):
        return "straddling"
    if overlaps(footprint(tile, scene), written):
        return "overlaps-clearer-scene"
    return None


def _write(tile: Tile, scene: Scene, sites: Sites, inventory: PointInventory, x: np.ndarray, y: np.ndarray,
           half: float, options: WindowOptions, out: Path, summary: BuildSummary,
           imagery_source: str) -> str | None:
    """Read the window, label the visible sites and write the folder; return why not, if not."""
    core = tile.core
    chip = read_window(scene, tile)
    if chip.valid_fraction < options.min_valid:
        return "cloudy"
    frame = shapely.box(*core)
    candidates = np.flatnonzero((x > core.left - half) & (x < core.right + half)
                                & (y > core.bottom - half) & (y < core.top + half))
    labels, centred = [], []
    for i in candidates:
        square = shapely.box(x[i] - half, y[i] - half, x[i] + half, y[i] + half)
        shown = square.intersection(frame)
        if shown.area < MIN_LABEL_SHARE * square.area or not _clear(chip, shown):
            continue
        labels.append((i, shown))
        if core.left <= x[i] < core.right and core.bottom < y[i] <= core.top:
            centred.append(i)
    held = [i for i in centred if sites.sets[i] is not None]
    if not held:
        return "cloudy"
    split = str(sites.sets[held[0]])
    regions = sorted({str(sites.regions[i]) for i in centred})
    folder = write_folder(Window(scene, tile, chip, split, regions, labels), out, sites, inventory,
                          imagery_source)
    sites.labelled[centred] = True
    summary.scenes[split] += 1
    summary.labels[split] += len(labels)
    log.info("window %s (%s): %d label(s)", folder.name, split, len(labels))
    return None


def _clear(chip: Chip, shown: shapely.Polygon) -> bool:
    """Whether the pixel under the centre of a label's visible part holds clear imagery."""
    centre = shown.centroid
    col, row = ~chip.transform * (centre.x, centre.y)
    r, c = int(np.clip(row, 0, chip.valid.shape[0] - 1)), int(np.clip(col, 0, chip.valid.shape[1] - 1))
    return bool(chip.valid[r, c])


@dataclass(frozen=True)
class ImageryQuery:
    """Where the imagery comes from and which scenes to take (see :func:`open_imagery`)."""

    source: str
    collection: str | None = None
    datetime: str | None = None
    max_cloud: float | None = None
    aoi: str | None = None
    allow_hosts: tuple[str, ...] = ()
    allow_dirs: tuple[Path, ...] = ()


def build(points: Path, query: ImageryQuery, out: Path, plan: SplitPlan,
          options: WindowOptions | None = None) -> BuildSummary:
    """Read the inventory, split its regions, find the scenes and write the dataset (see the module).

    Raises:
        DatasetError: the errors of :func:`build_dataset`, :func:`choose_scenes` and the split's.
        IngestError: the inventory or the imagery cannot be read (a personal column, an empty search, ...).
    """
    from fieldtruth.ingest.aoi import read_aoi
    from fieldtruth.ingest.points import read_point_inventory
    from fieldtruth.pipelines.datasplit import assign_regions, site_regions

    options = options or WindowOptions()
    inventory = read_point_inventory(points, allow_dirs=query.allow_dirs)
    if query.aoi is not None:
        area = read_aoi(query.aoi)
        inside = shapely.within(inventory.frame.geometry.to_numpy(), area)
        if not inside.any():
            raise DatasetError(f"no site of inventory {inventory.name!r} lies in --aoi {query.aoi!r}")
        frame = inventory.frame[inside].reset_index(drop=True)
        inventory = PointInventory(frame, *(getattr(inventory, f) for f in (
            "name", "source", "licence", "sha256", "object_size_m", "object_class", "declaration")))
    if not len(inventory.frame):
        raise DatasetError(f"inventory {str(points)!r} holds no site")
    regions = site_regions(plan, inventory.frame, str(points))
    assignment = assign_regions(plan, regions, str(points))
    scenes = choose_scenes(_search(query, inventory, regions, assignment), datetime=query.datetime,
                           max_cloud=query.max_cloud, source=query.source)
    log.info("%d scene(s) chosen from %s; %d region(s) assigned", len(scenes), query.source, len(assignment))
    return build_dataset(inventory, assignment, regions, scenes, out, plan, options, query.source)


def _search(query: ImageryQuery, inventory: PointInventory, regions: np.ndarray,
            assignment: dict[str, str]) -> list[Scene]:
    """The scenes of the source; a STAC API is searched once per set, over the bounding box of that set's
    sites (one box over states far apart would spend the search's item limit on the land between)."""
    from fieldtruth.ingest.sources import is_stac_api, open_imagery

    options = {"collection": query.collection, "datetime": query.datetime, "max_cloud": query.max_cloud,
               "allow_hosts": query.allow_hosts, "allow_dirs": query.allow_dirs}
    if not is_stac_api(query.source):
        return open_imagery(query.source, **options)
    found: dict[str, Scene] = {}
    for name in SETS:
        held = np.isin(regions, [r for r, s in assignment.items() if s == name])
        if not held.any():
            continue
        west, south, east, north = inventory.frame.geometry[held].total_bounds
        bbox = (west - 0.01, south - 0.01, east + 0.01, north + 0.01)
        for scene in open_imagery(query.source, bbox=bbox, **options):
            found.setdefault(scene.id, scene)
    return list(found.values())
