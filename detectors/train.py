"""Training a point detector on labelled scenes, choosing its operating threshold, writing its bundle.

Three roles for whole scenes: training scenes (chips, normalisation statistics, hard negatives),
validation scenes (early stopping and the operating threshold: F1-best there) and test scenes, which
training never sees (``fieldtruth evaluate`` / cross-validation measure on them). The threshold is chosen
on the validation scenes (``val_dirs``) when given; else on the decisions of reviewed scans, cross-fitted
(:mod:`fieldtruth.detectors.finetune`); else, with several training scenes, cross-fitted over them
(:mod:`fieldtruth.detectors.threshold`: every scene is trained on by the final model); with a single scene
it is chosen on it and the card says so. Training is seeded (chip positions, augmentation, initial
weights), runs a fixed number of steps (never against a clock), honours ``TrainConfig.num_threads``, and
writes checkpoints that ``resume`` continues. The settings are
:class:`~fieldtruth.detectors.config.TrainConfig`.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from fieldtruth.detectors.bundle import LoadedBundle, load_bundle, save_bundle
from fieldtruth.detectors.card import ModelCard
from fieldtruth.detectors.checkpoint import CHECKPOINT_NAME
from fieldtruth.detectors.config import Checkpoints, TrainConfig
from fieldtruth.detectors.data import TrainingScene, band_statistics, load_training_scene
from fieldtruth.detectors.decisions import DecisionWindow, ReviewedRun, training_scenes
from fieldtruth.detectors.errors import TrainingError
from fieldtruth.detectors.finetune import (
    MIN_EACH,
    ScoredLead,
    choose_on_decisions,
    config_from_bundle,
    enough_for_crossfit,
    fold_of,
    score_leads,
    with_predicted_sizes,
)
from fieldtruth.detectors.fit import FitResult, Progress, fit, focal_loss, one_cycle_lr
from fieldtruth.detectors.guard import check, check_on_scenes, keep_start
from fieldtruth.detectors.metrics import CardMetrics
from fieldtruth.detectors.registry import build_model
from fieldtruth.detectors.scenesplit import check_roles
from fieldtruth.detectors.threshold import choose_operating_point, crossfit_operating_point

__all__ = ["Progress", "TrainConfig", "focal_loss", "one_cycle_lr", "train_detector"]

log = logging.getLogger(__name__)


def train_detector(
    scene_dirs: Sequence[Path], out: Path, config: TrainConfig, progress: Progress | None = None,
    *, val_dirs: Sequence[Path] | None = None, reviewed: Sequence[ReviewedRun] = (),
    init: LoadedBundle | None = None, device: torch.device | str = "cpu", adopt_anyway: bool = False,
) -> LoadedBundle:
    """Train a point detector on labelled scene folders and reviewed scans, and write its bundle.

    Args:
        scene_dirs: scene folders (bands and a label file); with more than one and no ``val_dirs``, the
            threshold is cross-fitted over them.
        out: the bundle file to write.
        config: training settings.
        progress: called after each step with (step, total steps, loss).
        val_dirs: validation scene folders (early stopping, operating threshold); never trained on.
        reviewed: decisions of reviewed scans (see :mod:`fieldtruth.detectors.decisions`); without
            validation scenes, the threshold is cross-fitted on them (see
            :mod:`fieldtruth.detectors.finetune`).
        init: a bundle to start from (its weights and the settings they need); its threshold is carried
            over when neither validation scenes nor enough decisions can choose one (with decisions, only
            with ``adopt_anyway``: else the guard keeps ``init`` whole).
        device: where the network trains (see :func:`fieldtruth.detectors.device.resolve_device`); the
            bundle is written from the CPU either way.
        adopt_anyway: with ``init`` and ``reviewed``, write the fine-tune even when the guard
            (:mod:`fieldtruth.detectors.guard`) finds it worse than ``init`` (out of fold on the
            decisions, or on the validation scenes), or the decisions are too few to check it; otherwise
            ``init``'s weights and threshold are written then, and the card's ``split["fine_tune"]``
            says why.

    Returns:
        The bundle as written and loaded back (verified).

    Raises:
        TrainingError: no scene, unreadable scenes, a scene both trained and validated on, or no labelled
            site of the classes to learn.
        LabelError: a label file cannot be read.
    """
    if not scene_dirs and not reviewed:
        raise TrainingError("train_detector needs at least one scene folder or reviewed scan")
    previous_threads = torch.get_num_threads()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    try:
        if init is not None:
            config = config_from_bundle(config, init)
        return _train(list(scene_dirs), list(val_dirs or []), Path(out), config, progress,
                      list(reviewed), init, torch.device(device), adopt_anyway)
    finally:
        torch.set_num_threads(previous_threads)


def _split(scene_dirs: list[Path], val_dirs: list[Path], config: TrainConfig) -> tuple[list, list]:
    overlap = {Path(p).resolve() for p in scene_dirs} & {Path(p).resolve() for p in val_dirs}
    if overlap:
        raise TrainingError(f"scene(s) {sorted(map(str, overlap))!r} are both training and validation "
                            "scenes; keep them apart")
    check_roles(scene_dirs, "training")
    check_roles(val_dirs, "validation")
    scenes = [load_training_scene(d, config.bands, config.scene_offset, config.point_size_m)
              for d in scene_dirs]
    vals = [load_training_scene(d, config.bands, config.scene_offset, config.point_size_m) for d in val_dirs]
    return scenes, vals


def _card(train_scenes: list[TrainingScene], config: TrainConfig) -> tuple[torch.nn.Module, ModelCard]:
    classes = config.classes or tuple(sorted({lab.label for s in train_scenes for lab in s.labels}))
    if not any(lab.label in classes for s in train_scenes for lab in s.labels):
        raise TrainingError(f"the training scenes {[s.id for s in train_scenes]!r} hold no labelled site of "
                            f"{classes!r}")
    norm = band_statistics(train_scenes)
    args = {**config.architecture_args, "in_channels": len(config.bands), "num_classes": len(classes)}
    if args.get("indices"):  # the network undoes the normalisation itself
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


def _fit_model(
    scenes: list[TrainingScene], val_scenes: list[TrainingScene], config: TrainConfig,
    progress: Progress | None, init: LoadedBundle | None, provenance: tuple[dict, ...],
    device: torch.device,
) -> tuple[torch.nn.Module, ModelCard, FitResult]:
    """Fit a model (the bundle's copy with ``init``, else a new one or an ensemble) and its card."""
    if init is not None:
        model = copy.deepcopy(init.model).to(device)
        card = dataclasses.replace(init.card, metrics=CardMetrics(), split={}, training_data=provenance)
        return model, card, fit(model, card, scenes, val_scenes, config, progress, freeze_norm=True)
    members = []
    for k in range(config.ensemble):
        member_config = config if config.ensemble == 1 else _member_config(config, k)
        model, card = _card(scenes, member_config)
        model.to(device)
        result = fit(model, card, scenes, val_scenes, member_config, progress)
        members.append(model)
    card = dataclasses.replace(card, training_data=provenance)
    if len(members) > 1:
        model, card = _ensemble(members, card)
        model.to(device)
    return model, card, result


def _train(
    scene_dirs: list[Path], val_dirs: list[Path], out: Path, config: TrainConfig, progress: Progress | None,
    reviewed: list[ReviewedRun], init: LoadedBundle | None, device: torch.device, adopt_anyway: bool,
) -> LoadedBundle:
    folders, val_scenes = _split(scene_dirs, val_dirs, config)
    windows = [w for run in reviewed for w in run.windows]
    if init is not None and windows:
        windows = with_predicted_sizes(init, windows)
        if not folders:
            log.warning("fine-tuning on decisions alone: on sen2ships that lowered F1 on the rest of each "
                        "port; give the bundle's own training scenes too (replay), see docs/detectors.md")
    provenance = tuple(s.provenance for s in folders) + tuple(run.provenance for run in reviewed)
    scored = None  # the decided leads' out-of-fold scores (two fold fits), before the final fit
    if windows and not val_scenes and enough_for_crossfit(windows):
        scored = _out_of_fold(folders, windows, config, init, provenance, device)
    verdict = None
    if init is not None and windows and not val_scenes:
        verdict = check(init, windows, scored, config, adopt_anyway=adopt_anyway)
        if not verdict.adopted:
            return keep_start(init, out, verdict, [run.provenance for run in reviewed])
    started = time.perf_counter()
    model, card, result = _fit_model(folders + training_scenes(windows), val_scenes, config, progress, init,
                                     provenance, device)
    seconds = time.perf_counter() - started
    card, point = _operating_point(model, card, folders, val_scenes, windows, scored, config, init,
                                   provenance, device)
    if val_scenes and init is not None and windows:
        verdict = check_on_scenes(init, point.metrics.overall, card.threshold, val_scenes, config,
                                  adopt_anyway=adopt_anyway)
        if not verdict.adopted:
            return keep_start(init, out, verdict, [run.provenance for run in reviewed])
    metrics = _with_fit(point, result, seconds)
    split = {
        "train": [s.id for s in folders] + [run.name for run in reviewed],
        "validation": [s.id for s in val_scenes], "test": [], "threshold_chosen_on": point.chosen,
    }
    if point.expected is not None:
        split["expected_on_new_scenes"] = point.expected
    if init is not None:
        split["started_from"] = {"sha256": init.sha256, "name": init.card.name,
                                 "threshold": init.card.threshold, "created": init.card.created}
    if verdict is not None:
        split["fine_tune"] = verdict.to_dict()
        log.info("%s", verdict.reason)
    card = dataclasses.replace(card, metrics=metrics, split=split)
    save_bundle(out, model, card)
    log.info("trained %s in %.0f s; threshold %.3f; %s", out, seconds, card.threshold, metrics.overall)
    return load_bundle(out)


class _OperatingPoint(NamedTuple):
    """How a trained model's threshold was chosen, and the figures measured then."""

    metrics: CardMetrics
    chosen: str
    held_out: bool
    note: str
    expected: dict | None = None


def _operating_point(
    model: torch.nn.Module, card: ModelCard, folders: list[TrainingScene], val_scenes: list[TrainingScene],
    windows: list[DecisionWindow], scored: list[ScoredLead] | None, config: TrainConfig,
    init: LoadedBundle | None, provenance: tuple[dict, ...], device: torch.device,
) -> tuple[ModelCard, _OperatingPoint]:
    """The threshold, on the best ground there is: validation scenes, else the decisions' out-of-fold
    scores, else the training scenes cross-fitted, else the bundle started from, else the training
    scenes themselves (said so)."""
    if val_scenes:
        card, metrics = choose_operating_point(model, card, val_scenes, config)
        return card, _OperatingPoint(metrics, "validation", True, _VALIDATION_NOTE)
    if scored is not None:
        card, metrics = _crossfit_threshold(card, scored, config, init)
        return card, _OperatingPoint(metrics, "decisions (two folds, cross-fitted)", True, metrics.note)
    if sum(any(lab.label in card.classes for lab in s.labels) for s in folders) > 1:
        one = dataclasses.replace(config, ensemble=1, checkpoints=Checkpoints())

        def fit_scenes(scenes: list[TrainingScene]) -> tuple[torch.nn.Module, ModelCard]:
            return _fit_model(scenes + training_scenes(windows), [], one, None, init, provenance, device)[:2]

        card, metrics, expected = crossfit_operating_point(card, folders, config, fit_scenes)
        chosen = f"training scenes, cross-fitted ({expected['folds']} folds)"
        return card, _OperatingPoint(metrics, chosen, True, metrics.note, expected)
    if init is not None:
        note = (f"threshold {init.card.threshold:.4f} carried over from the bundle started from (too few "
                f"decisions to choose one: at least {MIN_EACH} confirmed and {MIN_EACH} rejected, in both "
                "folds); no figure was measured on this model")
        return card, _OperatingPoint(CardMetrics(threshold=init.card.threshold),
                                     "carried over from the bundle started from", False, note)
    card, metrics = choose_operating_point(model, card, folders + training_scenes(windows), config)
    return card, _OperatingPoint(metrics, "training (no held-out scene was given)", False, _TRAINING_NOTE)


def _with_fit(point: _OperatingPoint, result: FitResult, seconds: float) -> CardMetrics:
    """The operating point's figures with the fit's own record (time, steps, loss, step kept)."""
    losses = result.state.losses
    return dataclasses.replace(
        point.metrics, train_seconds=round(seconds, 1), steps_run=len(losses),
        final_loss=round(float(np.mean(losses[-20:])), 4), measured_on_held_out=point.held_out,
        kept_step=result.state.best_step or len(losses), stopped_early=result.stopped_early,
        validations=tuple((int(step), float(ap)) for step, ap in result.state.validations), note=point.note,
    )


_VALIDATION_NOTE = ("figures measured on the validation scenes the threshold was chosen on; test figures "
                    "come from `fieldtruth evaluate` on other scenes")
_TRAINING_NOTE = "figures measured on the training scenes"


def _out_of_fold(
    folders: list[TrainingScene], windows: list[DecisionWindow], config: TrainConfig,
    init: LoadedBundle | None, provenance: tuple[dict, ...], device: torch.device,
) -> list[ScoredLead]:
    """Each decided lead scored by a model fitted without its fold of the checkerboard (two fits)."""
    scored = []
    for fold in (0, 1):
        held = frozenset(w.cell for w in windows if fold_of(w.cell) == fold)
        fold_model, fold_card, _ = _fit_model(folders + training_scenes(windows, held), [], config, None,
                                              init, provenance, device)
        scored += [dataclasses.replace(lead, fold=fold) for lead in
                   score_leads(fold_model, fold_card, [w for w in windows if w.cell in held], config)]
    return scored


def _crossfit_threshold(
    card: ModelCard, scored: list[ScoredLead], config: TrainConfig, init: LoadedBundle | None,
) -> tuple[ModelCard, CardMetrics]:
    """The threshold F1-best over the decided leads' out-of-fold scores (see :func:`_out_of_fold`)."""
    floor = init.card.threshold if init is not None else 0.05
    threshold, figures = choose_on_decisions(scored, floor)
    metrics = CardMetrics(
        scenes=(), threshold=round(threshold, 4), overall=figures, average_precision=figures.ap,
        tolerance_px=config.validation.tolerance_px,
        note=(f"threshold and figures from {len(scored)} decided leads, cross-fitted in two folds (each lead "
              "scored by a model that did not learn from its decision); precision and recall are among the "
              "decided leads only: sites no lead pointed to are not counted"
              + (f"; never below the threshold started from ({floor:.4f})" if init is not None else "")),
    )
    return dataclasses.replace(card, threshold=round(threshold, 4)), metrics
