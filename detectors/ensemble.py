"""An ensemble of point detectors: the mean of their heatmap probabilities (and of their box sizes).

Detectors trained from scratch on a few scenes vary a lot from seed to seed; averaging a few of them
trades a little CPU for much less variance. Bundles name it ``"ensemble"`` with
``architecture_args = {"in_channels", "num_classes", "members": [{"architecture", "args"}, ...]}`` (the
registry builds each member from its own entry); its weights are the members' (``members.<i>.*``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fieldtruth.detectors.model import Heads, output_stride


class Ensemble(nn.Module):
    """Mean of several point detectors of the same output stride.

    Args:
        in_channels: bands every member reads. num_classes: classes every member scores.
        members: the member networks.
    """

    def __init__(self, in_channels: int, num_classes: int, members: Sequence[nn.Module]) -> None:
        """Hold the members (see the class docstring)."""
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.in_channels, self.num_classes = in_channels, num_classes
        self.members = nn.ModuleList(members)
        strides = {output_stride(m) for m in self.members}
        if len(strides) != 1:
            raise ValueError(f"ensemble members must share one output stride, got {sorted(strides)!r}")
        self.output_stride = strides.pop()
        self.receptive_field_px = max(int(getattr(m, "receptive_field_px", 0)) for m in self.members)

    def forward(self, x: torch.Tensor) -> Heads:
        """Heatmap logits of the mean member probability; mean log sizes when every member has a size head."""
        outs = [m(x) for m in self.members]
        p = torch.stack([torch.sigmoid(o.heatmap) for o in outs]).mean(dim=0).clamp(1e-6, 1 - 1e-6)
        sizes = [o.size for o in outs]
        size = torch.stack(sizes).mean(dim=0) if all(s is not None for s in sizes) else None
        return Heads(torch.log(p) - torch.log1p(-p), size)
