"""Cross-validation by whole scenes (leave-scenes-out): train, choose the threshold, measure on held-out
scenes.

Each fold holds out its test scenes entirely; of the other scenes, the one with the most labels is the
validation scene (early stopping and the operating threshold) and the rest are trained on. Before a
fold runs, :func:`check_split` refuses any split in which a training or validation scene is a test
scene or overlaps one on the ground (a training chip could then show an evaluation site). The
non-learned baseline is fitted (threshold only) on the same non-test scenes and measured on the same
test scenes, so both rows of the table come from identical folds.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rasterio.warp import transform_bounds
from shapely.geometry import box

from fieldtruth.detectors.config import TrainConfig
from fieldtruth.detectors.errors import TrainingError
from fieldtruth.detectors.report import EvaluationReport, SceneResult, build_report, evaluate_scenes
from fieldtruth.detectors.train import train_detector
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
    with most labels (more than one, so that one odd scene does not set the threshold alone; none, so
    that every non-test scene is trained on and the threshold is cross-fitted over them, as
    ``fieldtruth train`` does without ``--val``).

    Raises:
        ValueError: fewer than 3 scenes, ``k`` outside ``2..len(scenes)``, or no training scene left.
    """
    scenes = sorted((Path(p) for p in scene_dirs), key=lambda p: p.name)
    if len(scenes) < 3 or not 2 <= k <= len(scenes):
        raise ValueError(f"cross-validation needs >= 3 scenes and 2 <= k <= scenes, got {len(scenes)} "
                         f"scene(s), k={k!r}")
    folds = []
    for i in range(k):
        test = tuple(scenes[j] for j in range(len(scenes)) if j * k // len(scenes) == i)
        rest = [p for p in scenes if p not in test]
        if not 0 <= validation < len(rest):
            raise ValueError(f"fold {i} has {len(rest)} non-test scene(s): {validation!r} validation "
                             "scene(s) leave none to train on")
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
            raise TrainingError(f"scene {str(path)!r} is both trained on and evaluated on; hold whole scenes "
                                "out")
        area = footprint(path)
        for other, shape in evals:
            if area.intersects(shape) and area.intersection(shape).area > 0:
                raise TrainingError(
                    f"training scene {str(path)!r} overlaps evaluation scene {str(other)!r} on the ground; "
                    "training chips could show evaluation sites. Hold out overlapping scenes together "
                    "(spatial blocks)"
                )


@dataclass(frozen=True)
class FoldResult:
    """What one fold did: its scene names, the threshold chosen (on its validation scenes, or cross-fitted
    over its training scenes), training time, its test scenes' F1 pooled at that threshold, and, where
    cross-fitted, the F1 its model card told to expect on new scenes."""

    train: tuple[str, ...]
    validation: tuple[str, ...]
    test: tuple[str, ...]
    threshold: float
    train_seconds: float
    baseline_threshold: float | None = None
    expected_on_new_scenes: dict[str, Any] | None = None
    test_f1: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the baseline's threshold and the card's expectation only where there are some)."""
        out = {"train": list(self.train), "validation": list(self.validation), "test": list(self.test),
               "threshold": self.threshold, "train_seconds": self.train_seconds}
        if self.baseline_threshold is not None:
            out["baseline_threshold"] = self.baseline_threshold
        if self.expected_on_new_scenes is not None:
            out["expected_on_new_scenes"] = self.expected_on_new_scenes
        if self.test_f1 is not None:
            out["test_f1"] = self.test_f1
        return out


@dataclass(frozen=True)
class CrossValidation:
    """Every fold, and the held-out figures pooled over folds: the learned detector's and the baseline's."""

    folds: tuple[FoldResult, ...]
    learned: EvaluationReport
    baseline: EvaluationReport | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``crossval.json``."""
        return {"folds": [f.to_dict() for f in self.folds], "learned": self.learned.to_dict(),
                "baseline": self.baseline.to_dict() if self.baseline else None}


def run_crossval(
    folds: Sequence[Fold], out_dir: Path, config: TrainConfig, *, baseline: Callable | None = None,
    tolerance_px: float = 1.0, say: Callable[[str], None] | None = None,
) -> CrossValidation:
    """Train and test every fold; write each fold's bundle and ``crossval.json``; return the results.

    Args:
        folds: the splits (see :func:`make_folds`).
        out_dir: where bundles and the summary go.
        config: training settings.
        baseline: ``fit(scene_dirs, out) -> LoadedBundle`` of a non-learned baseline, measured on the same
            folds.
        tolerance_px: match tolerance.
        say: progress messages.
    """
    say = say or (lambda m: log.info("%s", m))
    out_dir = Path(out_dir)
    learned: list[tuple[SceneResult, float]] = []
    base: list[tuple[SceneResult, float]] = []
    fold_results = []
    for i, fold in enumerate(folds):
        check_split(list(fold.train) + list(fold.validation), fold.test)
        started = time.perf_counter()
        bundle = train_detector(list(fold.train), out_dir / f"fold{i}.safetensors", config,
                                val_dirs=list(fold.validation))
        seconds = time.perf_counter() - started
        tested = evaluate_scenes(bundle, fold.test, tolerance_px=tolerance_px)
        learned += [(r, bundle.card.threshold) for r in tested]
        baseline_threshold = None
        if baseline is not None:
            fitted = baseline([*fold.train, *fold.validation], out_dir / f"fold{i}-baseline.safetensors")
            base += [(r, fitted.card.threshold)
                     for r in evaluate_scenes(fitted, fold.test, tolerance_px=tolerance_px)]
            baseline_threshold = fitted.card.threshold
        result = FoldResult(
            train=tuple(p.name for p in fold.train), validation=tuple(p.name for p in fold.validation),
            test=tuple(p.name for p in fold.test), threshold=bundle.card.threshold,
            train_seconds=round(seconds, 1), baseline_threshold=baseline_threshold,
            expected_on_new_scenes=(bundle.card.split or {}).get("expected_on_new_scenes"),
            test_f1=_pooled([(r, bundle.card.threshold) for r in tested], tolerance_px).pooled.f1,
        )
        fold_results.append(result)
        say(f"fold {i}: trained {seconds:.0f} s on {list(result.train)}, validated on "
            f"{list(result.validation)}, tested on {list(result.test)}")
    summary = CrossValidation(tuple(fold_results), _pooled(learned, tolerance_px),
                              _pooled(base, tolerance_px) if base else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "crossval.json").write_text(json.dumps(summary.to_dict(), indent=1), encoding="utf-8")
    return summary


def _pooled(results: list[tuple[SceneResult, float]], tolerance_px: float) -> EvaluationReport:
    """Per-scene figures at each fold's own threshold, pooled over folds (thresholds applied before pooling);
    AP over the whole curves (scores pooled across folds)."""
    at_threshold = [SceneResult(r.scene_id, r.scores.at_threshold(t)) for r, t in results]
    report = build_report(at_threshold, 0.0, tolerance_px=tolerance_px)
    curves = build_report([r for r, _ in results], 0.0, tolerance_px=tolerance_px)
    per_scene = {k: dataclasses.replace(v, ap=curves.per_scene[k].ap) for k, v in report.per_scene.items()}
    pooled = dataclasses.replace(report.pooled, ap=curves.pooled.ap)
    return dataclasses.replace(report, per_scene=per_scene, pooled=pooled, curve=None)
