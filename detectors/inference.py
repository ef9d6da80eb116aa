"""A loaded network made ready for inference: batch norm folded into its convolutions.

In eval mode a batch norm after a convolution is an affine map per channel, which
:func:`torch.nn.utils.fusion.fuse_conv_bn_eval` folds into the convolution's weights and bias: one pass
over each feature map less, the same outputs up to float rounding. :func:`fuse_batchnorm` does it for every
``Conv2d`` followed by a ``BatchNorm2d`` in one ``nn.Sequential`` (torchvision's ``Conv2dNormActivation``,
which every CentreNet layer is). Training never sees a fused network: bundles keep the unfused weights, and
:func:`fieldtruth.detectors.bundle.load_bundle` fuses the copy it runs.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

log = logging.getLogger(__name__)


def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every batch norm that follows a convolution in a ``nn.Sequential`` into that convolution.

    Args:
        model: a network in eval mode (its batch norms use their running statistics).

    Returns:
        The same network object, changed in place: each folded ``BatchNorm2d`` replaced by ``nn.Identity``.

    Raises:
        ValueError: the network is in training mode (its batch norms use the batch's statistics, which
            cannot be folded).
    """
    if model.training:
        raise ValueError("fuse_batchnorm needs a network in eval mode (call .eval() first); batch norm in "
                         "training mode uses each batch's statistics and cannot be folded")
    folded = 0
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in zip(names, names[1:], strict=False):
            conv, norm = module._modules[first], module._modules[second]
            if isinstance(conv, nn.Conv2d) and type(norm) is nn.BatchNorm2d and norm.track_running_stats:
                module._modules[first] = fuse_conv_bn_eval(conv, norm)
                module._modules[second] = nn.Identity()
                folded += 1
    log.debug("folded %d batch norm(s) into their convolutions", folded)
    return model


def inference_copy(model: nn.Module) -> nn.Module:
    """A copy of a network for inference only: eval mode, batch norms folded, channels-last weights."""
    fused = fuse_batchnorm(copy.deepcopy(model).eval())
    for parameter in fused.parameters():
        parameter.requires_grad_(False)
    return fused.to(memory_format=torch.channels_last)
