"""Where a detector runs: ``cpu``, ``cuda`` (the first GPU) or ``auto`` (the GPU when there is one).

:func:`resolve_device` turns the name a user gives (``--device``) into a :class:`torch.device`, refusing
``cuda`` on a machine without a usable CUDA device (one line naming the fix), and saying in one line when
``auto`` falls back to the CPU. Networks and their inputs move there; every result comes back to the CPU.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import torch
from torch import nn

from fieldtruth.detectors.errors import DeviceError

log = logging.getLogger(__name__)

#: The names ``--device`` takes.
DEVICES = ("auto", "cpu", "cuda")


class Device(NamedTuple):
    """A resolved device and, when ``auto`` chose for the user, the line that says what it chose."""

    device: torch.device
    note: str | None


def resolve_device(name: str) -> Device:
    """The device named ``name`` (one of :data:`DEVICES`).

    Raises:
        DeviceError: ``cuda`` without a usable CUDA device, or an unknown name.
    """
    if name not in DEVICES:
        raise DeviceError(f"device {name!r} is not one of {', '.join(DEVICES)}; pick one of them")
    available = torch.cuda.is_available()
    if name == "cuda" and not available:
        built = torch.version.cuda or "no CUDA"
        raise DeviceError(f"--device cuda: no CUDA device is usable on this machine (torch "
                          f"{torch.__version__} built with {built}); run with --device cpu, or --device auto "
                          "to use a GPU only where there is one")
    if name == "cpu" or not available:
        note = "device auto: no CUDA device here, running on the CPU" if name == "auto" else None
        return Device(torch.device("cpu"), note)
    device = torch.device("cuda")
    note = None
    if name == "auto":
        note = f"device auto: running on the GPU ({torch.cuda.get_device_name(device)})"
    return Device(device, note)


def device_of(model: nn.Module) -> torch.device:
    """The device of a network's first parameter or buffer (the CPU for a network without any)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")
