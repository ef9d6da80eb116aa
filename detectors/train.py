"""Training a point detector on labelled scenes, choosing its operating threshold, writing its bundle.

Three roles for whole scenes: training scenes (chips, normalisation statistics, hard negatives),
validation scenes (early stopping and the operating threshold: F1-best there) and test scenes, which
training never sees (``fieldtruth evaluate`` / cross-validation measure on them). Validation scenes are
``val_dirs`` when given, else the last scene named when more than one is given; with a single scene the
threshold is chosen on it and the card says so. Training is seeded (chip positions, augmentation, initial
weights), honours ``TrainConfig.num_threads``, and writes checkpoints that ``resume`` continues.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fieldtruth.detectors.bundle import LoadedBundle, load_bundle, save_bundle
from fieldtruth.detectors.card import ModelCard
from fieldtruth.detectors.checkpoint import CHECKPOINT_NAME
from fieldtruth.detectors.data import TrainingScene, band_statistics, load_training_scene
from fieldtruth.detectors.errors import TrainingError
from fieldtruth.detectors.evaluate import Scores, merge_scores, score_detections
from fieldtruth.detectors.fit import Progress, fit, focal_loss, one_cycle_lr
from fieldtruth.detectors.model import build_model
from fieldtruth.detectors.predict import detect_scene_each
from fieldtruth.detectors.sceneoffset import WATER_OFFSET, check_scene_offset

__all__ = ["Progress", "TrainConfig", "focal_loss", "one_cycle_lr", "train_detector"]

log = logging.getLogger(__name__)


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
            ``in_channels`` and ``num_classes``, which come from ``bands`` and ``classes``; with
            ``indices`` the normalisation statistics are added too).
        positive_fraction: share of chips centred near a labelled site.
        hard_fraction: share of chips centred on hard negatives (false detections of the model so far,
            mined on the training scenes at the fractions of training in ``mine_at``).
        mine_at: when to mine hard negatives, as fractions of ``steps``; empty to never mine.
        open_water_negatives: ``mine`` keeps every mined false detection; ``skip`` leaves out those in open
            water (NDWI > 0 on 90 % of the 15 x 15 px around them), which on labels that leave small boats
            out are mostly unlabelled boats (see benchmarks/README.md); ``ignore`` also takes them out of the
            loss (8 x 8 px around each) until the next mining.
        sigma_px: least radius of the Gaussian around each centre in the target heatmap (pixels); larger
            sites get a quarter of their box's geometric mean side.
        target_shape: ``round`` Gaussians or ``box`` ones (a quarter of the box's width across and of its
            height down; see :func:`~fieldtruth.detectors.data.render_targets`).
        size_weight: weight of the box size loss (only with ``architecture_args["size_head"]``).
        min_distance_px: minimum distance between detections (pixels), written to the card.
        min_distance_choices: when not empty, the minimum distance is chosen among these (pixels) on the
            validation scenes, together with the threshold (F1-best); ``min_distance_px`` otherwise.
        box_suppression_choices: likewise for the card's ``box_suppression`` (models with a size head);
            0.5 when empty.
        tolerance_px: match tolerance when choosing the threshold and measuring.
        num_threads: torch intra-op threads while training (restored afterwards); unchanged when None.
        time_budget_s: wall-clock budget of the optimisation loop (seconds); None for no limit.
        validate_every: steps between validations (early stopping); 0 validates only at the end.
        patience: validations without improvement before stopping; 0 never stops early.
        checkpoint_dir: folder of ``checkpoint.safetensors``; None writes none.
        checkpoint_every: steps between checkpoints. resume: continue from the checkpoint.
        ensemble: number of members trained (seeds ``seed``, ``seed + 1``, ...) and averaged into one bundle.
        gain: range of the random overall brightness gain (augmentation). band_jitter: per-band gain jitter.
        haze: largest random haze offset (augmentation), as a fraction of each band's chip mean; 0 for none.
        scene_offset: per-scene water-level correction (see :mod:`fieldtruth.detectors.sceneoffset`),
            written to the card; empty for none.
        eval_tile: tile core used when detecting over whole scenes. eval_halo: its halo.
        gsd_m: ground sampling distance written to the card (metres); the training scenes' mean ground
            pixel size when None.
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
    open_water_negatives: str = "mine"
    sigma_px: float = 2.0
    target_shape: str = "round"
    size_weight: float = 0.1
    min_distance_px: int = 6
    min_distance_choices: tuple[int, ...] = ()
    box_suppression_choices: tuple[float, ...] = ()
    tolerance_px: float = 1.0
    num_threads: int | None = None
    time_budget_s: float | None = None
    validate_every: int = 0
    patience: int = 0
    checkpoint_dir: str | None = None
    checkpoint_every: int = 100
    resume: bool = False
    ensemble: int = 1
    gain: tuple[float, float] = (0.85, 1.15)
    band_jitter: float = 0.03
    haze: float = 0.0
    scene_offset: dict[str, Any] = field(default_factory=dict)
    eval_tile: int = 512
    eval_halo: int = 32
    gsd_m: float | None = 10.0
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
        if self.open_water_negatives not in ("mine", "skip", "ignore"):
            raise ValueError(f"open_water_negatives must be 'mine', 'skip' or 'ignore', got {self.open_water_negatives!r}")
        if self.target_shape not in ("round", "box"):
            raise ValueError(f"target_shape must be 'round' or 'box', got {self.target_shape!r}")
        if self.validate_every < 0 or self.patience < 0 or self.checkpoint_every < 1:
            raise ValueError("validate_every and patience must be >= 0 and checkpoint_every >= 1")
        check_scene_offset(self.scene_offset, self.bands)

    @classmethod
    def demo(cls, **overrides: Any) -> TrainConfig:
        """Settings of ``fieldtruth demo``: kilns and camps on synthetic scenes, about a minute on 2 CPU threads."""
        values: dict[str, Any] = {
            "seed": 0, "steps": 900, "batch_size": 16, "chip_size": 64, "lr": 3e-3,
            "classes": ("brick_kiln", "fishing_camp"), "num_threads": 2, "time_budget_s": 100.0,
        }
        values.update(overrides)
        return cls(**values)

    @classmethod
    def vessels(cls, **overrides: Any) -> TrainConfig:
        """Settings for small bright objects in water at 10 m (sen2ships): NDWI input, wide context, sizes.

        Chips of 128 px (8 a step) so the ~300 px receptive field sees real water and land while training,
        as it does in a scan; the peak suppression (minimum distance, box fraction) is chosen on the
        validation scenes with the threshold. Each scene's open water is brought to one level first
        (:data:`~fieldtruth.detectors.sceneoffset.WATER_OFFSET`), so haze and glint do not move its pixels.
        """
        values: dict[str, Any] = {
            "seed": 0, "steps": 700, "batch_size": 8, "chip_size": 128, "lr": 3e-3, "classes": ("vessel",),
            "architecture_args": {"width": 32, "dilations": [1, 2, 4, 8, 2, 1], "size_head": True, "indices": [[1, 3]],
                                  "context_down": True, "fast_stem": True},
            "positive_fraction": 0.45, "hard_fraction": 0.3, "mine_at": (0.4,), "sigma_px": 1.5,
            "min_distance_px": 4, "min_distance_choices": (4, 6, 8, 10), "box_suppression_choices": (0.5, 1.0),
            "num_threads": 2, "validate_every": 175, "patience": 0, "gsd_m": None, "ensemble": 4,
            "scene_offset": dict(WATER_OFFSET),
        }
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_mapping(cls, values: dict[str, Any], preset: str = "default") -> TrainConfig:
        """A config from a parsed YAML/JSON mapping on top of a preset (``default``, ``demo``, ``vessels``).

        Raises:
            ValueError: unknown keys or values training cannot work with.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training setting(s) {unknown!r}; known: {sorted(known)!r}")
        fixed = {k: tuple(v) if k in ("classes", "bands", "mine_at", "gain", "min_distance_choices", "box_suppression_choices") and v is not None else v for k, v in values.items()}
        base = {"default": cls, "demo": cls.demo, "vessels": cls.vessels}.get(preset)
        if base is None:
            raise ValueError(f"unknown preset {preset!r}; use default, demo or vessels")
        return base(**fixed)


def train_detector(
    scene_dirs: Sequence[Path], out: Path, config: TrainConfig, progress: Progress | None = None,
    *, val_dirs: Sequence[Path] | None = None,
) -> LoadedBundle:
    """Train a point detector on labelled scene folders and write its bundle.

    Args:
        scene_dirs: scene folders (bands and a label file); with more than one and no ``val_dirs``, the last
            is held out for validation.
        out: the bundle file to write.
        config: training settings.
        progress: called after each step with (step, total steps, loss).
        val_dirs: validation scene folders (early stopping, operating threshold); never trained on.

    Returns:
        The bundle as written and loaded back (verified).

    Raises:
        TrainingError: no scene, unreadable scenes, a scene both trained and validated on, or no labelled
            site of the classes to learn.
        LabelError: a label file cannot be read.
    """
    if not scene_dirs:
        raise TrainingError("train_detector needs at least one scene folder")
    previous_threads = torch.get_num_threads()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    try:
        return _train(list(scene_dirs), list(val_dirs or []), Path(out), config, progress)
    finally:
        torch.set_num_threads(previous_threads)


def _split(scene_dirs: list[Path], val_dirs: list[Path], config: TrainConfig) -> tuple[list, list]:
    overlap = {Path(p).resolve() for p in scene_dirs} & {Path(p).resolve() for p in val_dirs}
    if overlap:
        raise TrainingError(f"scene(s) {sorted(map(str, overlap))!r} are both training and validation scenes; keep them apart")
    scenes = [load_training_scene(d, config.bands, config.scene_offset) for d in scene_dirs]
    vals = [load_training_scene(d, config.bands, config.scene_offset) for d in val_dirs]
    if not vals and len(scenes) > 1:
        scenes, vals = scenes[:-1], scenes[-1:]
    return scenes, vals


def _card(train_scenes: list[TrainingScene], config: TrainConfig) -> tuple[torch.nn.Module, ModelCard]:
    classes = config.classes or tuple(sorted({lab.label for s in train_scenes for lab in s.labels}))
    if not any(lab.label in classes for s in train_scenes for lab in s.labels):
        raise TrainingError(f"the training scenes {[s.id for s in train_scenes]!r} hold no labelled site of {classes!r}")
    norm = band_statistics(train_scenes)
    args = {**config.architecture_args, "in_channels": len(config.bands), "num_classes": len(classes)}
    if args.get("indices") or args.get("log_input") or args.get("local_window"):
        args.update(norm_mean=list(norm[0]), norm_std=list(norm[1]))
    torch.manual_seed(config.seed)
    model = build_model(config.architecture, args)
    gsd = config.gsd_m if config.gsd_m is not None else float(np.mean([s.ground_gsd_m for s in train_scenes]))
    card = ModelCard(
        architecture=config.architecture, architecture_args=args, bands=tuple(config.bands), gsd_m=round(gsd, 2),
        norm_mean=norm[0], norm_std=norm[1], classes=tuple(classes), min_distance_px=config.min_distance_px,
        receptive_field_px=int(getattr(model, "receptive_field_px", 0)), licence=config.licence,
        scene_offset=dict(config.scene_offset),
        training_data=tuple(s.provenance for s in train_scenes),
    )
    return model, card


def _member_config(config: TrainConfig, k: int) -> TrainConfig:
    """Settings of ensemble member ``k``: its own seed and checkpoint folder (resumed only where one exists)."""
    folder = Path(config.checkpoint_dir) / f"member{k}" if config.checkpoint_dir else None
    resume = config.resume and folder is not None and (folder / CHECKPOINT_NAME).is_file()
    return dataclasses.replace(config, seed=config.seed + k, checkpoint_dir=str(folder) if folder else None, resume=resume)


def _train(
    scene_dirs: list[Path], val_dirs: list[Path], out: Path, config: TrainConfig, progress: Progress | None
) -> LoadedBundle:
    train_scenes, val_scenes = _split(scene_dirs, val_dirs, config)
    started = time.perf_counter()
    members = []
    for k in range(max(1, config.ensemble)):
        member_config = config if config.ensemble <= 1 else _member_config(config, k)
        model, card = _card(train_scenes, member_config)
        result = fit(model, card, train_scenes, val_scenes, member_config, progress)
        members.append(model)
    if len(members) > 1:
        from fieldtruth.detectors.ensemble import ensemble_of

        model, args = ensemble_of(members, card.architecture, card.architecture_args)
        card = dataclasses.replace(card, architecture="ensemble", architecture_args=args, name="fieldtruth-ensemble")
    seconds = time.perf_counter() - started
    held_out = bool(val_scenes)
    card, threshold, metrics = _choose_threshold(model, card, val_scenes or train_scenes, config)
    losses = result.state.losses
    metrics.update({
        "train_seconds": round(seconds, 1), "steps_run": len(losses), "final_loss": round(float(np.mean(losses[-20:])), 4),
        "measured_on_held_out": held_out, "kept_step": result.state.best_step or len(losses),
        "stopped_early": result.stopped_early, "validations": result.state.validations,
        "note": "figures measured on the validation scenes the threshold was chosen on; test figures come from "
                "`fieldtruth evaluate` on other scenes" if held_out else "figures measured on the training scenes",
    })
    split = {
        "train": [s.id for s in train_scenes], "validation": [s.id for s in val_scenes], "test": [],
        "threshold_chosen_on": "validation" if held_out else "training (no held-out scene was given)",
    }
    card = dataclasses.replace(card, threshold=threshold, metrics=metrics, split=split)
    save_bundle(out, model, card)
    log.info("trained %s in %.0f s; threshold %.3f; %s", out, seconds, threshold, metrics.get("overall"))
    return load_bundle(out)


def _choose_threshold(
    model: torch.nn.Module, card: ModelCard, scenes: list[TrainingScene], config: TrainConfig
) -> tuple[ModelCard, float, dict[str, Any]]:
    """Detect over whole scenes, pick the F1-best threshold (and, when the config offers choices, the
    F1-best peak suppression: minimum distance, box fraction), and measure there (overall and per class).

    Returns:
        The card with the chosen suppression settings, the threshold, and the figures.
    """
    distances = tuple(config.min_distance_choices) or (card.min_distance_px,)
    fractions = tuple(config.box_suppression_choices) or (card.box_suppression,)
    candidates = [dataclasses.replace(card, min_distance_px=int(d), box_suppression=float(f)) for d in distances for f in fractions]
    bundle = LoadedBundle(model=model, card=card, sha256="", path=Path())
    found = [detect_scene_each(bundle, candidates, s.data, s.valid, tile=config.eval_tile, halo=config.eval_halo, threshold=0.05)
             for s in scenes]  # one forward pass per tile, decoded for every candidate
    labels = [[lab for lab in s.labels if lab.label in card.classes] for s in scenes]
    best: tuple[float, ModelCard, list, Any, float] | None = None
    tried = []
    for i, candidate in enumerate(candidates):
        per_scene = [(each[i], lab) for each, lab in zip(found, labels, strict=True)]
        merged = merge_scores([score_detections(f, lab, tolerance_px=config.tolerance_px) for f, lab in per_scene])
        threshold, _ = merged.best_threshold()
        threshold = float(min(max(threshold, 0.05), 0.95))
        f1 = merged.at_threshold(threshold).f1
        tried.append([candidate.min_distance_px, candidate.box_suppression, round(f1, 4)])
        if best is None or f1 > best[0] + 1e-9:
            best = (f1, candidate, per_scene, merged, threshold)
    _, card, per_scene, merged, threshold = best
    metrics: dict[str, Any] = {
        "scenes": [s.id for s in scenes], "threshold": round(threshold, 4),
        "overall": merged.at_threshold(threshold).summary(),
        "average_precision": round(merged.average_precision, 4),
    }
    if len(tried) > 1:
        metrics["suppression_tried"] = tried  # [min_distance_px, box_suppression, F1] on the same scenes
    metrics["per_class"] = {name: _class_scores(per_scene, name, threshold, config).summary() for name in card.classes}
    return card, threshold, metrics


def _class_scores(per_scene: list, name: str, threshold: float, config: TrainConfig) -> Scores:
    parts = []
    for found, labels in per_scene:
        dets = [d for d in found if d.label == name and d.score >= threshold]
        parts.append(score_detections(dets, [lab for lab in labels if lab.label == name], tolerance_px=config.tolerance_px))
    return merge_scores(parts)
