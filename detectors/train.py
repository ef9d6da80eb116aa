"""Training a point detector on labelled scenes, choosing its operating threshold, writing its bundle.

Three roles for whole scenes: training scenes (chips, normalisation statistics, hard negatives),
validation scenes (early stopping and the operating threshold: F1-best there) and test scenes, which
training never sees (``fieldtruth evaluate`` / cross-validation measure on them). Validation scenes are
``val_dirs`` when given, else the last scene named when more than one is given; with a single scene the
threshold is chosen on it and the card says so. Training is seeded (chip positions, augmentation, initial
weights), runs a fixed number of steps (never against a clock), honours ``TrainConfig.num_threads``, and
writes checkpoints that ``resume`` continues. The settings are
:class:`~fieldtruth.detectors.config.TrainConfig`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from fieldtruth.detectors.bundle import LoadedBundle, load_bundle, save_bundle
from fieldtruth.detectors.card import ModelCard
from fieldtruth.detectors.checkpoint import CHECKPOINT_NAME
from fieldtruth.detectors.config import TrainConfig
from fieldtruth.detectors.data import TrainingScene, band_statistics, load_training_scene
from fieldtruth.detectors.errors import TrainingError
from fieldtruth.detectors.evaluate import Scores, merge_scores, score_detections
from fieldtruth.detectors.fit import VALIDATION_HALO, Progress, fit, focal_loss, one_cycle_lr
from fieldtruth.detectors.metrics import CardMetrics, Figures
from fieldtruth.detectors.predict import detect_scene_each
from fieldtruth.detectors.registry import build_model

__all__ = ["Progress", "TrainConfig", "focal_loss", "one_cycle_lr", "train_detector"]

log = logging.getLogger(__name__)


def train_detector(
    scene_dirs: Sequence[Path], out: Path, config: TrainConfig, progress: Progress | None = None,
    *, val_dirs: Sequence[Path] | None = None, device: torch.device | str = "cpu",
) -> LoadedBundle:
    """Train a point detector on labelled scene folders and write its bundle.

    Args:
        scene_dirs: scene folders (bands and a label file); with more than one and no ``val_dirs``, the last
            is held out for validation.
        out: the bundle file to write.
        config: training settings.
        progress: called after each step with (step, total steps, loss).
        val_dirs: validation scene folders (early stopping, operating threshold); never trained on.
        device: where the network trains (see :func:`fieldtruth.detectors.device.resolve_device`); the
            bundle is written from the CPU either way.

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
        return _train(list(scene_dirs), list(val_dirs or []), Path(out), config, progress,
                      torch.device(device))
    finally:
        torch.set_num_threads(previous_threads)


def _split(scene_dirs: list[Path], val_dirs: list[Path], config: TrainConfig) -> tuple[list, list]:
    overlap = {Path(p).resolve() for p in scene_dirs} & {Path(p).resolve() for p in val_dirs}
    if overlap:
        raise TrainingError(f"scene(s) {sorted(map(str, overlap))!r} are both training and validation "
                            "scenes; keep them apart")
    scenes = [load_training_scene(d, config.bands, config.scene_offset) for d in scene_dirs]
    vals = [load_training_scene(d, config.bands, config.scene_offset) for d in val_dirs]
    if not vals and len(scenes) > 1:
        scenes, vals = scenes[:-1], scenes[-1:]
    return scenes, vals


def _card(train_scenes: list[TrainingScene], config: TrainConfig) -> tuple[torch.nn.Module, ModelCard]:
    classes = config.classes or tuple(sorted({lab.label for s in train_scenes for lab in s.labels}))
    if not any(lab.label in classes for s in train_scenes for lab in s.labels):
        raise TrainingError(f"the training scenes {[s.id for s in train_scenes]!r} hold no labelled site of "
                            f"{classes!r}")
    norm = band_statistics(train_scenes)
    args = {**config.architecture_args, "in_channels": len(config.bands), "num_classes": len(classes)}
    if args.get("indices") or args.get("log_input"):  # the network undoes the normalisation itself
        args.update(norm_mean=list(norm[0]), norm_std=list(norm[1]))
    torch.manual_seed(config.seed)
    model = build_model(config.architecture, args)
    gsd = config.gsd_m if config.gsd_m is not None else float(np.mean([s.ground_gsd_m for s in train_scenes]))
    card = ModelCard(
        architecture=config.architecture, architecture_args=args, bands=tuple(config.bands),
        gsd_m=round(gsd, 2), norm_mean=norm[0], norm_std=norm[1], classes=tuple(classes),
        min_distance_px=config.validation.min_distance_px,
        receptive_field_px=int(getattr(model, "receptive_field_px", 0)), licence=config.licence,
        scene_offset=dict(config.scene_offset), training_data=tuple(s.provenance for s in train_scenes),
    )
    return model, card


def _member_config(config: TrainConfig, k: int) -> TrainConfig:
    """Settings of ensemble member ``k``: its own seed and checkpoint folder (resumed only where one
    exists)."""
    saving = config.checkpoints
    folder = Path(saving.folder) / f"member{k}" if saving.folder else None
    resume = saving.resume and folder is not None and (folder / CHECKPOINT_NAME).is_file()
    checkpoints = dataclasses.replace(saving, folder=str(folder) if folder else None, resume=resume)
    return dataclasses.replace(config, seed=config.seed + k, checkpoints=checkpoints)


def _ensemble(members: list[torch.nn.Module], card: ModelCard) -> tuple[torch.nn.Module, ModelCard]:
    """The trained members as one ensemble network, and the card that rebuilds it."""
    member = {"architecture": card.architecture, "args": dict(card.architecture_args)}
    args = {"in_channels": card.architecture_args["in_channels"],
            "num_classes": card.architecture_args["num_classes"], "members": [member for _ in members]}
    ensemble = build_model("ensemble", args)
    for target, source in zip(ensemble.members, members, strict=True):
        target.load_state_dict(source.state_dict())
    return ensemble.eval(), dataclasses.replace(card, architecture="ensemble", architecture_args=args,
                                                name="fieldtruth-ensemble")


def _train(
    scene_dirs: list[Path], val_dirs: list[Path], out: Path, config: TrainConfig, progress: Progress | None,
    device: torch.device,
) -> LoadedBundle:
    train_scenes, val_scenes = _split(scene_dirs, val_dirs, config)
    started = time.perf_counter()
    members = []
    for k in range(config.ensemble):
        member_config = config if config.ensemble == 1 else _member_config(config, k)
        model, card = _card(train_scenes, member_config)
        model.to(device)
        result = fit(model, card, train_scenes, val_scenes, member_config, progress)
        members.append(model)
    if len(members) > 1:
        model, card = _ensemble(members, card)
        model.to(device)
    seconds = time.perf_counter() - started
    held_out = bool(val_scenes)
    card, metrics = _choose_threshold(model, card, val_scenes or train_scenes, config)
    losses = result.state.losses
    metrics = dataclasses.replace(
        metrics, train_seconds=round(seconds, 1), steps_run=len(losses),
        final_loss=round(float(np.mean(losses[-20:])), 4), measured_on_held_out=held_out,
        kept_step=result.state.best_step or len(losses), stopped_early=result.stopped_early,
        validations=tuple((int(step), float(ap)) for step, ap in result.state.validations),
        note=("figures measured on the validation scenes the threshold was chosen on; test figures come "
              "from `fieldtruth evaluate` on other scenes") if held_out
        else "figures measured on the training scenes",
    )
    split = {
        "train": [s.id for s in train_scenes], "validation": [s.id for s in val_scenes], "test": [],
        "threshold_chosen_on": "validation" if held_out else "training (no held-out scene was given)",
    }
    card = dataclasses.replace(card, metrics=metrics, split=split)
    save_bundle(out, model, card)
    log.info("trained %s in %.0f s; threshold %.3f; %s", out, seconds, card.threshold, metrics.overall)
    return load_bundle(out)


def _choose_threshold(
    model: torch.nn.Module, card: ModelCard, scenes: list[TrainingScene], config: TrainConfig
) -> tuple[ModelCard, CardMetrics]:
    """Detect over whole scenes, pick the F1-best threshold (and, when the config offers choices, the
    F1-best peak suppression: minimum distance, box fraction), and measure there (overall and per class).

    Returns:
        The card with the chosen threshold and suppression settings, and the figures.
    """
    validation = config.validation
    distances = tuple(validation.min_distance_choices) or (card.min_distance_px,)
    fractions = tuple(validation.box_suppression_choices) or (card.box_suppression,)
    candidates = [dataclasses.replace(card, min_distance_px=int(d), box_suppression=float(f))
                  for d in distances for f in fractions]
    bundle = LoadedBundle(model=model, card=card, sha256="", path=Path())
    found = [detect_scene_each(bundle, candidates, s.data, s.valid, tile=validation.tile,
                               halo=VALIDATION_HALO, threshold=0.05)
             for s in scenes]  # one forward pass per tile, decoded for every candidate
    labels = [[lab for lab in s.labels if lab.label in card.classes] for s in scenes]
    best: tuple[float, ModelCard, list, Scores, float] | None = None
    tried = []
    for i, candidate in enumerate(candidates):
        per_scene = [(each[i], lab) for each, lab in zip(found, labels, strict=True)]
        merged = merge_scores([score_detections(f, lab, tolerance_px=validation.tolerance_px)
                               for f, lab in per_scene])
        threshold, _ = merged.best_threshold()
        threshold = float(min(max(threshold, 0.05), 0.95))
        f1 = merged.at_threshold(threshold).f1
        tried.append((candidate.min_distance_px, candidate.box_suppression, round(f1, 4)))
        if best is None or f1 > best[0] + 1e-9:
            best = (f1, candidate, per_scene, merged, threshold)
    _, card, per_scene, merged, threshold = best
    metrics = CardMetrics(
        scenes=tuple(s.id for s in scenes), threshold=round(threshold, 4),
        tolerance_px=validation.tolerance_px, overall=Figures.of(merged.at_threshold(threshold)),
        average_precision=round(merged.average_precision, 4),
        suppression_tried=tuple(tried) if len(tried) > 1 else (),  # the same scenes, every combination
        per_class={name: Figures.of(_class_scores(per_scene, name, threshold, validation.tolerance_px))
                   for name in card.classes},
    )
    return dataclasses.replace(card, threshold=threshold), metrics


def _class_scores(per_scene: list, name: str, threshold: float, tolerance_px: float) -> Scores:
    parts = []
    for found, labels in per_scene:
        dets = [d for d in found if d.label == name and d.score >= threshold]
        of_class = [lab for lab in labels if lab.label == name]
        parts.append(score_detections(dets, of_class, tolerance_px=tolerance_px))
    return merge_scores(parts)
