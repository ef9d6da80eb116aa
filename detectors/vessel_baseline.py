"""A non-learned vessel baseline: NDWI water mask plus a local-contrast threshold, run like any bundle.

Vessels at 10 m are small objects brighter (in the near infrared and the visible) than the open water
around them. The filter: a water mask from NDWI ``(green - nir) / (green + nir) > water_ndwi``; the
share of water in a disc around each pixel (vessels sit in water, quays and beaches do not); the local
contrast of the pixel's brightness against a ring of background (median-free: ring mean and standard
deviation). Score logit = contrast z-score, gated by the surrounding water share. Registered as
architecture ``"baseline-vessel"``; :func:`fit_vessel_baseline` only chooses the operating threshold
(F1 on the scenes it is given, never the test scenes) and writes an ordinary bundle.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fieldtruth.detectors.baseline import _disc, _mean
from fieldtruth.detectors.bundle import LoadedBundle, load_bundle, save_bundle
from fieldtruth.detectors.card import ModelCard
from fieldtruth.detectors.data import load_training_scene
from fieldtruth.detectors.evaluate import merge_scores, score_detections
from fieldtruth.detectors.model import ARCHITECTURES, Heads
from fieldtruth.detectors.predict import detect_scene

log = logging.getLogger(__name__)

BANDS = ("blue", "green", "red", "nir")


class VesselBaseline(nn.Module):
    """Fixed NDWI + local contrast filters on raw (blue, green, red, nir) reflectance -> vessel logits.

    Args:
        in_channels: must be 4. num_classes: must be 1.
        water_ndwi: NDWI above which a pixel is water.
        ring_in: inner radius of the background ring (pixels). ring_out: its outer radius.
        min_water: least share of water within ``ring_out`` for a pixel to score.
    """

    output_stride = 1

    def __init__(
        self, in_channels: int = 4, num_classes: int = 1, water_ndwi: float = 0.0, ring_in: float = 6.0,
        ring_out: float = 14.0, min_water: float = 0.5,
    ) -> None:
        """Build the filters (see the class docstring)."""
        super().__init__()
        if in_channels != 4 or num_classes != 1:
            raise ValueError(f"the vessel baseline reads 4 bands and scores 1 class, got {in_channels!r}, {num_classes!r}")
        self.in_channels, self.num_classes = in_channels, num_classes
        self.water_ndwi, self.min_water = water_ndwi, min_water
        self.receptive_field_px = int(2 * ring_out + 1)
        self.register_buffer("centre", _disc(0.0, 1.0), persistent=False)
        self.register_buffer("ring", _disc(ring_in, ring_out), persistent=False)
        self.register_buffer("area", _disc(0.0, ring_out), persistent=False)

    def forward(self, x: torch.Tensor) -> Heads:
        """Return vessel logits ``(N, 1, H, W)`` for raw reflectance ``(N, 4, H, W)``."""
        blue, green, red, nir = x.clamp(min=1.0).unbind(dim=1)
        bright = ((blue + green + red + nir) / 4)[:, None]
        water = ((green - nir) / (green + nir) > self.water_ndwi).float()[:, None]
        water_share = _mean(water, self.area)
        background = _mean(bright, self.ring)
        spread = (_mean(bright**2, self.ring) - background**2).clamp(min=1.0).sqrt()
        contrast = (_mean(bright, self.centre) - background) / (spread + 30.0)
        gate = (water_share - self.min_water).clamp(min=0) / (1 - self.min_water)
        logit = (contrast / 4.0 - 2.0) * gate - 8.0 * (1 - gate)
        return Heads(F.avg_pool2d(logit, 1), None)


ARCHITECTURES["baseline-vessel"] = VesselBaseline


def vessel_baseline_card(threshold: float = 0.5) -> ModelCard:
    """Model card of the vessel baseline (raw reflectance in, no normalisation)."""
    return ModelCard(
        architecture="baseline-vessel", architecture_args={"in_channels": 4, "num_classes": 1}, bands=BANDS,
        gsd_m=10.0, norm_mean=(0.0,) * 4, norm_std=(1.0,) * 4, classes=("vessel",), threshold=threshold,
        min_distance_px=6, receptive_field_px=29, name="fieldtruth-baseline-vessel", licence="CC0-1.0",
        limits="Hand-made NDWI and contrast filters; a yardstick for learned vessel detectors, not a detector to rely on.",
    )


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
    bundle = LoadedBundle(model=VesselBaseline().eval(), card=card, sha256="", path=Path())
    parts, ids = [], []
    for path in scene_dirs:
        scene = load_training_scene(Path(path), BANDS)
        found = detect_scene(bundle, scene.data, scene.valid, threshold=0.02)
        parts.append(score_detections(found, [lab for lab in scene.labels if lab.label == "vessel"], tolerance_px=tolerance_px))
        ids.append(scene.id)
    threshold, best = merge_scores(parts).best_threshold()
    threshold = float(min(max(threshold, 0.02), 0.99))
    metrics = {"scenes": ids, "threshold": round(threshold, 4), "overall": best.summary(), "measured_on_held_out": False}
    split = {"train": [], "validation": ids, "test": [], "threshold_chosen_on": "validation (the filters are not learned)"}
    card = dataclasses.replace(card, threshold=threshold, metrics=metrics, split=split)
    save_bundle(out, bundle.model, card)
    return load_bundle(out)
