"""Where a detector runs: ``cpu``, ``cuda`` (the first GPU) or ``auto`` (the GPU when there is one), and in
what precision.

:func:`resolve_device` turns the name a user gives (``--device``) into a :class:`torch.device`, refusing
``cuda`` on a machine without a usable CUDA device (one line naming the fix), and saying in one line when
``auto`` falls back to the CPU. Networks and their inputs move there; every result comes back to the CPU.

:func:`resolve_precision` chooses the arithmetic of inference (``--precision``): ``bfloat16`` runs the
convolutions in bfloat16 under :func:`torch.autocast` (weights, the 1 x 1 heads and results stay float32);
``auto``, the default of ``scan`` and ``evaluate``, takes it on a CPU with native bfloat16 instructions
(AVX512-BF16 or AMX), where oneDNN runs the vessels ensemble 1.75x as fast as float32 with the same
held-out quality and scores within 0.003 (benchmarks/README.md), and float32 everywhere else (emulated
bfloat16 is slower; on a GPU the scan is bound by reading on the CPU, and the forward pass took as long in
bfloat16).
Training is always float32.
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
#: The names ``--precision`` takes.
PRECISIONS = ("auto", "float32", "bfloat16")
#: CPU flags (Linux ``/proc/cpuinfo``) of native bfloat16 arithmetic.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


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


def device_memory(device: torch.device) -> int | None:
    """Bytes of memory of a CUDA ``device``; None for the CPU."""
    if device.type != "cuda":
        return None
    return torch.cuda.get_device_properties(device).total_memory


def resolve_precision(name: str, device: torch.device) -> str:
    """``float32`` or ``bfloat16``: the precision ``name`` (one of :data:`PRECISIONS`) means on ``device``.

    Raises:
        DeviceError: an unknown name.
    """
    if name not in PRECISIONS:
        raise DeviceError(f"precision {name!r} is not one of {', '.join(PRECISIONS)}; pick one of them")
    if name != "auto":
        return name
    return "bfloat16" if device.type == "cpu" and native_bfloat16() else "float32"


def native_bfloat16() -> bool:
    """Whether this CPU has bfloat16 instructions (read from ``/proc/cpuinfo``; False where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
    except OSError:
        return False
    return any(flag in flags for flag in BF16_FLAGS) and torch.backends.mkldnn.is_available()


def device_of(model: nn.Module) -> torch.device:
    """The device of a network's first parameter or buffer (the CPU for a network without any)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")
