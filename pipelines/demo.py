"""The demo: the whole path offline on synthetic regions, scored against the generator's labels.

Two regions are generated from seeds (one to train on, one to scan), a small detector is trained on
the first, the second is scanned on a local Dask cluster, the leads are matched to the second region's
labels, risk cells are scored with a synthetic kiln registry, and both maps are drawn. The detector
never sees the region it is scored on. Then a later date of the scanned region (some kilns gone, some
new) is scanned again over its north-west quarter with ``--previous``, and what changed is printed:
sites outside that quarter are ``unknown`` (not covered), never gone.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd

from fieldtruth.atomicfile import write_json
from fieldtruth.detectors.evaluate import LabelShape, ScoredPoint, Scores, match_points
from fieldtruth.detectors.train import TrainConfig, train_detector
from fieldtruth.imagery.synthetic import generate_scene
from fieldtruth.ingest.sectors import load_declaration
from fieldtruth.maps.leads import PASSPHRASE_ENV, build_leads_map
from fieldtruth.maps.risk import build_risk_cells, write_risk
from fieldtruth.pipelines.demo_dates import DemoChanges, second_date
from fieldtruth.pipelines.demo_registry import write_registry
from fieldtruth.pipelines.progress import TrainingProgress
from fieldtruth.pipelines.scan import ScanConfig, scan
from fieldtruth.pipelines.scansummary import ScanSummary
from fieldtruth.pipelines.stacitem import write_run_items
from fieldtruth.runfiles import RunFiles

log = logging.getLogger(__name__)

DEMO_SIZE = 2048


@dataclass(frozen=True)
class DemoReport:
    """Where the demo put everything, and how well the detector found the synthetic sites."""

    out: Path
    bundle: Path
    summary: ScanSummary
    scores: Scores
    maps: dict[str, Path]
    seconds: float
    changes: DemoChanges | None = None

    def text(self) -> str:
        """A short report for the terminal."""
        s, files = self.scores, RunFiles(self.summary.run_dir)
        lines = [
            f"fieldtruth demo finished in {self.seconds:.0f} s",
            f"  detector:        {self.bundle}",
            f"  run folder:      {self.summary.run_dir}",
            f"  detections:      {files.detections} ({self.summary.detections} unverified leads)",
            f"  review ledger:   {files.ledger}",
        ]
        lines += [f"  {tier} map: {path}" for tier, path in self.maps.items()]
        lines += [
            f"On the held-out synthetic region ({s.n_labels} labelled sites, tolerance 1 pixel):",
            f"  precision {s.precision:.3f}   recall {s.recall:.3f}   F1 {s.f1:.3f}   "
            f"(TP {s.tp}, FP {s.fp}, FN {s.fn})",
            "Every detection is an unverified lead: open the restricted map, and record decisions with",
            f"  fieldtruth review decide {self.summary.run_dir} SITE "
            "--decision ... --method ... --reviewer ID",
        ]
        return "\n".join(lines + (self.changes.lines() if self.changes else []))


def run_demo(out: Path, *, seed: int = 1, workers: int | None = None, size: int = DEMO_SIZE,
             train_config: TrainConfig | None = None,
             progress: Callable[[str], None] | None = None) -> DemoReport:
    """Generate, train, scan, score and map; return where everything is and the scores.

    Args:
        out: folder for scenes, detector and run (the run is ``out/run``; an earlier run there is replaced).
        seed: seed of the training region; the scanned region uses ``seed + 1``.
        workers: local Dask worker processes for the scan.
        size: side of each synthetic region in pixels.
        train_config: training settings; :meth:`TrainConfig.demo` when None.
        progress: called with one-line progress messages.
    """
    say = progress or (lambda message: log.info("%s", message))
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    say(f"[1/7] generating two synthetic regions of {size} x {size} px (seeds {seed}, {seed + 1})")
    train_scene = generate_scene(out / "scenes" / "train", seed=seed, size=size)
    demo_scene = generate_scene(out / "scenes" / "scan", seed=seed + 1, size=size)
    say(f"[2/7] training a detector on the first region ({sum(train_scene.counts.values())} labelled sites)")
    bundle_path = out / "detector.safetensors"
    with TrainingProgress(say) as progress:
        train_detector([train_scene.path], bundle_path, train_config or TrainConfig.demo(), progress=progress)
    say("[3/7] scanning the second region on a local Dask cluster")
    run_dir = out / "run"
    _clear_run(run_dir)
    summary = scan(ScanConfig(imagery=demo_scene.path, detector=bundle_path, out=run_dir, workers=workers),
                   progress=say)
    say("[4/7] scoring the leads against the generator's labels")
    scores = score_run(RunFiles(run_dir).detections, demo_scene.labels_path, tolerance_m=10.0)
    write_json(RunFiles(run_dir).demo_scores, scores.summary())
    say("[5/7] scoring risk cells with a synthetic kiln registry (a sector dataset)")
    declaration = write_registry(demo_scene.labels_path, out / "sectors", seed=seed + 1)
    write_risk(run_dir, build_risk_cells(run_dir, [load_declaration(declaration)], progress=say))
    say("[6/7] drawing the restricted and shared maps")
    maps = draw_demo_maps(run_dir, say)
    write_run_items(run_dir)
    say("[7/7] a later date of the region (some kilns gone, some new): scanning its north-west quarter again")
    changes = second_date(out, demo_scene, bundle_path, workers, say)
    return DemoReport(out, bundle_path, summary, scores, maps, time.perf_counter() - started, changes)


def draw_demo_maps(run_dir: Path, say: Callable[[str], None]) -> dict[str, Path]:
    """Both maps of the demo run. The restricted one is encrypted when ``FIELDTRUTH_PASSPHRASE`` is set;
    otherwise it is left unencrypted, which is acceptable only because every site in it is synthetic."""
    encrypt = bool(os.environ.get(PASSPHRASE_ENV))
    if not encrypt:
        say(f"  {PASSPHRASE_ENV} is not set: the demo's restricted map is NOT encrypted "
            "(its sites are synthetic); "
            "maps of real runs are encrypted by default")
    return {
        "restricted": build_leads_map(run_dir, tier="restricted", encrypt=encrypt),
        "shared": build_leads_map(run_dir, tier="shared"),
    }


def score_run(detections: Path, labels: Path, *, tolerance_m: float) -> Scores:
    """Match a run's detections to a label file in a metric CRS (the UTM zone of the labels)."""
    found = gpd.read_parquet(detections)
    truth = gpd.read_file(labels)
    metric = truth.estimate_utm_crs()
    found, truth = found.to_crs(metric), truth.to_crs(metric)
    points = [ScoredPoint(g.x, g.y, float(s), str(c))
              for g, s, c in zip(found.geometry, found.score, found.label, strict=True)]
    shapes = [LabelShape(g, str(c)) for g, c in zip(truth.geometry, truth["class"], strict=True)]
    return match_points(points, shapes, tolerance=tolerance_m)


def _clear_run(run_dir: Path) -> None:
    """Remove an earlier demo run so the new one starts clean (only files the demo writes)."""
    files = RunFiles(run_dir)
    if run_dir.exists() and (files.run_json.exists() or files.tiles.exists()):
        shutil.rmtree(run_dir)
