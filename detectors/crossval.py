"""Cross-validation by whole scenes (leave-scenes-out): train, choose the threshold, measure on held-out scenes.

Each fold holds out its test scenes entirely; of the other scenes, the one with the most labels is the
validation scene (early stopping and the operating threshold) and the rest are trained on. Before a
fold runs, :func:`check_split` refuses any split in which a training or validation scene is a test
scene or overlaps one on the ground (a training chip could then show an evaluation site). The
non-learned baseline is fitted (threshold only) on the same non-test scenes and measured on the same
test scenes, so both rows of the table come from identical folds.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rasterio.warp import transform_bounds
from shapely.geometry import box

from fieldtruth.detectors.errors import TrainingError
from fieldtruth.detectors.report import SceneResult, build_report, evaluate_scenes
from fieldtruth.detectors.train import TrainConfig, train_detector
from fieldtruth.ingest.scene import open_scene

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fold:
    """One split of whole scenes: trained on, validated on (threshold, early stopping), tested on."""

    train: tuple[Path, ...]
    validation: tuple[Path, ...]
    test: tuple[Path, ...]


def _label_count(path: Path) -> int:
    meta = Path(path) / "scene.json"
    try:
        return int(json.loads(meta.read_text()).get("labels", 0)) if meta.is_file() else 0
    except (ValueError, TypeError):
        return 0


def make_folds(scene_dirs: Sequence[Path], k: int, validation: int = 1) -> list[Fold]:
    """``k`` folds of consecutive scenes (sorted by name); validation: the ``validation`` non-test scenes
    with most labels (more than one, so that one odd scene does not set the threshold alone).

    Raises:
        ValueError: fewer than 3 scenes, ``k`` outside ``2..len(scenes)``, or no training scene left.
    """
    scenes = sorted((Path(p) for p in scene_dirs), key=lambda p: p.name)
    if len(scenes) < 3 or not 2 <= k <= len(scenes):
        raise ValueError(f"cross-validation needs >= 3 scenes and 2 <= k <= scenes, got {len(scenes)} scene(s), k={k!r}")
    folds = []
    for i in range(k):
        test = tuple(scenes[j] for j in range(len(scenes)) if j * k // len(scenes) == i)
        rest = [p for p in scenes if p not in test]
        if not 1 <= validation < len(rest):
            raise ValueError(f"fold {i} has {len(rest)} non-test scene(s): {validation!r} validation scene(s) leave none to train on")
        val = sorted(rest, key=lambda p: (_label_count(p), p.name), reverse=True)[:validation]
        folds.append(Fold(tuple(p for p in rest if p not in val), tuple(val), test))
    return folds


def footprint(path: Path):  # noqa: ANN201 - a shapely polygon
    """A scene's footprint in EPSG:4326."""
    scene = open_scene(Path(path), hash_files=False)
    return box(*transform_bounds(scene.crs, "EPSG:4326", *scene.bounds, densify_pts=21))


def check_split(train: Sequence[Path], evaluation: Sequence[Path]) -> None:
    """Refuse a split where a training scene is, or overlaps on the ground, an evaluation scene.

    Chips are cut only from training scenes, so no training chip can overlap an evaluation scene
    when no training scene footprint does.

    Raises:
        TrainingError: naming the offending pair.
    """
    evals = [(Path(p), footprint(p)) for p in evaluation]
    for path in train:
        if any(Path(path).resolve() == e.resolve() for e, _ in evals):
            raise TrainingError(f"scene {str(path)!r} is both trained on and evaluated on; hold whole scenes out")
        area = footprint(path)
        for other, shape in evals:
            if area.intersects(shape) and area.intersection(shape).area > 0:
                raise TrainingError(
                    f"training scene {str(path)!r} overlaps evaluation scene {str(other)!r} on the ground; training "
                    "chips could show evaluation sites. Hold out overlapping scenes together (spatial blocks)"
                )


def run_crossval(
    folds: Sequence[Fold], out_dir: Path, config: TrainConfig, *, baseline: Callable | None = None,
    tolerance_px: float = 1.0, say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train and test every fold; write each fold's bundle and ``crossval.json``; return the summary.

    Args:
        folds: the splits (see :func:`make_folds`).
        out_dir: where bundles and the summary go.
        config: training settings.
        baseline: ``fit(scene_dirs, out) -> LoadedBundle`` of a non-learned baseline, measured on the same folds.
        tolerance_px: match tolerance.
        say: progress messages.
    """
    say = say or (lambda m: log.info("%s", m))
    out_dir = Path(out_dir)
    learned: list[tuple[SceneResult, float]] = []
    base: list[tuple[SceneResult, float]] = []
    fold_info = []
    for i, fold in enumerate(folds):
        check_split(list(fold.train) + list(fold.validation), fold.test)
        started = time.perf_counter()
        bundle = train_detector(list(fold.train), out_dir / f"fold{i}.safetensors", config, val_dirs=list(fold.validation))
        seconds = time.perf_counter() - started
        learned += [(r, bundle.card.threshold) for r in evaluate_scenes(bundle, fold.test, tolerance_px=tolerance_px)]
        info = {"train": [p.name for p in fold.train], "validation": [p.name for p in fold.validation],
                "test": [p.name for p in fold.test], "threshold": bundle.card.threshold, "train_seconds": round(seconds, 1)}
        if baseline is not None:
            fitted = baseline(list(fold.train) + list(fold.validation), out_dir / f"fold{i}-baseline.safetensors")
            base += [(r, fitted.card.threshold) for r in evaluate_scenes(fitted, fold.test, tolerance_px=tolerance_px)]
            info["baseline_threshold"] = fitted.card.threshold
        fold_info.append(info)
        say(f"fold {i}: trained {seconds:.0f} s on {info['train']}, validated on {info['validation']}, tested on {info['test']}")
    summary = {"folds": fold_info, "learned": _pooled(learned, tolerance_px), "baseline": _pooled(base, tolerance_px) if base else None}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "crossval.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def _pooled(results: list[tuple[SceneResult, float]], tolerance_px: float) -> dict[str, Any]:
    """Per-scene figures at each fold's own threshold, pooled over folds (thresholds applied before pooling)."""
    at_threshold = [SceneResult(r.scene_id, r.scores.at_threshold(t)) for r, t in results]
    full = [SceneResult(r.scene_id, r.scores) for r, _ in results]
    report = build_report(at_threshold, 0.0, detector={}, tolerance_px=tolerance_px)
    curves = build_report(full, 0.0, detector={}, tolerance_px=tolerance_px)
    for key, value in report["per_scene"].items():
        value["ap"] = curves["per_scene"][key]["ap"]
    report["pooled"]["ap"] = curves["pooled"]["ap"]  # over the whole curves (scores pooled across folds)
    report.pop("curve")
    return report
