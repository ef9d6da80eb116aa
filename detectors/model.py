"""CentreNet: a small fully convolutional point detector.

A point detector maps a ``(N, bands, H, W)`` normalised image to per-class centre heatmap logits at
``1 / output_stride`` of the input resolution (CenterNet's idea, scaled down for 10 m imagery where a
site is 5 to 25 pixels across). It is fully convolutional, so it runs on any chip size, and it reports
its receptive field so scans can choose a tile halo that keeps tile edges out of every prediction.

Bundles name it ``"centrenet"`` in :data:`fieldtruth.detectors.registry.ARCHITECTURES`.
"""

from __future__ import annotations

import logging
import math
from typing import NamedTuple

import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation

log = logging.getLogger(__name__)

#: Prior probability of a site at an output cell; the heatmap bias starts at its logit (focal-loss practice).
HEATMAP_PRIOR = 0.01


class Heads(NamedTuple):
    """What a point detector returns: heatmap logits ``(N, classes, h, w)``; log box sizes
    ``(N, 2, h, w)`` or None."""

    heatmap: torch.Tensor
    size: torch.Tensor | None


class LayerSpec(NamedTuple):
    """Kernel, stride and dilation of one convolution on the longest path (for receptive field maths)."""

    kernel: int
    stride: int
    dilation: int


def receptive_field(layers: list[LayerSpec]) -> int:
    """Receptive field in input pixels of a chain of convolutions (``rf += (k - 1) * d * jump``)."""
    rf, jump = 1, 1
    for spec in layers:
        rf += (spec.kernel - 1) * spec.dilation * jump
        jump *= spec.stride
    return rf


class ResidualBlock(nn.Module):
    """Two dilated 3 x 3 convolutions with batch norm and an identity shortcut (ResNet basic block)."""

    def __init__(self, channels: int, dilation: int) -> None:
        """Build the block.

        Args:
            channels: input and output channels.
            dilation: dilation of both convolutions (padding keeps the size).
        """
        super().__init__()
        self.conv1 = Conv2dNormActivation(channels, channels, 3, dilation=dilation, padding=dilation)
        self.conv2 = Conv2dNormActivation(
            channels, channels, 3, dilation=dilation, padding=dilation, activation_layer=None
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``relu(x + conv2(conv1(x)))``."""
        return self.act(x + self.conv2(self.conv1(x)))


class CentreNet(nn.Module):
    """A small fully convolutional centre-point detector.

    Stem: a 3 x 3 convolution at full resolution, then a stride-2 3 x 3 convolution; body: residual
    blocks with growing then shrinking dilation at half resolution; heads: a 3 x 3 convolution and 1 x 1
    convolutions to per-class heatmap logits and (optionally) log box height and width in pixels.

    Args:
        in_channels: number of input bands (any).
        num_classes: number of heatmap channels (one per class).
        width: channels of the body.
        dilations: dilation of each residual block.
        size_head: add a head predicting ``log(height), log(width)`` of each site's box (pixels).
        indices: band index pairs ``(a, b)`` whose normalised difference ``(a - b) / (a + b)`` is added as an
            input channel (e.g. NDWI from green and nir: water/land context a few layers cannot compute).
        norm_mean: the card's per-band means, to undo the normalisation before computing ``indices``.
        norm_std: the card's per-band standard deviations (same use).
        context_down: run the residual body at a quarter of the input resolution (a stride-2 convolution
            before it, upsampling and a skip from the half-resolution stem after it): four times cheaper,
            and twice the receptive field for water/land context; the heads stay at half resolution.
        fast_stem: stride the stem's first convolution (no full-resolution feature map: several times
            cheaper on a CPU; its 3 x 3 kernel still sees every pixel).
    """

    output_stride = 2

    def __init__(
        self,
        in_channels: int = 4,
        num_classes: int = 2,
        width: int = 32,
        dilations: tuple[int, ...] = (1, 2, 3, 1),
        size_head: bool = False,
        indices: tuple[tuple[int, int], ...] = (),
        norm_mean: tuple[float, ...] = (),
        norm_std: tuple[float, ...] = (),
        context_down: bool = False,
        fast_stem: bool = False,
    ) -> None:
        """Build the network (see the class docstring for the arguments)."""
        super().__init__()
        if in_channels < 1 or num_classes < 1 or width < 4:
            raise ValueError(
                f"CentreNet needs in_channels >= 1, num_classes >= 1 and width >= 4, got "
                f"{in_channels!r}, {num_classes!r}, {width!r}"
            )
        self.in_channels, self.num_classes, self.dilations = in_channels, num_classes, tuple(dilations)
        self.indices = tuple((int(a), int(b)) for a, b in indices)
        if self.indices and (len(norm_mean) != in_channels or len(norm_std) != in_channels):
            raise ValueError(f"indices need norm_mean and norm_std of {in_channels} band(s), got "
                             f"{norm_mean!r}, {norm_std!r}")
        if any(not (0 <= i < in_channels) for pair in self.indices for i in pair):
            raise ValueError(f"indices {indices!r} name bands outside 0..{in_channels - 1}")
        self.norm_mean, self.norm_std = tuple(norm_mean), tuple(norm_std)
        stats = torch.zeros(2, 0)  # raw values are rebuilt only to compute the indices
        if self.indices:
            stats = torch.tensor([norm_mean, norm_std], dtype=torch.float32)
        self.register_buffer("raw_stats", stats.reshape(2, -1, 1, 1), persistent=False)
        self.fast_stem = bool(fast_stem)
        first, second = (2, 1) if self.fast_stem else (1, 2)
        self.stem = nn.Sequential(
            Conv2dNormActivation(in_channels + len(self.indices), width // 2, 3, stride=first),
            Conv2dNormActivation(width // 2, width, 3, stride=second),
        )
        self.context_down = bool(context_down)
        self.down = Conv2dNormActivation(width, width, 3, stride=2) if self.context_down else None
        self.body = nn.Sequential(*(ResidualBlock(width, d) for d in self.dilations))
        self.neck = Conv2dNormActivation(width, width, 3)
        self.heatmap = nn.Conv2d(width, num_classes, 1)
        self.size = nn.Conv2d(width, 2, 1) if size_head else None
        nn.init.constant_(self.heatmap.bias, -math.log((1 - HEATMAP_PRIOR) / HEATMAP_PRIOR))

    @property
    def receptive_field_px(self) -> int:
        """Receptive field of one output cell, in input pixels."""
        strides = (2, 1) if self.fast_stem else (1, 2)
        layers = [LayerSpec(3, s, 1) for s in strides] + ([LayerSpec(3, 2, 1)] if self.context_down else [])
        for d in self.dilations:
            layers += [LayerSpec(3, 1, d), LayerSpec(3, 1, d)]
        layers.append(LayerSpec(3, 1, 1))  # the neck (at half resolution again after upsampling)
        return receptive_field(layers) + (4 if self.context_down else 0)

    def forward(self, x: torch.Tensor) -> Heads:
        """Return heatmap logits (and log sizes) at half the input resolution (``ceil(H / 2)``)."""
        if self.indices:
            raw = (x * self.raw_stats[1] + self.raw_stats[0]).clamp(min=1.0)
            extra = [(raw[:, a] - raw[:, b]) / (raw[:, a] + raw[:, b]) for a, b in self.indices]
            x = torch.cat([x, 3 * torch.stack(extra, dim=1)], dim=1)
        stem = self.stem(x)
        if self.down is not None:
            context = nn.functional.interpolate(self.body(self.down(stem)), scale_factor=2.0, mode="bilinear")
            features = self.neck(stem + context[..., : stem.shape[-2], : stem.shape[-1]])
        else:
            features = self.neck(self.body(stem))
        # The 1 x 1 heads run in float32 even under bfloat16 autocast: bfloat16 logits are 1/128 apart
        # near 1, so nearby peaks would tie; float32 sums of the features give continuous scores.
        with torch.autocast(features.device.type, enabled=False):
            features = features.float()
            size = self.size(features) if self.size is not None else None
            return Heads(self.heatmap(features), size)


def output_stride(model: nn.Module) -> int:
    """Output stride of a point detector (input pixels per heatmap cell); 1 when it does not say."""
    return int(getattr(model, "output_stride", 1))
