"""Background windows: ground away from every inventory site, written as negative scenes.

Windows cut over an inventory's sites are mostly background already, but only background *near* sites;
look-alikes of landscapes without any site (other towns, quarries, farm sheds) would never be trained
against. After the labelled windows, :func:`add_background` adds, per set, up to
``background_share`` times as many windows again that

* hold no inventory site (of any set, or of regions left out) within a gap of their edge: the larger of
  the split's buffer and one window side;
* belong to one set: in a block split the window lies in one block that holds sites; in a column split
  the inventory sites within :data:`REACH_M` of it are all of one set (a window with none near is left
  out: nothing says which region it is in);
* are clear (``min_valid``) and overlap no window already written.

They are drawn in a seeded random order over each scene, clearest scene first, and written like any
window, with a label file that declares them background (no feature, ``"background": true``).
An inventory is never complete: a background window may hold an unlisted site. The review loop, not the
builder, finds those (docs/detectors.md).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer

from fieldtruth.imagery.grid import Tile
from fieldtruth.imagery.target import ground_resolution, is_metric
from fieldtruth.imagery.windows import scene_windows
from fieldtruth.ingest.points import PointInventory
from fieldtruth.ingest.scene import Scene
from fieldtruth.pipelines.datasetfolders import (
    BuildSummary,
    Sites,
    Window,
    WindowOptions,
    footprint,
    overlaps,
    read_window,
    write_folder,
)
from fieldtruth.pipelines.datasplit import SETS, SplitPlan, block_of, in_one_block

log = logging.getLogger(__name__)

#: In a column split, the inventory sites within this distance (metres) of a background window decide
#: its set (all must be of one).
REACH_M = 20_000.0


def add_background(scenes: Sequence[Scene], sites: Sites, inventory: PointInventory,
                   assignment: dict[str, str], plan: SplitPlan, options: WindowOptions, out: Path,
                   written: list[shapely.Polygon], summary: BuildSummary, imagery_source: str) -> None:
    """Write background windows (see the module docstring); count them in ``summary``."""
    wanted = {s: math.ceil(options.background_share * summary.scenes[s]) for s in SETS}
    if not any(wanted.values()):
        return
    rng = np.random.default_rng(plan.seed)
    for scene in scenes:
        if all(summary.background[s] >= wanted[s] for s in SETS):
            break
        x, y = Transformer.from_crs("EPSG:4326", scene.crs, always_xy=True).transform(sites.lon, sites.lat)
        per_metre = 1.0 if is_metric(scene.crs) else float(scene.resolution[0]) / ground_resolution(scene)
        gap = max(plan.buffer_m * per_metre, options.size_px * float(scene.resolution[0]))
        reach = max(REACH_M * per_metre, 2 * gap)
        tiles = list(scene_windows(scene, options.size_px))
        for k in rng.permutation(len(tiles)):
            tile = tiles[int(k)]
            found = _set_of(tile, scene, sites, x, y, gap, reach, plan, assignment)
            if found is None or summary.background[found[0]] >= wanted[found[0]]:
                continue
            area = footprint(tile, scene)
            if overlaps(area, written):
                continue
            chip = read_window(scene, tile)
            if chip.valid_fraction < options.min_valid:
                continue
            folder = write_folder(Window(scene, tile, chip, found[0], found[1], []), out, sites, inventory,
                                  imagery_source)
            written.append(area)
            summary.background[found[0]] += 1
            summary.scenes[found[0]] += 1
            log.info("background window %s (%s)", folder.name, found[0])
    for name in SETS:
        if summary.background[name] < wanted[name]:
            log.warning("the %s set got %d of %d background window(s) wanted: too little clear ground "
                        "away from every inventory site", name, summary.background[name], wanted[name])


def _set_of(tile: Tile, scene: Scene, sites: Sites, x: np.ndarray, y: np.ndarray, gap: float,
            reach: float, plan: SplitPlan, assignment: dict[str, str]) -> tuple[str, list[str]] | None:
    """The set and regions of a background window, or None when it cannot be one."""
    c = tile.core

    def within(d: float) -> np.ndarray:
        return np.flatnonzero((x >= c.left - d) & (x < c.right + d) & (y > c.bottom - d) & (y <= c.top + d))

    if len(within(gap)):
        return None
    if plan.block_m is not None:
        if not in_one_block(c, scene.crs, plan):
            return None
        block = block_of(c, scene.crs, plan)
        return (assignment[block], [block]) if block in assignment else None
    near = within(reach)
    sets = {s for s in sites.sets[near] if s is not None}
    if len(sets) != 1:
        return None
    (chosen,) = sets
    return chosen, sorted({str(sites.regions[i]) for i in near if sites.sets[i] == chosen})
