"""UNet: a plain small U-Net centre-point detector, with a receptive field of a few tens of pixels.

Three levels (full, half and quarter resolution) of two 3 x 3 convolutions each, max pooling down,
bilinear upsampling and skip connections up, a 1 x 1 head to per-class heatmap logits at full resolution
(output stride 1). Its bands enter as ``log1p(value / 1000)`` (the card's normalisation undone first), so a
bright hull and dark water differ by a few units whatever the scene's brightness. Its small receptive field
(:attr:`UNet.receptive_field_px`) sees a vessel and its immediate water, not the port around it, which
transfers to unseen ports better than the ~300 px context of the CentreNet ensemble (see docs/detectors.md),
and it needs only a small tile halo.

Bundles name it ``"unet"`` in :data:`fieldtruth.detectors.registry.ARCHITECTURES`.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation

from fieldtruth.detectors.model import HEATMAP_PRIOR, Heads, LayerSpec, receptive_field

log = logging.getLogger(__name__)

#: Raw values are divided by this before ``log1p`` (Sentinel-2 L2A reflectance x 10000: 1000 is 10 %).
LOG_SCALE = 1000.0


def _double(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(Conv2dNormActivation(in_channels, out_channels, 3),
                         Conv2dNormActivation(out_channels, out_channels, 3))


class UNet(nn.Module):
    """A three-level U-Net point detector at full resolution.

    Args:
        in_channels: number of input bands (any).
        num_classes: number of heatmap channels (one per class).
        width: channels of the first level (the second has twice, the third four times as many).
        norm_mean: the card's per-band means, to undo the normalisation before ``log1p``.
        norm_std: the card's per-band standard deviations (same use).
        log_input: feed ``log1p(raw / 1000)`` of each band; False feeds the card's normalised values.
    """

    output_stride = 1

    def __init__(
        self, in_channels: int = 4, num_classes: int = 1, width: int = 16,
        norm_mean: tuple[float, ...] = (), norm_std: tuple[float, ...] = (), log_input: bool = True,
    ) -> None:
        """Build the network (see the class docstring for the arguments)."""
        super().__init__()
        if in_channels < 1 or num_classes < 1 or width < 4:
            raise ValueError(f"UNet needs in_channels >= 1, num_classes >= 1 and width >= 4, got "
                             f"{in_channels!r}, {num_classes!r}, {width!r}")
        self.in_channels, self.num_classes, self.log_input = in_channels, num_classes, bool(log_input)
        if self.log_input and (len(norm_mean) != in_channels or len(norm_std) != in_channels):
            raise ValueError(f"log_input needs norm_mean and norm_std of {in_channels} band(s), got "
                             f"{norm_mean!r}, {norm_std!r}")
        stats = torch.zeros(2, 0)  # raw values are rebuilt only for log_input
        if self.log_input:
            stats = torch.tensor([norm_mean, norm_std], dtype=torch.float32)
        self.register_buffer("raw_stats", stats.reshape(2, -1, 1, 1), persistent=False)
        self.enc1 = _double(in_channels, width)
        self.enc2 = _double(width, 2 * width)
        self.enc3 = _double(2 * width, 4 * width)
        self.dec2 = _double(6 * width, 2 * width)
        self.dec1 = _double(3 * width, width)
        self.heatmap = nn.Conv2d(width, num_classes, 1)
        nn.init.constant_(self.heatmap.bias, -math.log((1 - HEATMAP_PRIOR) / HEATMAP_PRIOR))

    @property
    def receptive_field_px(self) -> int:
        """Receptive field of one output cell, in input pixels (the longest path: through the bottom)."""
        conv, pool = LayerSpec(3, 1, 1), LayerSpec(2, 2, 1)
        down = [conv, conv, pool, conv, conv, pool, conv, conv]
        return receptive_field(down) + 2 * 4 * 2 + 2 * 2 + 4  # dec2 at 1/2, dec1 at 1, the upsampling

    def forward(self, x: torch.Tensor) -> Heads:
        """Return heatmap logits at the input's resolution (any height and width)."""
        if self.log_input:
            x = torch.log1p((x * self.raw_stats[1] + self.raw_stats[0]).clamp(min=0.0) / LOG_SCALE)
        e1 = self.enc1(x)
        e2 = self.enc2(nn.functional.max_pool2d(e1, 2, ceil_mode=True))
        e3 = self.enc3(nn.functional.max_pool2d(e2, 2, ceil_mode=True))
        d2 = self.dec2(torch.cat([_up(e3, e2), e2], dim=1))
        d1 = self.dec1(torch.cat([_up(d2, e1), e1], dim=1))
        return Heads(self.heatmap(d1), None)


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``x`` upsampled bilinearly to ``like``'s height and width."""
    return nn.functional.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)
