"""The architectures a bundle can name: one static table from name to builder, and :func:`build_model`.

A bundle records ``architecture`` (a key of :data:`ARCHITECTURES`) and ``architecture_args`` (keyword
arguments of its builder, JSON values); :func:`build_model` rebuilds the network from those two alone.
Adding an architecture means adding a line here: nothing registers itself on import.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn

from fieldtruth.detectors.ensemble import Ensemble
from fieldtruth.detectors.errors import UnknownArchitectureError
from fieldtruth.detectors.filters import RingBaseline, VesselBaseline
from fieldtruth.detectors.model import CentreNet
from fieldtruth.detectors.tvmodels import TorchvisionFCOS

log = logging.getLogger(__name__)


def _ensemble(in_channels: int, num_classes: int, members: Sequence[Mapping[str, Any]]) -> Ensemble:
    """An :class:`Ensemble` of members given as ``{"architecture": name, "args": builder arguments}``."""
    if not all(isinstance(m, Mapping) and isinstance(m.get("args"), Mapping) for m in members):
        raise ValueError(f"ensemble members must be {{'architecture': name, 'args': {{...}}}} objects, got "
                         f"{members!r}")
    built = [build_model(str(m.get("architecture")), m["args"]) for m in members]
    return Ensemble(in_channels, num_classes, built)


#: Architecture name -> builder taking ``in_channels``, ``num_classes`` and its own keyword arguments.
ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "centrenet": CentreNet,  # the point detector every preset trains
    "ensemble": _ensemble,  # the mean of several members (the vessels preset: four CentreNets)
    "fcos": TorchvisionFCOS,  # a torchvision box detector, for high-resolution imagery
    "baseline-ring": RingBaseline,  # non-learned yardstick: synthetic kilns and camps
    "baseline-vessel": VesselBaseline,  # non-learned yardstick: vessels
}

#: Non-learned filters: box sums and ratios that bfloat16's 8-bit mantissa would round away; cheap anyway,
#: they always run in float32 (see :func:`fieldtruth.detectors.device.resolve_precision`).
FLOAT32_ONLY = frozenset({"baseline-ring", "baseline-vessel"})

#: Arguments earlier versions took and this one does not: architecture -> {argument: the value that meant
#: "off"}. A card holding the "off" value loads as before (the network is the same); any other is refused.
REMOVED_ARGUMENTS: dict[str, dict[str, Any]] = {"centrenet": {"local_window": 0, "log_input": False}}
#: Architectures earlier versions had, and the commits they lived in (tried and not adopted, removed).
REMOVED_ARCHITECTURES: dict[str, str] = {"unet": "af4f243 .. 706f2b6"}


def build_model(architecture: str, architecture_args: Mapping[str, Any]) -> nn.Module:
    """Build an architecture of :data:`ARCHITECTURES` from its name and builder arguments.

    Args:
        architecture: a key of :data:`ARCHITECTURES`.
        architecture_args: keyword arguments of the builder (JSON values; lists become tuples).

    Raises:
        UnknownArchitectureError: the name is not in the table.
        ValueError: the arguments do not fit the builder, or use an option this version removed.
    """
    builder = ARCHITECTURES.get(architecture)
    if architecture in REMOVED_ARCHITECTURES:
        raise UnknownArchitectureError(
            f"architecture {architecture!r} was tried and not adopted, and removed (see 'Tried and "
            "rejected' in docs/detectors.md); run it with fieldtruth from commits "
            f"{REMOVED_ARCHITECTURES[architecture]}"
        )
    if builder is None:
        raise UnknownArchitectureError(
            f"architecture {architecture!r} is not registered; known: {sorted(ARCHITECTURES)!r}"
        )
    kwargs = {k: _tuples(v) for k, v in architecture_args.items()}
    for name, off in REMOVED_ARGUMENTS.get(architecture, {}).items():
        if name in kwargs and kwargs.pop(name) != off:
            raise ValueError(
                f"architecture {architecture!r} no longer takes {name}={architecture_args[name]!r} (tried "
                "and not adopted, removed: see 'Tried and rejected' in docs/detectors.md); retrain the "
                "detector with this version, or run it with fieldtruth from before the removal (commit "
                "bffdd64)"
            )
    try:
        return builder(**kwargs)
    except TypeError as exc:
        raise ValueError(f"arguments {dict(architecture_args)!r} do not fit architecture {architecture!r}: "
                         f"{exc}") from exc


def _tuples(value: Any) -> Any:
    """JSON lists (nested too) as tuples."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list | tuple) else value
