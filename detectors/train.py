"""Training a point detector on labelled scenes, choosing its operating threshold, writing its bundle.

Whole scenes are held out for validation when more than one is given (the last one named); the
operating threshold is the one maximising F1 there (on the training scenes when only one is given,
which the card says). Training is seeded (chip positions, augmentation, initial weights) and honours
``TrainConfig.num_threads``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from fieldtruth.detectors.bundle import LoadedBundle, load_bundle, save_bundle
from fieldtruth.detectors.card import ModelCard
from fieldtruth.detectors.data import (
    ChipDataset,
    TrainingScene,
    band_statistics,
    default_augmentation,
    load_training_scene,
)
from fieldtruth.detectors.errors import TrainingError
from fieldtruth.detectors.evaluate import Scores, merge_scores, score_detections
from fieldtruth.detectors.model import build_model, output_stride
from fieldtruth.detectors.predict import detect_scene

log = logging.getLogger(__name__)

#: Called after every optimisation step with (step, total steps, loss).
Progress = Callable[[int, int, float], None]


@dataclass(frozen=True)
class TrainConfig:
    """How to train a detector.

    Attributes:
        seed: seeds chip positions, augmentation and initial weights.
        steps: optimisation steps. batch_size: chips per step. chip_size: chip side (pixels, even).
        lr: peak learning rate (one-cycle schedule). weight_decay: AdamW weight decay.
        classes: classes to learn, in heatmap order; every class in the training labels (sorted) when None.
        bands: band names to read, in model input order.
        architecture: registered architecture. architecture_args: its keyword arguments (besides
            ``in_channels`` and ``num_classes``, which come from ``bands`` and ``classes``).
        positive_fraction: share of chips centred near a labelled site.
        hard_fraction: share of chips centred on hard negatives (false detections of the model so far,
            mined on the training scenes at the fractions of training in ``mine_at``).
        mine_at: when to mine hard negatives, as fractions of ``steps``; empty to never mine.
        sigma_px: radius of the Gaussian around each centre in the target heatmap (pixels).
        size_weight: weight of the box size loss (only with ``architecture_args["size_head"]``).
        min_distance_px: minimum distance between detections (pixels), written to the card.
        tolerance_px: match tolerance when choosing the threshold and measuring.
        num_threads: torch intra-op threads while training (restored afterwards); unchanged when None.
        time_budget_s: wall-clock budget of the optimisation loop (seconds): when steps run slower than the
            budget allows, the learning-rate schedule and mining follow elapsed time instead of steps and
            training ends (annealed) when the budget is spent. None for no limit (fully reproducible).
        eval_tile: tile core used when detecting over validation scenes. eval_halo: its halo.
        gsd_m: ground sampling distance of the scenes (metres), written to the card.
        licence: licence of the trained weights.
    """

    seed: int = 0
    steps: int = 1000
    batch_size: int = 16
    chip_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    classes: tuple[str, ...] | None = None
    bands: tuple[str, ...] = ("blue", "green", "red", "nir")
    architecture: str = "centrenet"
    architecture_args: dict[str, Any] = field(default_factory=lambda: {"width": 32, "dilations": [1, 2, 3, 1]})
    positive_fraction: float = 0.4
    hard_fraction: float = 0.3
    mine_at: tuple[float, ...] = (0.35, 0.65)
    sigma_px: float = 2.0
    size_weight: float = 0.1
    min_distance_px: int = 6
    tolerance_px: float = 1.0
    num_threads: int | None = None
    time_budget_s: float | None = None
    eval_tile: int = 512
    eval_halo: int = 32
    gsd_m: float = 10.0
    licence: str = "CC-BY-4.0"

    def __post_init__(self) -> None:
        """Refuse settings training cannot work with."""
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be >= 1, got {self.steps!r}, {self.batch_size!r}")
        if self.chip_size < 16 or self.chip_size % 2:
            raise ValueError(f"chip_size must be an even number >= 16, got {self.chip_size!r}")
        if not 0.0 <= self.positive_fraction <= 1.0:
            raise ValueError(f"positive_fraction must be within [0, 1], got {self.positive_fraction!r}")
        if self.lr <= 0 or self.sigma_px <= 0:
            raise ValueError(f"lr and sigma_px must be positive, got {self.lr!r}, {self.sigma_px!r}")

    @classmethod
    def demo(cls, **overrides: Any) -> TrainConfig:
        """Settings of ``fieldtruth demo``: kilns and camps on synthetic scenes, about a minute on 2 CPU threads."""
        values: dict[str, Any] = {
            "seed": 0, "steps": 900, "batch_size": 16, "chip_size": 64, "lr": 3e-3,
            "classes": ("brick_kiln", "fishing_camp"), "num_threads": 2, "time_budget_s": 100.0,
        }
        values.update(overrides)
        return cls(**values)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of centres (cells equal to 1)."""
    pos = target.eq(1.0).float()
    p = torch.sigmoid(logits)
    pos_term = pos * (1 - p) ** alpha * F.logsigmoid(logits)
    neg_term = (1 - pos) * (1 - target) ** beta * p**alpha * F.logsigmoid(-logits)
    return -(pos_term.sum() + neg_term.sum()) / pos.sum().clamp(min=1.0)


def train_detector(
    scene_dirs: Sequence[Path], out: Path, config: TrainConfig, progress: Progress | None = None
) -> LoadedBundle:
    """Train a point detector on labelled scene folders and write its bundle.

    Args:
        scene_dirs: scene folders (bands, ``labels.geojson``); with more than one, the last is held out.
        out: the bundle file to write.
        config: training settings.
        progress: called after each step with (step, total steps, loss).

    Returns:
        The bundle as written and loaded back (verified).

    Raises:
        TrainingError: no scene, unreadable scenes, or no labelled site of the classes to learn.
        LabelError: a label file cannot be read.
    """
    if not scene_dirs:
        raise TrainingError("train_detector needs at least one scene folder")
    previous_threads = torch.get_num_threads()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    try:
        return _train(list(scene_dirs), Path(out), config, progress)
    finally:
        torch.set_num_threads(previous_threads)


def _train(scene_dirs: list[Path], out: Path, config: TrainConfig, progress: Progress | None) -> LoadedBundle:
    torch.manual_seed(config.seed)
    scenes = [load_training_scene(d, config.bands) for d in scene_dirs]
    train_scenes, val_scenes = (scenes[:-1], scenes[-1:]) if len(scenes) > 1 else (scenes, [])
    classes = config.classes or tuple(sorted({lab.label for s in train_scenes for lab in s.labels}))
    if not any(lab.label in classes for s in train_scenes for lab in s.labels):
        raise TrainingError(f"the training scenes {[s.id for s in train_scenes]!r} hold no labelled site of {classes!r}")
    norm = band_statistics(train_scenes)
    args = {**config.architecture_args, "in_channels": len(config.bands), "num_classes": len(classes)}
    model = build_model(config.architecture, args)
    card = ModelCard(
        architecture=config.architecture, architecture_args=args, bands=tuple(config.bands), gsd_m=config.gsd_m,
        norm_mean=norm[0], norm_std=norm[1], classes=tuple(classes), min_distance_px=config.min_distance_px,
        receptive_field_px=int(getattr(model, "receptive_field_px", 0)), licence=config.licence,
        training_data=tuple(s.provenance for s in train_scenes),
    )
    started = time.perf_counter()
    losses = _fit(model, card, train_scenes, config, progress)
    seconds = time.perf_counter() - started
    model.eval()
    held_out = bool(val_scenes)
    threshold, metrics = _choose_threshold(model, card, val_scenes or train_scenes, config)
    metrics.update({"train_seconds": round(seconds, 1), "steps_run": len(losses),
                    "final_loss": round(float(np.mean(losses[-20:])), 4), "measured_on_held_out": held_out})
    split = {
        "train": [s.id for s in train_scenes], "validation": [s.id for s in val_scenes],
        "threshold_chosen_on": "validation" if held_out else "training (no held-out scene was given)",
    }
    card = dataclasses.replace(card, threshold=threshold, metrics=metrics, split=split)
    save_bundle(out, model, card)
    log.info("trained %s in %.0f s; threshold %.3f; %s", out, seconds, threshold, metrics.get("overall"))
    return load_bundle(out)


def _fit(
    model: torch.nn.Module, card: ModelCard, scenes: list[TrainingScene], config: TrainConfig, progress: Progress | None
) -> list[float]:
    """Run the optimisation loop (mining hard negatives on the way); return the loss of every step."""
    dataset = ChipDataset(
        scenes, classes=card.classes, norm=(card.norm_mean, card.norm_std), chip_size=config.chip_size,
        length=config.steps * config.batch_size, stride=output_stride(model), positive_fraction=config.positive_fraction,
        hard_fraction=config.hard_fraction, sigma_px=config.sigma_px, seed=config.seed, augment=default_augmentation(),
    )
    loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=False, num_workers=0)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    mine_left = sorted(config.mine_at) if config.hard_fraction > 0 else []
    model.train()
    losses: list[float] = []
    started = time.perf_counter()
    for step, (x, heat, sizes, mask) in enumerate(loader, start=1):
        done = _progress_fraction(step - 1, config, time.perf_counter() - started)
        for group in optimiser.param_groups:
            group["lr"] = one_cycle_lr(done, config.lr)
        heads = model(x)
        loss = focal_loss(heads.heatmap, heat)
        if heads.size is not None:
            loss = loss + config.size_weight * (F.l1_loss(heads.size * mask, sizes * mask, reduction="sum") / mask.sum().clamp(min=1))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step, config.steps, losses[-1])
        done = _progress_fraction(step, config, time.perf_counter() - started)
        if mine_left and done >= mine_left[0]:
            mine_left = [f for f in mine_left if f > done]
            dataset.hard = _mine_hard_negatives(model, card, scenes, config)
        if done >= 1.0:
            if step < config.steps:
                log.warning("training ended at step %d of %d: time budget of %.0f s spent", step, config.steps, config.time_budget_s)
            break
    return losses


def _progress_fraction(step: int, config: TrainConfig, elapsed: float) -> float:
    """How far training is: by steps, or by time when a time budget binds sooner."""
    by_time = elapsed / config.time_budget_s if config.time_budget_s else 0.0
    return max(step / config.steps, by_time)


def one_cycle_lr(done: float, peak: float, warmup: float = 0.15) -> float:
    """One-cycle learning rate at training progress ``done`` in [0, 1] (cosine warm-up, then cosine decay)."""
    start, end = peak / 25, peak / 25 / 1e4
    done = min(max(done, 0.0), 1.0)
    if done < warmup:
        return start + (peak - start) * (1 - math.cos(math.pi * done / warmup)) / 2
    return end + (peak - end) * (1 + math.cos(math.pi * (done - warmup) / (1 - warmup))) / 2


def _mine_hard_negatives(
    model: torch.nn.Module, card: ModelCard, scenes: list[TrainingScene], config: TrainConfig
) -> list[tuple[int, float, float]]:
    """Detections of the current model on the training scenes that match no labelled site (of any class)."""
    model.eval()
    bundle = LoadedBundle(model=model, card=card, sha256="", path=Path())
    hard = []
    for i, scene in enumerate(scenes):
        zones = shapely.union_all([lab.geometry.buffer(config.tolerance_px + 2) for lab in scene.labels])
        for d in detect_scene(bundle, scene.data, scene.valid, tile=config.eval_tile, halo=config.eval_halo, threshold=0.1):
            if zones.is_empty or not zones.contains(shapely.Point(d.col, d.row)):
                hard.append((i, d.row, d.col))
    model.train()
    log.debug("mined %d hard negative(s)", len(hard))
    return hard


def _choose_threshold(
    model: torch.nn.Module, card: ModelCard, scenes: list[TrainingScene], config: TrainConfig
) -> tuple[float, dict[str, Any]]:
    """Detect over whole scenes, pick the F1-best threshold, and measure there (overall and per class)."""
    bundle = LoadedBundle(model=model, card=card, sha256="", path=Path())
    per_scene = []
    for scene in scenes:
        found = detect_scene(bundle, scene.data, scene.valid, tile=config.eval_tile, halo=config.eval_halo, threshold=0.05)
        labels = [lab for lab in scene.labels if lab.label in card.classes]
        per_scene.append((found, labels))
    merged = merge_scores([score_detections(f, lab, tolerance_px=config.tolerance_px) for f, lab in per_scene])
    threshold, best = merged.best_threshold()
    threshold = float(min(max(threshold, 0.05), 0.95))
    metrics: dict[str, Any] = {
        "scenes": [s.id for s in scenes], "threshold": round(threshold, 4),
        "overall": merged.at_threshold(threshold).summary(),
        "average_precision": round(merged.average_precision, 4),
    }
    metrics["per_class"] = {name: _class_scores(per_scene, name, threshold, config).summary() for name in card.classes}
    return threshold, metrics


def _class_scores(per_scene: list, name: str, threshold: float, config: TrainConfig) -> Scores:
    parts = []
    for found, labels in per_scene:
        dets = [d for d in found if d.label == name and d.score >= threshold]
        parts.append(score_detections(dets, [lab for lab in labels if lab.label == name], tolerance_px=config.tolerance_px))
    return merge_scores(parts)
