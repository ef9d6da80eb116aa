"""Choosing a detector's operating point on whole scenes, and cross-fitting it when no scene is held out.

:func:`choose_operating_point` detects over whole scenes and picks the F1-best threshold (and, when the
config offers choices, the F1-best peak suppression) there: on validation scenes when there are some.

Without validation scenes and with several training scenes, the threshold is **cross-fitted**
(:func:`crossfit_operating_point`): the scenes are split into :data:`CROSSFIT_FOLDS` folds (scene ``i``
in fold ``i % folds``), a single model with the same settings (one member, the same steps) is fitted on
the scenes of the other folds, and it detects on its fold's scenes, which it never saw. The threshold and
suppression are the F1-best over those out-of-fold detections, pooled; the F1 there, with a bootstrap
interval over the scenes, is the F1 to expect on a new region, and the card says so. The final model is
trained on every scene. Choosing on whichever scene was named last (what ``fieldtruth train`` did before)
let one scene pick a threshold far from the best for new ports (issue 18). It costs ``folds`` more fits of
one member: for the vessels preset (an ensemble of 4), 75 % more training time; for a single model,
three times more.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from fieldtruth.detectors.bundle import LoadedBundle
from fieldtruth.detectors.card import ModelCard
from fieldtruth.detectors.config import TrainConfig
from fieldtruth.detectors.data import TrainingScene
from fieldtruth.detectors.evaluate import Scores, merge_scores, score_detections
from fieldtruth.detectors.fit import VALIDATION_HALO
from fieldtruth.detectors.metrics import CardMetrics, Figures
from fieldtruth.detectors.predict import PixelDetection, detect_scene_each

log = logging.getLogger(__name__)

#: Folds of the training scenes when the threshold is cross-fitted (fewer when there are fewer scenes).
CROSSFIT_FOLDS = 3
#: Bootstrap resamples of the scenes for the interval of the expected F1.
BOOTSTRAP = 1000

#: Fits one model on some scenes: (model, card).
FitScenes = Callable[[list[TrainingScene]], tuple[torch.nn.Module, ModelCard]]
#: Per scene, per candidate card, the detections (score >= 0.05).
Found = list[list[list[PixelDetection]]]


def _candidates(card: ModelCard, config: TrainConfig) -> list[ModelCard]:
    validation = config.validation
    distances = tuple(validation.min_distance_choices) or (card.min_distance_px,)
    fractions = tuple(validation.box_suppression_choices) or (card.box_suppression,)
    return [dataclasses.replace(card, min_distance_px=int(d), box_suppression=float(f))
            for d in distances for f in fractions]


def _detect(model: torch.nn.Module, card: ModelCard, scenes: Sequence[TrainingScene],
            config: TrainConfig) -> Found:
    """One forward pass per tile, decoded for every candidate suppression."""
    bundle = LoadedBundle(model=model, card=card, sha256="", path=Path())
    candidates = _candidates(card, config)
    return [detect_scene_each(bundle, candidates, s.data, s.valid, tile=config.validation.tile,
                              halo=VALIDATION_HALO, threshold=0.05) for s in scenes]


def choose_operating_point(
    model: torch.nn.Module, card: ModelCard, scenes: list[TrainingScene], config: TrainConfig
) -> tuple[ModelCard, CardMetrics]:
    """Detect over whole scenes, pick the F1-best threshold (and suppression: minimum distance, box
    fraction, when the config offers choices), and measure there (overall and per class).

    Returns:
        The card with the chosen threshold and suppression settings, and the figures.
    """
    return _choose(card, _detect(model, card, scenes, config), scenes, config)


def measure_card(
    model: torch.nn.Module, card: ModelCard, scenes: list[TrainingScene], config: TrainConfig
) -> Figures:
    """The figures of a model at its card's own operating point (threshold and suppression) over whole
    scenes, as :func:`choose_operating_point` measures them at the threshold it chooses."""
    bundle = LoadedBundle(model=model, card=card, sha256="", path=Path())
    parts = []
    for scene in scenes:
        [found] = detect_scene_each(bundle, [card], scene.data, scene.valid, tile=config.validation.tile,
                                    halo=VALIDATION_HALO, threshold=0.05)
        labels = [lab for lab in scene.labels if lab.label in card.classes]
        parts.append(score_detections(found, labels, tolerance_px=config.validation.tolerance_px))
    return Figures.of(merge_scores(parts).at_threshold(card.threshold))


def _choose(
    card: ModelCard, found: Found, scenes: list[TrainingScene], config: TrainConfig
) -> tuple[ModelCard, CardMetrics]:
    tolerance = config.validation.tolerance_px
    candidates = _candidates(card, config)
    labels = [[lab for lab in s.labels if lab.label in card.classes] for s in scenes]
    best: tuple[float, ModelCard, list, Scores, float] | None = None
    tried = []
    for i, candidate in enumerate(candidates):
        per_scene = [(each[i], lab) for each, lab in zip(found, labels, strict=True)]
        merged = merge_scores([score_detections(f, lab, tolerance_px=tolerance) for f, lab in per_scene])
        threshold, _ = merged.best_threshold()
        threshold = float(min(max(threshold, 0.05), 0.95))
        f1 = merged.at_threshold(threshold).f1
        tried.append((candidate.min_distance_px, candidate.box_suppression, round(f1, 4)))
        if best is None or f1 > best[0] + 1e-9:
            best = (f1, candidate, per_scene, merged, threshold)
    _, chosen, per_scene, merged, threshold = best
    metrics = CardMetrics(
        scenes=tuple(s.id for s in scenes), threshold=round(threshold, 4), tolerance_px=tolerance,
        overall=Figures.of(merged.at_threshold(threshold)),
        average_precision=round(merged.average_precision, 4),
        suppression_tried=tuple(tried) if len(tried) > 1 else (),  # the same scenes, every combination
        per_class={name: Figures.of(_class_scores(per_scene, name, threshold, tolerance))
                   for name in card.classes},
    )
    card = dataclasses.replace(card, threshold=threshold, min_distance_px=chosen.min_distance_px,
                               box_suppression=chosen.box_suppression)
    return card, metrics


def _class_scores(per_scene: list, name: str, threshold: float, tolerance_px: float) -> Scores:
    parts = []
    for found, labels in per_scene:
        dets = [d for d in found if d.label == name and d.score >= threshold]
        of_class = [lab for lab in labels if lab.label == name]
        parts.append(score_detections(dets, of_class, tolerance_px=tolerance_px))
    return merge_scores(parts)


def crossfit_operating_point(
    card: ModelCard, scenes: list[TrainingScene], config: TrainConfig, fit_scenes: FitScenes
) -> tuple[ModelCard, CardMetrics, dict]:
    """The final model's card with the operating point chosen on out-of-fold detections (see the module
    docstring), the figures there, and the F1 to expect on a new region with its interval.

    Args:
        card: the final model's card (its classes and suppression settings).
        scenes: the training scenes (at least two).
        config: training settings (validation group: tile, tolerance, suppression choices).
        fit_scenes: fits one model on some scenes (the caller's settings, one member).
    """
    fold_of = crossfit_folds(scenes, card.classes)
    folds = max(fold_of) + 1
    found: Found = [[] for _ in scenes]
    for fold in range(folds):
        held = [i for i in range(len(scenes)) if fold_of[i] == fold]
        model, fold_card = fit_scenes([s for i, s in enumerate(scenes) if i not in held])
        fold_card = dataclasses.replace(fold_card, min_distance_px=card.min_distance_px,
                                        box_suppression=card.box_suppression)
        for i, each in zip(held, _detect(model, fold_card, [scenes[i] for i in held], config), strict=True):
            found[i] = each
        log.info("cross-fitting fold %d/%d done", fold + 1, folds)
    card, metrics = _choose(card, found, scenes, config)
    low, high = _interval(card, found, scenes, config)
    expected = {"f1": metrics.overall.f1 if metrics.overall else None, "ci95": [low, high], "folds": folds,
                "how": f"out-of-fold detections of {folds} single-model fits (same settings and steps), each "
                       "on scenes it never saw; interval: bootstrap over scenes"}
    metrics = dataclasses.replace(metrics, note=(
        f"threshold and figures cross-fitted over the {len(scenes)} training scenes in {folds} folds: every "
        f"scene scored by a model that did not train on it; F1 to expect on a new region {expected['f1']} "
        f"(95 % interval over scenes {low}-{high})"))
    return card, metrics, expected


def crossfit_folds(scenes: list[TrainingScene], classes: tuple[str, ...]) -> list[int]:
    """The cross-fitting fold of each scene: scenes with sites of ``classes`` dealt round first, then the
    background scenes (none), so every fold trains on sites; at most :data:`CROSSFIT_FOLDS` folds, and no
    more than the scenes with sites (the caller makes sure there are two)."""
    with_sites = [i for i, s in enumerate(scenes) if any(lab.label in classes for lab in s.labels)]
    order = with_sites + [i for i in range(len(scenes)) if i not in with_sites]
    folds = max(1, min(CROSSFIT_FOLDS, len(with_sites)))
    fold_of = [0] * len(scenes)
    for position, i in enumerate(order):
        fold_of[i] = position % folds
    return fold_of


def _interval(card: ModelCard, found: Found, scenes: list[TrainingScene], config: TrainConfig
              ) -> tuple[float, float]:
    """Bootstrap (scenes resampled) 95 % interval of the pooled F1 at the chosen operating point."""
    index = next(i for i, c in enumerate(_candidates(card, config))
                 if c.min_distance_px == card.min_distance_px and c.box_suppression == card.box_suppression)
    parts = []
    for each, scene in zip(found, scenes, strict=True):
        labels = [lab for lab in scene.labels if lab.label in card.classes]
        kept = [d for d in each[index] if d.score >= card.threshold]
        parts.append(score_detections(kept, labels, tolerance_px=config.validation.tolerance_px))
    rng = np.random.default_rng(0)
    values = [merge_scores([parts[i] for i in rng.integers(len(parts), size=len(parts))]).f1
              for _ in range(BOOTSTRAP)]
    return round(float(np.percentile(values, 2.5)), 4), round(float(np.percentile(values, 97.5)), 4)
