"""A non-learned baseline detector: hand-made ring and contrast filters, run like any other bundle.

Brick kilns: a reddish annulus (red / green ratio) around a dark centre. Fishing camps: small bright
objects (very bright pixels) clustered within a few pixels of open water (NDWI). The
filters are fixed torch operations in an ``nn.Module`` without weights, registered as architecture
``"baseline-ring"``; :func:`fit_baseline` only chooses the operating threshold (F1 on the given
scenes) and writes an ordinary bundle, so scans, ``detect_array`` and evaluation treat the baseline
exactly like a trained detector. It is the yardstick every trained detector is reported against.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fieldtruth.detectors.bundle import LoadedBundle, load_bundle, save_bundle
from fieldtruth.detectors.card import ModelCard
from fieldtruth.detectors.data import load_training_scene
from fieldtruth.detectors.evaluate import merge_scores, score_detections
from fieldtruth.detectors.model import ARCHITECTURES, Heads
from fieldtruth.detectors.predict import detect_scene

log = logging.getLogger(__name__)

BANDS = ("blue", "green", "red", "nir")
CLASSES = ("brick_kiln", "fishing_camp")


def _disc(radius_in: float, radius_out: float) -> torch.Tensor:
    """Normalised annulus (or disc when ``radius_in`` is 0) kernel ``(1, 1, k, k)``."""
    half = int(radius_out + 0.5)
    r = torch.arange(-half, half + 1, dtype=torch.float32)
    dist = torch.sqrt(r[:, None] ** 2 + r[None, :] ** 2)
    kernel = ((dist >= radius_in) & (dist <= radius_out)).float()
    return (kernel / kernel.sum())[None, None]


def _mean(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    return F.conv2d(F.pad(x, [kernel.shape[-1] // 2] * 4, mode="replicate"), kernel)


class RingBaseline(nn.Module):
    """Fixed filters turning raw (blue, green, red, nir) reflectance into kiln and camp score logits.

    Args:
        in_channels: must be 4 (blue, green, red, nir).
        num_classes: must be 2 (brick_kiln, fishing_camp).
    """

    output_stride = 1
    receptive_field_px = 15

    def __init__(self, in_channels: int = 4, num_classes: int = 2) -> None:
        """Build the filters (see the class docstring)."""
        super().__init__()
        if in_channels != 4 or num_classes != 2:
            raise ValueError(f"the ring baseline reads 4 bands and scores 2 classes, got {in_channels!r}, {num_classes!r}")
        self.in_channels, self.num_classes = in_channels, num_classes
        self.register_buffer("centre", _disc(0.0, 1.5), persistent=False)
        self.register_buffer("ring", _disc(2.0, 6.5), persistent=False)
        self.register_buffer("cluster", _disc(0.0, 3.0), persistent=False)

    def forward(self, x: torch.Tensor) -> Heads:
        """Return kiln and camp logits ``(N, 2, H, W)`` for raw reflectance ``(N, 4, H, W)``."""
        blue, green, red, nir = x.clamp(min=1.0).unbind(dim=1)
        bright = ((blue + green + red) / 3)[:, None]
        redness = (red / green)[:, None]
        ring_red = _mean(redness, self.ring)
        darkness = (1 - _mean(bright, self.centre) / _mean(bright, self.ring)).clamp(min=0)
        kiln = (ring_red - 1.3).clamp(min=0) * darkness
        huts = (bright > 1900).float()
        water = ((green - nir) / (green + nir) > 0.2).float()[:, None]
        near_water = F.max_pool2d(water, 15, stride=1, padding=7)
        camp = _mean(huts, self.cluster) * near_water * (1 - water)
        return Heads(torch.cat([50 * (kiln - 0.08), 30 * (camp - 0.12)], dim=1), None)


ARCHITECTURES["baseline-ring"] = RingBaseline


def baseline_card(threshold: float = 0.5) -> ModelCard:
    """Model card of the ring baseline (raw reflectance in, no normalisation)."""
    return ModelCard(
        architecture="baseline-ring", architecture_args={"in_channels": 4, "num_classes": 2}, bands=BANDS,
        gsd_m=10.0, norm_mean=(0.0,) * 4, norm_std=(1.0,) * 4, classes=CLASSES, threshold=threshold,
        min_distance_px=8, receptive_field_px=RingBaseline.receptive_field_px, name="fieldtruth-baseline-ring",
        licence="CC0-1.0",
        limits="Hand-made filters tuned by eye on synthetic scenes; a yardstick, not a detector to rely on.",
    )


def fit_baseline(scene_dirs: Sequence[Path], out: Path, *, tolerance_px: float = 1.0) -> LoadedBundle:
    """Choose the baseline's F1-best threshold on labelled scenes and write it as a bundle.

    Args:
        scene_dirs: labelled scene folders the threshold is chosen on.
        out: the bundle file to write.
        tolerance_px: match tolerance in pixels.
    """
    card = baseline_card()
    bundle = LoadedBundle(model=RingBaseline().eval(), card=card, sha256="", path=Path())
    parts, ids = [], []
    for path in scene_dirs:
        scene = load_training_scene(Path(path), BANDS)
        found = detect_scene(bundle, scene.data, scene.valid, threshold=0.05)
        labels = [lab for lab in scene.labels if lab.label in CLASSES]
        parts.append(score_detections(found, labels, tolerance_px=tolerance_px))
        ids.append(scene.id)
    threshold, best = merge_scores(parts).best_threshold()
    metrics = {"scenes": ids, "threshold": round(threshold, 4), "overall": best.summary(), "measured_on_held_out": False}
    split = {"train": [], "validation": ids, "threshold_chosen_on": "these scenes (the filters are not learned)"}
    card = dataclasses.replace(card, threshold=float(threshold), metrics=metrics, split=split)
    save_bundle(out, bundle.model, card)
    return load_bundle(out)
