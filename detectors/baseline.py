"""Non-learned baselines as bundles: the cards of the filter networks, and choosing their thresholds.

The filters (:mod:`fieldtruth.detectors.filters`) have no weights to train; fitting a baseline only
chooses its operating threshold (F1-best on the scenes it is given, never the test scenes) and writes an
ordinary bundle, so scans, ``detect_array`` and evaluation treat a baseline exactly like a trained
detector. Every trained detector is reported against one: ``baseline-ring`` for the synthetic kilns and
camps, ``baseline-vessel`` (NDWI water share + local contrast) for vessels.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from fieldtruth.detectors.bundle import LoadedBundle, load_bundle, save_bundle
from fieldtruth.detectors.card import ModelCard
from fieldtruth.detectors.data import load_training_scene
from fieldtruth.detectors.evaluate import merge_scores, score_detections
from fieldtruth.detectors.filters import RingBaseline, VesselBaseline
from fieldtruth.detectors.metrics import CardMetrics, Figures
from fieldtruth.detectors.predict import detect_scene

log = logging.getLogger(__name__)

BANDS = ("blue", "green", "red", "nir")
CLASSES = ("brick_kiln", "fishing_camp")


def baseline_card(threshold: float = 0.5) -> ModelCard:
    """Model card of the ring baseline (raw reflectance in, no normalisation)."""
    return ModelCard(
        architecture="baseline-ring", architecture_args={"in_channels": 4, "num_classes": 2}, bands=BANDS,
        gsd_m=10.0, norm_mean=(0.0,) * 4, norm_std=(1.0,) * 4, classes=CLASSES, threshold=threshold,
        min_distance_px=8, receptive_field_px=RingBaseline.receptive_field_px,
        name="fieldtruth-baseline-ring", licence="CC0-1.0",
        limits="Hand-made filters tuned by eye on synthetic scenes; a yardstick, not a detector to rely on.",
    )


def vessel_baseline_card(threshold: float = 0.5) -> ModelCard:
    """Model card of the vessel baseline (raw reflectance in, no normalisation)."""
    return ModelCard(
        architecture="baseline-vessel", architecture_args={"in_channels": 4, "num_classes": 1}, bands=BANDS,
        gsd_m=10.0, norm_mean=(0.0,) * 4, norm_std=(1.0,) * 4, classes=("vessel",), threshold=threshold,
        min_distance_px=6, receptive_field_px=29, name="fieldtruth-baseline-vessel", licence="CC0-1.0",
        limits="Hand-made NDWI and contrast filters; a yardstick for learned vessel detectors, not a "
               "detector to rely on.",
    )


def fit_baseline(scene_dirs: Sequence[Path], out: Path, *, tolerance_px: float = 1.0) -> LoadedBundle:
    """Choose the ring baseline's F1-best threshold on labelled scenes and write it as a bundle.

    Args:
        scene_dirs: labelled scene folders the threshold is chosen on.
        out: the bundle file to write.
        tolerance_px: match tolerance in pixels.
    """
    chosen_on = "these scenes (the filters are not learned)"
    return _fit_threshold(RingBaseline(), baseline_card(), scene_dirs, out, tolerance_px=tolerance_px,
                          floor=0.05, limits=(0.0, 1.0), chosen_on=chosen_on)


def fit_vessel_baseline(
    scene_dirs: Sequence[Path], out: Path, *, tolerance_px: float = 1.0, gsd_m: float = 10.0
) -> LoadedBundle:
    """Choose the vessel baseline's F1-best threshold on labelled scenes and write it as a bundle.

    Args:
        scene_dirs: labelled scene folders the threshold is chosen on (never the test scenes).
        out: the bundle file to write.
        tolerance_px: match tolerance in pixels.
        gsd_m: ground sampling distance written to the card.
    """
    card = dataclasses.replace(vessel_baseline_card(), gsd_m=gsd_m)
    return _fit_threshold(VesselBaseline(), card, scene_dirs, out, tolerance_px=tolerance_px, floor=0.02,
                          limits=(0.02, 0.99), chosen_on="validation (the filters are not learned)")


def _fit_threshold(
    model: nn.Module, card: ModelCard, scene_dirs: Sequence[Path], out: Path, *, tolerance_px: float,
    floor: float, limits: tuple[float, float], chosen_on: str,
) -> LoadedBundle:
    """Detect down to ``floor`` on the scenes, take the F1-best threshold (kept within ``limits``), write
    the bundle with the figures there, and load it back."""
    bundle = LoadedBundle(model=model.eval(), card=card, sha256="", path=Path())
    parts, ids = [], []
    for path in scene_dirs:
        scene = load_training_scene(Path(path), card.bands)
        found = detect_scene(bundle, scene.data, scene.valid, threshold=floor)
        labels = [lab for lab in scene.labels if lab.label in card.classes]
        parts.append(score_detections(found, labels, tolerance_px=tolerance_px))
        ids.append(scene.id)
    merged = merge_scores(parts)
    threshold = float(min(max(merged.best_threshold()[0], limits[0]), limits[1]))
    metrics = CardMetrics(scenes=tuple(ids), threshold=round(threshold, 4), tolerance_px=tolerance_px,
                          overall=Figures.of(merged.at_threshold(threshold)), measured_on_held_out=False)
    split = {"train": [], "validation": ids, "test": [], "threshold_chosen_on": chosen_on}
    save_bundle(out, model, dataclasses.replace(card, threshold=threshold, metrics=metrics, split=split))
    return load_bundle(out)
