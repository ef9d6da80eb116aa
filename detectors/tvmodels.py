"""A torchvision box detector: FCOS on a light ResNet-18 FPN, for high-resolution imagery.

Where sites are tens to hundreds of pixels across (sub-metre imagery), an anchor-free box detector
fits better than a centre heatmap. :class:`TorchvisionFCOS` wraps torchvision's FCOS with a ResNet-18
FPN backbone built with ``weights=None, weights_backbone=None`` (nothing is ever downloaded), its first
convolution widened to any number of bands, and torchvision's resizing and normalisation switched off
(images arrive normalised with the card, at their native pixel size). Bundles name it ``"fcos"``;
``detect_array`` turns its boxes into centre points like any detector, and training calls
:meth:`TorchvisionFCOS.loss` with the chips' boxes instead of the heatmap loss.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

log = logging.getLogger(__name__)


class TorchvisionFCOS(nn.Module):
    """FCOS (ResNet-18 FPN, random initialisation) for ``in_channels`` bands and ``num_classes`` classes.

    Args:
        in_channels: number of input bands (any).
        num_classes: number of site classes (background is added internally).
        min_box_px: boxes smaller than this (pixels) are grown to it in training targets.
        detections_per_chip: most boxes kept per chip.
    """

    output_stride = 1
    box_targets = True

    def __init__(
        self, in_channels: int = 4, num_classes: int = 1, min_box_px: float = 4.0,
        detections_per_chip: int = 200,
    ) -> None:
        """Build the network (see the class docstring)."""
        super().__init__()
        if in_channels < 1 or num_classes < 1:
            raise ValueError(f"FCOS needs in_channels >= 1 and num_classes >= 1, got {in_channels!r}, "
                             f"{num_classes!r}")
        self.in_channels, self.num_classes, self.min_box_px = in_channels, num_classes, float(min_box_px)
        backbone = resnet_fpn_backbone(
            backbone_name="resnet18", weights=None, trainable_layers=5, returned_layers=[2, 3, 4],
            extra_blocks=LastLevelP6P7(256, 256),
        )
        backbone.body.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.detector = FCOS(
            backbone, num_classes=num_classes + 1, image_mean=[0.0] * in_channels,
            image_std=[1.0] * in_channels,
            min_size=32, max_size=100_000, score_thresh=0.05, detections_per_img=detections_per_chip,
        )
        self.detector.transform.resize = lambda image, target: (image, target)  # native pixels, no resizing
        self.receptive_field_px = 128

    def loss(self, x: torch.Tensor, boxes: list[torch.Tensor], classes: list[torch.Tensor]) -> torch.Tensor:
        """Sum of FCOS's classification, box and centreness losses for a batch of chips and their boxes."""
        targets = []
        for b, k in zip(boxes, classes, strict=True):
            centre = (b[:, :2] + b[:, 2:]) / 2
            half = torch.maximum((b[:, 2:] - b[:, :2]) / 2, torch.full_like(centre, self.min_box_px / 2))
            targets.append({"boxes": torch.cat([centre - half, centre + half], dim=1), "labels": k + 1})
        losses = self.detector(list(x), targets)
        return sum(losses.values())

    @torch.no_grad()
    def detect(self, x: torch.Tensor) -> list[tuple[float, float, float, int]]:
        """``(row, col, score, class index)`` of each box centre found in one normalised chip
        ``(1, C, H, W)``."""
        self.detector.eval()
        out: dict[str, Any] = self.detector(list(x))[0]
        found = []
        found_boxes = zip(out["boxes"].tolist(), out["scores"].tolist(), out["labels"].tolist(), strict=True)
        for b, score, label in found_boxes:
            found.append(((b[1] + b[3]) / 2, (b[0] + b[2]) / 2, float(score), int(label) - 1))
        return found

    def forward(self, x: torch.Tensor) -> Any:
        """torchvision's FCOS output (training needs targets: use :meth:`loss`)."""
        return self.detector(list(x))
