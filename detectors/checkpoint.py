"""Training checkpoints: model, optimiser and loop state in one safetensors file (never pickle).

A checkpoint holds the current weights (``model.*``), the best weights so far (``best.*``), the AdamW
moments (``optim.<param index>.<name>``) and, in the metadata, the loop state as JSON (step, losses,
validation history, mined hard negatives) and a fingerprint of the training settings,
so ``--resume`` refuses a checkpoint written for other scenes or settings.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from fieldtruth.atomicfile import atomic_path
from fieldtruth.detectors.errors import TrainingError

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.safetensors"
_STATE_KEY = "fieldtruth.loop"


@dataclass
class LoopState:
    """Where a training loop stands.

    Attributes:
        step: optimisation steps done. losses: loss of every step.
        validations: ``[step, score]`` of each validation. best_step: step of the best validation (0: none).
        best_score: its score. hard: mined hard negatives ``[scene index, row, col]``. fingerprint: settings.
    """

    step: int = 0
    losses: list[float] = field(default_factory=list)
    validations: list[list[float]] = field(default_factory=list)
    best_step: int = 0
    best_score: float = -1.0
    hard: list[list[float]] = field(default_factory=list)
    fingerprint: str = ""


def save_checkpoint(
    folder: Path, model: torch.nn.Module, best: dict[str, torch.Tensor] | None,
    optimiser: torch.optim.Optimizer, state: LoopState,
) -> Path:
    """Write the checkpoint atomically to ``folder/checkpoint.safetensors``; return its path."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for k, v in (best or {}).items():
        tensors[f"best.{k}"] = v.detach().cpu().contiguous()
    for index, moments in optimiser.state_dict()["state"].items():
        for name, value in moments.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{name}"] = value.detach().cpu().reshape(value.shape).contiguous()
    path = folder / CHECKPOINT_NAME
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={_STATE_KEY: json.dumps(asdict(state))})
    log.debug("checkpoint at step %d -> %s", state.step, path)
    return path


def load_checkpoint(
    folder: Path, model: torch.nn.Module, optimiser: torch.optim.Optimizer, fingerprint: str
) -> tuple[LoopState, dict[str, torch.Tensor] | None]:
    """Restore model and optimiser from ``folder/checkpoint.safetensors``; return the loop state and best
    weights.

    Raises:
        TrainingError: no checkpoint, an unreadable one, or one written for other settings.
    """
    path = Path(folder) / CHECKPOINT_NAME
    if not path.is_file():
        raise TrainingError(f"no checkpoint to resume at {str(path)!r}; train without --resume first")
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        state = LoopState(**json.loads(meta[_STATE_KEY]))
    except (SafetensorError, OSError, KeyError, TypeError, ValueError) as exc:
        raise TrainingError(
            f"checkpoint {str(path)!r} cannot be read ({exc}); delete it and train again"
        ) from exc
    if state.fingerprint != fingerprint:
        raise TrainingError(
            f"checkpoint {str(path)!r} was written for other scenes or settings; resume with the same ones, "
            "or choose another --checkpoint-dir"
        )
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
    _restore_optimiser(optimiser, tensors)
    log.info("resuming from step %d (%s)", state.step, path)
    return state, best


def _restore_optimiser(optimiser: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    moments: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            moments.setdefault(int(index), {})[name] = value
    state = optimiser.state_dict()
    state["state"] = moments
    optimiser.load_state_dict(state)
