"""The optimisation loop: seeded batches, one-cycle schedule, hard-negative mining, validation with early
stopping, and checkpoints that ``--resume`` continues exactly.

Every step draws its chips by index from the dataset (chip positions are a function of ``(seed, index)``)
after seeding torch's generator with ``(seed, step)`` (augmentation), so a resumed run takes the same
batches as an uninterrupted one.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import shapely
import torch
import torch.nn.functional as F

from fieldtruth.detectors.bundle import LoadedBundle
from fieldtruth.detectors.card import ModelCard
from fieldtruth.detectors.checkpoint import LoopState, load_checkpoint, save_checkpoint
from fieldtruth.detectors.data import ChipDataset, TrainingScene, default_augmentation, open_water_around
from fieldtruth.detectors.errors import TrainingError
from fieldtruth.detectors.evaluate import merge_scores, score_detections
from fieldtruth.detectors.model import output_stride
from fieldtruth.detectors.predict import detect_scene

if TYPE_CHECKING:
    from fieldtruth.detectors.train import TrainConfig

log = logging.getLogger(__name__)

#: Called after every optimisation step with (step, total steps, loss).
Progress = Callable[[int, int, float], None]


@dataclass(frozen=True)
class FitResult:
    """What the loop did: losses of every step, validation history, the step whose weights were kept."""

    state: LoopState
    stopped_early: bool


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of centres (cells equal to 1)."""
    pos = target.eq(1.0).float()
    p = torch.sigmoid(logits)
    pos_term = pos * (1 - p) ** alpha * F.logsigmoid(logits)
    neg_term = (1 - pos) * (1 - target) ** beta * p**alpha * F.logsigmoid(-logits)
    return -(pos_term.sum() + neg_term.sum()) / pos.sum().clamp(min=1.0)


def one_cycle_lr(done: float, peak: float, warmup: float = 0.15) -> float:
    """One-cycle learning rate at training progress ``done`` in [0, 1] (cosine warm-up, then cosine decay)."""
    start, end = peak / 25, peak / 25 / 1e4
    done = min(max(done, 0.0), 1.0)
    if done < warmup:
        return start + (peak - start) * (1 - math.cos(math.pi * done / warmup)) / 2
    return end + (peak - end) * (1 + math.cos(math.pi * (done - warmup) / (1 - warmup))) / 2


def fingerprint(config: TrainConfig, card: ModelCard, scenes: list[TrainingScene]) -> str:
    """A digest of the settings and scenes a checkpoint belongs to."""
    from dataclasses import asdict

    settings = {k: v for k, v in asdict(config).items() if k not in ("num_threads", "checkpoint_dir", "resume")}
    payload = json.dumps([settings, card.architecture_args, [s.id for s in scenes]], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def fit(
    model: torch.nn.Module, card: ModelCard, scenes: list[TrainingScene], val_scenes: list[TrainingScene],
    config: TrainConfig, progress: Progress | None = None,
) -> FitResult:
    """Train ``model`` in place; with validation scenes, keep the weights of the best validation AP.

    Raises:
        TrainingError: ``open_water_negatives: ignore`` for a model trained on boxes (it acts on heatmaps).
    """
    if config.open_water_negatives == "ignore" and getattr(model, "box_targets", False):
        raise TrainingError(f"open_water_negatives 'ignore' works on heatmap targets; {card.architecture!r} trains on "
                            "boxes: use 'skip' or 'mine'")
    dataset = ChipDataset(
        scenes, classes=card.classes, norm=(card.norm_mean, card.norm_std), chip_size=config.chip_size,
        length=config.steps * config.batch_size, stride=output_stride(model), positive_fraction=config.positive_fraction,
        hard_fraction=config.hard_fraction, sigma_px=config.sigma_px, target_shape=config.target_shape, seed=config.seed,
        augment=default_augmentation(tuple(config.gain), config.band_jitter, config.haze),
    )
    model.to(memory_format=torch.channels_last)  # oneDNN trains NHWC convolutions ~1.45x faster on a CPU
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    state, best = LoopState(fingerprint=fingerprint(config, card, scenes)), None
    folder = Path(config.checkpoint_dir) if config.checkpoint_dir else None
    if config.resume and folder is not None:
        state, best = load_checkpoint(folder, model, optimiser, state.fingerprint)
        dataset.hard = [(int(s), r, c) for s, r, c in state.hard]
        dataset.ignore = [(int(s), r, c) for s, r, c in state.ignore]
    mine_left = [f for f in sorted(config.mine_at) if f * config.steps > state.step] if config.hard_fraction > 0 else []
    stopped_early, started = False, time.perf_counter() - state.elapsed_s
    model.train()
    while state.step < config.steps:
        state.step += 1
        done = _done(state.step - 1, config, time.perf_counter() - started)
        loss = _step(model, optimiser, dataset, state.step, one_cycle_lr(done, config.lr), config)
        state.losses.append(loss)
        if progress is not None:
            progress(state.step, config.steps, loss)
        done = _done(state.step, config, time.perf_counter() - started)
        if mine_left and done >= mine_left[0]:
            mine_left = [f for f in mine_left if f > done]
            dataset.hard, in_water = _mine_hard_negatives(model, card, scenes, config)
            dataset.ignore = in_water if config.open_water_negatives == "ignore" else []
            state.hard = [[s, r, c] for s, r, c in dataset.hard]
            state.ignore = [[s, r, c] for s, r, c in dataset.ignore]
        last = done >= 1.0 or state.step >= config.steps
        if val_scenes and (last or (config.validate_every and state.step % config.validate_every == 0)):
            best, stopped_early = _validate(model, card, val_scenes, config, state, best)
        state.elapsed_s = time.perf_counter() - started
        if folder is not None and (last or stopped_early or state.step % config.checkpoint_every == 0):
            save_checkpoint(folder, model, best, optimiser, state)
        if last or stopped_early:
            break
    if best is not None:
        model.load_state_dict(best)
    model.eval()
    return FitResult(state=state, stopped_early=stopped_early)


def _done(step: int, config: TrainConfig, elapsed: float) -> float:
    """How far training is: by steps, or by time when a time budget binds sooner."""
    by_time = elapsed / config.time_budget_s if config.time_budget_s else 0.0
    return max(step / config.steps, by_time)


def _step(
    model: torch.nn.Module, optimiser: torch.optim.Optimizer, dataset: ChipDataset, step: int, lr: float,
    config: TrainConfig,
) -> float:
    torch.manual_seed(config.seed * 1_000_003 + step)
    first = (step - 1) * config.batch_size
    indices = range(first, first + config.batch_size)
    for group in optimiser.param_groups:
        group["lr"] = lr
    if getattr(model, "box_targets", False):
        x, boxes, kinds = zip(*(dataset.boxes_item(i) for i in indices), strict=True)
        loss = model.loss(torch.stack(x), list(boxes), list(kinds))
    else:
        x, heat, sizes, mask = (torch.stack(parts) for parts in zip(*(dataset[i] for i in indices), strict=True))
        heads = model(x.contiguous(memory_format=torch.channels_last))
        loss = focal_loss(heads.heatmap, heat)
        if heads.size is not None:
            size_loss = F.l1_loss(heads.size * mask, sizes * mask, reduction="sum") / mask.sum().clamp(min=1)
            loss = loss + config.size_weight * size_loss
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return float(loss.detach())


def _validate(
    model: torch.nn.Module, card: ModelCard, val_scenes: list[TrainingScene], config: TrainConfig,
    state: LoopState, best: dict[str, torch.Tensor] | None,
) -> tuple[dict[str, torch.Tensor] | None, bool]:
    """Score the validation scenes (average precision); keep the best weights; say when patience ran out."""
    model.eval()
    score = validation_scores(model, card, val_scenes, config).average_precision
    model.train()
    state.validations.append([state.step, round(score, 4)])
    log.info("step %d: validation AP %.3f", state.step, score)
    if score > state.best_score + 1e-4:
        state.best_score, state.best_step = score, state.step
        best = copy.deepcopy({k: v.detach().clone() for k, v in model.state_dict().items()})
    since = sum(1 for s, _ in state.validations if s > state.best_step)
    return best, bool(config.patience) and since >= config.patience


def validation_scores(model: torch.nn.Module, card: ModelCard, scenes: list[TrainingScene], config: TrainConfig):  # noqa: ANN201
    """Pooled matching of the model's detections (score >= 0.05) on whole scenes."""
    bundle = LoadedBundle(model=model, card=card, sha256="", path=Path())
    parts = []
    for scene in scenes:
        found = detect_scene(bundle, scene.data, scene.valid, tile=config.eval_tile, halo=config.eval_halo, threshold=0.05)
        labels = [lab for lab in scene.labels if lab.label in card.classes]
        parts.append(score_detections(found, labels, tolerance_px=config.tolerance_px))
    return merge_scores(parts)


def _mine_hard_negatives(
    model: torch.nn.Module, card: ModelCard, scenes: list[TrainingScene], config: TrainConfig
) -> tuple[list[tuple[int, float, float]], list[tuple[int, float, float]]]:
    """Detections of the current model on the training scenes that match no labelled site (of any class):
    (hard negatives, those in open water), the second list empty when ``open_water_negatives`` is ``mine``."""
    model.eval()
    bundle = LoadedBundle(model=model, card=card, sha256="", path=Path())
    hard, in_water = [], []
    for i, scene in enumerate(scenes):
        zones = shapely.union_all([lab.geometry.buffer(config.tolerance_px + 2) for lab in scene.labels])
        mined_apart = config.open_water_negatives != "mine" and scene.water is not None
        open_water = open_water_around(scene.water) if mined_apart else None
        for d in detect_scene(bundle, scene.data, scene.valid, tile=config.eval_tile, halo=config.eval_halo, threshold=0.1):
            if not zones.is_empty and zones.contains(shapely.Point(d.col, d.row)):
                continue
            in_open_water = open_water is not None and open_water[int(d.row), int(d.col)]
            (in_water if in_open_water else hard).append((i, d.row, d.col))
    model.train()
    log.debug("mined %d hard negative(s); %d more in open water", len(hard), len(in_water))
    return hard, in_water

