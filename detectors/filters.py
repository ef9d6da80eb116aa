"""Non-learned filter networks: hand-made ring, contrast and NDWI filters with no weights to train.

They are ``nn.Module`` s returning :class:`~fieldtruth.detectors.model.Heads` like any point detector,
so bundles, scans, ``detect_array`` and evaluation run them unchanged; they read raw reflectance (their
cards normalise with mean 0 and standard deviation 1). :mod:`fieldtruth.detectors.baseline` chooses their
operating thresholds and writes their bundles.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from fieldtruth.detectors.model import Heads

log = logging.getLogger(__name__)


def disc(radius_in: float, radius_out: float) -> torch.Tensor:
    """Normalised annulus (or disc when ``radius_in`` is 0) kernel ``(1, 1, k, k)``."""
    half = int(radius_out + 0.5)
    r = torch.arange(-half, half + 1, dtype=torch.float32)
    dist = torch.sqrt(r[:, None] ** 2 + r[None, :] ** 2)
    kernel = ((dist >= radius_in) & (dist <= radius_out)).float()
    return (kernel / kernel.sum())[None, None]


def local_mean(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` ``(N, 1, H, W)`` under a normalised ``kernel``, edges replicated (same size out)."""
    return F.conv2d(F.pad(x, [kernel.shape[-1] // 2] * 4, mode="replicate"), kernel)


class RingBaseline(nn.Module):
    """Fixed filters turning raw (blue, green, red, nir) reflectance into kiln and camp score logits.

    Brick kilns: a reddish annulus (red / green ratio) around a dark centre. Fishing camps: small bright
    objects (very bright pixels) clustered within a few pixels of open water (NDWI).

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
            raise ValueError(
                f"the ring baseline reads 4 bands and scores 2 classes, got {in_channels!r}, {num_classes!r}"
            )
        self.in_channels, self.num_classes = in_channels, num_classes
        self.register_buffer("centre", disc(0.0, 1.5), persistent=False)
        self.register_buffer("ring", disc(2.0, 6.5), persistent=False)
        self.register_buffer("cluster", disc(0.0, 3.0), persistent=False)

    def forward(self, x: torch.Tensor) -> Heads:
        """Return kiln and camp logits ``(N, 2, H, W)`` for raw reflectance ``(N, 4, H, W)``."""
        blue, green, red, nir = x.clamp(min=1.0).unbind(dim=1)
        bright = ((blue + green + red) / 3)[:, None]
        redness = (red / green)[:, None]
        ring_red = local_mean(redness, self.ring)
        darkness = (1 - local_mean(bright, self.centre) / local_mean(bright, self.ring)).clamp(min=0)
        kiln = (ring_red - 1.3).clamp(min=0) * darkness
        huts = (bright > 1900).float()
        water = ((green - nir) / (green + nir) > 0.2).float()[:, None]
        near_water = F.max_pool2d(water, 15, stride=1, padding=7)
        camp = local_mean(huts, self.cluster) * near_water * (1 - water)
        return Heads(torch.cat([50 * (kiln - 0.08), 30 * (camp - 0.12)], dim=1), None)


class VesselBaseline(nn.Module):
    """Fixed NDWI + local contrast filters on raw (blue, green, red, nir) reflectance -> vessel logits.

    Vessels at 10 m are small objects brighter (in the near infrared and the visible) than the open water
    around them. The filter: a water mask from NDWI ``(green - nir) / (green + nir) > water_ndwi``; the
    share of water in a disc around each pixel (vessels sit in water, quays and beaches do not); the local
    contrast of the pixel's brightness against a ring of background (ring mean and standard deviation).
    Score logit = contrast z-score, gated by the surrounding water share.

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
            raise ValueError(
                f"the vessel baseline reads 4 bands and scores 1 class, got {in_channels!r}, {num_classes!r}"
            )
        self.in_channels, self.num_classes = in_channels, num_classes
        self.water_ndwi, self.min_water = water_ndwi, min_water
        self.receptive_field_px = int(2 * ring_out + 1)
        self.register_buffer("centre", disc(0.0, 1.0), persistent=False)
        self.register_buffer("ring", disc(ring_in, ring_out), persistent=False)
        self.register_buffer("area", disc(0.0, ring_out), persistent=False)

    def forward(self, x: torch.Tensor) -> Heads:
        """Return vessel logits ``(N, 1, H, W)`` for raw reflectance ``(N, 4, H, W)``."""
        blue, green, red, nir = x.clamp(min=1.0).unbind(dim=1)
        bright = ((blue + green + red + nir) / 4)[:, None]
        water = ((green - nir) / (green + nir) > self.water_ndwi).float()[:, None]
        water_share = local_mean(water, self.area)
        background = local_mean(bright, self.ring)
        spread = (local_mean(bright**2, self.ring) - background**2).clamp(min=1.0).sqrt()
        contrast = (local_mean(bright, self.centre) - background) / (spread + 30.0)
        gate = (water_share - self.min_water).clamp(min=0) / (1 - self.min_water)
        return Heads((contrast / 4.0 - 2.0) * gate - 8.0 * (1 - gate), None)
