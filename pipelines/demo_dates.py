"""The demo's second date: the scanned region again, later, with some kilns gone and some new.

The later scene is :func:`fieldtruth.imagery.synthetic_dates.later_date` of the demo's scanned region,
with every change inside its north-west quarter; only that quarter is scanned again (an AOI), with the
first run as ``--previous``, so the demo also shows that places without a new scan are ``unknown``,
never gone. What changed is compared with what the generator changed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyproj import Transformer

from fieldtruth.imagery._synthetic_draw import Box
from fieldtruth.imagery.synthetic import SyntheticScene
from fieldtruth.imagery.synthetic_dates import later_date
from fieldtruth.pipelines.changes import Changes, region_changes, write_shared_changes, write_sites_csv
from fieldtruth.pipelines.scan import ScanConfig, scan
from fieldtruth.runfiles import RunFiles

#: Kilns the later date loses and gains (all inside the quarter scanned again).
GONE, ADDED = 3, 3


@dataclass(frozen=True)
class DemoChanges:
    """What the second date changed, as found and as generated."""

    first: Path
    run: Path
    changes: Changes
    gone: int
    added: int
    sites_csv: Path
    shared: Path

    def lines(self) -> list[str]:
        """The report's lines."""
        totals = self.changes.totals()
        return [
            f"What changed from {self.changes.dates[0]} to {self.changes.dates[-1]} (second run: {self.run}; "
            f"the generator took {self.gone} kilns away and added {self.added}):",
            "  " + "   ".join(f"{status} {n}" for status, n in totals.items()),
            "  'unknown': outside the quarter scanned again, so not covered, never gone",
            f"  sites over time: {self.sites_csv} (restricted); shared change view: {self.shared}",
            f"  again by hand: fieldtruth changes {self.first} {self.run} --since {self.changes.dates[0]}",
        ]


def quarter_bbox(scene: SyntheticScene) -> str:
    """The north-west quarter of a scene as ``west,south,east,north`` in EPSG:4326 (a scan's --aoi)."""
    half = scene.size // 2
    to_wgs84 = Transformer.from_crs(scene.crs, "EPSG:4326", always_xy=True)
    corners = [scene.transform * (c, r) for r in (0, half) for c in (0, half)]
    lons, lats = to_wgs84.transform([x for x, _ in corners], [y for _, y in corners])
    pad = 1e-6  # stay inside the imagery
    return f"{max(lons[0], lons[2]) + pad},{max(lats[2], lats[3]) + pad},{min(lons[1], lons[3]) - pad}," \
           f"{min(lats[0], lats[1]) - pad}"


def second_date(out: Path, scene: SyntheticScene, bundle: Path, workers: int | None,
                say: Callable[[str], None]) -> DemoChanges:
    """Generate the later date, scan its north-west quarter with the first run as ``--previous``, and
    report what changed (files ``changes.csv`` and ``changes_shared.geojson`` in ``out``)."""
    quarter = Box(0, 0, scene.size // 2, scene.size // 2)
    later = later_date(scene, out / "scenes" / "scan-later", remove=GONE, add=ADDED, seed=scene.seed,
                       within=Box(64, 64, quarter.row1 - 64, quarter.col1 - 64))
    first, run = out / "run", out / "run-later"
    if run.exists() and (RunFiles(run).run_json.exists() or RunFiles(run).tiles.exists()):
        shutil.rmtree(run)
    scan(ScanConfig(imagery=later.path, detector=bundle, out=run, workers=workers, aoi=quarter_bbox(scene),
                    previous=(first,)), progress=say)
    changes = region_changes([first, run])
    sites_csv, shared = out / "changes.csv", out / "changes_shared.geojson"
    write_sites_csv(changes, sites_csv)
    write_shared_changes(changes, shared)
    return DemoChanges(first, run, changes, GONE, ADDED, sites_csv, shared)
