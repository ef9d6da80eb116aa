"""Training settings: :class:`TrainConfig`, its three groups, the presets, and reading them from YAML/JSON.

A config is what to train (architecture, bands, classes, steps, ...) plus three groups of related
settings: :class:`Chips` (which chips a step sees, their targets and augmentation), :class:`Validation`
(validation while training and the operating point chosen on the validation scenes) and
:class:`Checkpoints` (where and how often to save, and whether to resume). Everything is frozen.

A mapping (a parsed YAML or JSON file, or ``--set`` of a benchmark) is laid over a preset with
:meth:`TrainConfig.from_mapping`; groups are mappings of their own, merged key by key over the preset's::

    preset: vessels
    steps: 1400
    chips: {size: 192}
    validation: {every: 350}

Training stops after ``steps`` steps and never by a clock, so a seeded run gives the same weights on a
fast machine and a busy one.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic

from fieldtruth.detectors.sceneoffset import WATER_OFFSET, check_scene_offset

log = logging.getLogger(__name__)

_FORBID = pydantic.ConfigDict(extra="forbid")


@pydantic.with_config(_FORBID)
@dataclass(frozen=True)
class Chips:
    """Which chips a training step sees, the targets drawn on them, and their augmentation.

    Attributes:
        size: chip side (pixels, even, >= 16).
        positive_fraction: share of chips centred near a labelled site.
        hard_fraction: share of chips centred on hard negatives (false detections of the model so far,
            mined on the training scenes at the fractions of training in ``mine_at``).
        mine_at: when to mine hard negatives, as fractions of the steps; empty to never mine.
        sigma_px: least radius of the Gaussian around each centre in the target heatmap (pixels); larger
            sites get a quarter of their box's geometric mean side.
        gain: range of the random overall brightness gain. band_jitter: per-band gain jitter.
    """

    size: int = 64
    positive_fraction: float = 0.4
    hard_fraction: float = 0.3
    mine_at: tuple[float, ...] = (0.35, 0.65)
    sigma_px: float = 2.0
    gain: tuple[float, float] = (0.85, 1.15)
    band_jitter: float = 0.03

    def __post_init__(self) -> None:
        """Refuse chips training cannot draw."""
        if self.size < 16 or self.size % 2:
            raise ValueError(f"chips.size must be an even number >= 16, got {self.size!r}")
        if not 0.0 <= self.positive_fraction <= 1.0 or not 0.0 <= self.hard_fraction <= 1.0:
            raise ValueError(f"chips.positive_fraction and chips.hard_fraction must be within [0, 1], got "
                             f"{self.positive_fraction!r}, {self.hard_fraction!r}")
        if self.sigma_px <= 0:
            raise ValueError(f"chips.sigma_px must be positive, got {self.sigma_px!r}")


@pydantic.with_config(_FORBID)
@dataclass(frozen=True)
class Validation:
    """Validation while training, and the operating point chosen on the validation scenes.

    Attributes:
        every: steps between validations (the best validation AP's weights are kept); 0 validates only at
            the end.
        patience: validations without improvement before training stops; 0 never stops early.
        tile: tile core used when detecting over whole scenes (the halo is 32 px).
        tolerance_px: match tolerance when choosing the threshold and measuring.
        min_distance_px: minimum distance between detections (pixels), written to the card.
        min_distance_choices: when not empty, the minimum distance is chosen among these (pixels) on the
            validation scenes, together with the threshold (F1-best); ``min_distance_px`` otherwise.
        box_suppression_choices: likewise for the card's ``box_suppression`` (models with a size head);
            0.5 when empty.
    """

    every: int = 0
    patience: int = 0
    tile: int = 512
    tolerance_px: float = 1.0
    min_distance_px: int = 6
    min_distance_choices: tuple[int, ...] = ()
    box_suppression_choices: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        """Refuse settings validation cannot work with."""
        if self.every < 0 or self.patience < 0 or self.tile < 1 or self.tolerance_px < 0:
            raise ValueError(f"validation.every and .patience must be >= 0, .tile >= 1 and .tolerance_px "
                             f">= 0, got {self.every!r}, {self.patience!r}, {self.tile!r}, "
                             f"{self.tolerance_px!r}")


@pydantic.with_config(_FORBID)
@dataclass(frozen=True)
class Checkpoints:
    """Where training saves ``checkpoint.safetensors``, how often, and whether it continues from it.

    Attributes:
        folder: the checkpoint folder; None writes none. every: steps between checkpoints.
        resume: continue from the checkpoint in ``folder``.
    """

    folder: str | None = None
    every: int = 100
    resume: bool = False

    def __post_init__(self) -> None:
        """Refuse a checkpoint interval below one step."""
        if self.every < 1:
            raise ValueError(f"checkpoints.every must be >= 1, got {self.every!r}")


@pydantic.with_config(_FORBID)
@dataclass(frozen=True)
class TrainConfig:
    """How to train a detector.

    Attributes:
        seed: seeds chip positions, augmentation and initial weights.
        steps: optimisation steps (training always runs them all, early stopping aside).
        batch_size: chips per step. lr: peak learning rate (one-cycle schedule).
        classes: classes to learn, in heatmap order; every class in the training labels (sorted) when None.
        bands: band names to read, in model input order.
        architecture: an architecture of :data:`~fieldtruth.detectors.registry.ARCHITECTURES`.
        architecture_args: its keyword arguments (besides ``in_channels`` and ``num_classes``, which come
            from ``bands`` and ``classes``; with ``indices`` the normalisation statistics are added too).
        ensemble: number of members trained (seeds ``seed``, ``seed + 1``, ...) and averaged into one bundle.
        scene_offset: per-scene water-level correction (see :mod:`fieldtruth.detectors.sceneoffset`),
            written to the card; empty for none.
        gsd_m: ground sampling distance written to the card (metres); the training scenes' mean ground
            pixel size when None.
        licence: licence of the trained weights.
        num_threads: torch intra-op threads while training (restored afterwards); unchanged when None.
        point_size_m: ground side (metres) of the square a point label (or a confirmed lead) becomes;
            3 pixels when None.
        chips: see :class:`Chips`. validation: see :class:`Validation`. checkpoints: see :class:`Checkpoints`.
    """

    seed: int = 0
    steps: int = 1000
    batch_size: int = 16
    lr: float = 3e-3
    classes: tuple[str, ...] | None = None
    bands: tuple[str, ...] = ("blue", "green", "red", "nir")
    architecture: str = "centrenet"
    architecture_args: dict[str, Any] = field(
        default_factory=lambda: {"width": 32, "dilations": [1, 2, 3, 1]}  # the default and demo CentreNet
    )
    ensemble: int = 1
    scene_offset: dict[str, Any] = field(default_factory=dict)
    gsd_m: float | None = 10.0
    licence: str = "CC-BY-4.0"
    num_threads: int | None = None
    point_size_m: float | None = None
    chips: Chips = field(default_factory=Chips)
    validation: Validation = field(default_factory=Validation)
    checkpoints: Checkpoints = field(default_factory=Checkpoints)

    def __post_init__(self) -> None:
        """Refuse settings training cannot work with."""
        if self.steps < 1 or self.batch_size < 1 or self.ensemble < 1:
            raise ValueError(f"steps, batch_size and ensemble must be >= 1, got {self.steps!r}, "
                             f"{self.batch_size!r}, {self.ensemble!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if self.point_size_m is not None and not self.point_size_m > 0:
            raise ValueError(f"point_size_m must be positive (metres), got {self.point_size_m!r}")
        check_scene_offset(self.scene_offset, self.bands)

    @classmethod
    def demo(cls) -> TrainConfig:
        """Settings of ``fieldtruth demo``: kilns and camps on synthetic scenes (see :data:`PRESETS`)."""
        return cls.from_mapping({}, "demo")

    @classmethod
    def vessels(cls) -> TrainConfig:
        """Settings for small bright objects in water at 10 m, sen2ships (see :data:`PRESETS`)."""
        return cls.from_mapping({}, "vessels")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], preset: str = "default") -> TrainConfig:
        """A config from a parsed YAML/JSON mapping laid over a preset (``default``, ``demo``, ``vessels``).

        Top-level settings replace the preset's; a group (``chips``, ``validation``, ``checkpoints``) is
        merged key by key over the preset's group.

        Raises:
            ValueError: an unknown preset, an unknown or misplaced key (naming where it lives now, or that
                it was removed), or values training cannot work with.
        """
        base = PRESETS.get(preset)
        if base is None:
            raise ValueError(f"unknown preset {preset!r}; use one of {sorted(PRESETS)!r}")
        return base.merged(values)

    def merged(self, values: Mapping[str, Any]) -> TrainConfig:
        """This config with a mapping laid over it, as :meth:`from_mapping` lays one over a preset.

        Raises:
            ValueError: see :meth:`from_mapping`.
        """
        _check_keys(values)
        merged = dataclasses.asdict(self)
        for key, value in values.items():
            if key in _GROUPS and isinstance(value, Mapping):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        try:
            return _ADAPTER.validate_python(merged)
        except pydantic.ValidationError as exc:
            raise ValueError(f"training settings: {_message(exc)}") from exc


_GROUPS = {"chips": Chips, "validation": Validation, "checkpoints": Checkpoints}

#: Settings of earlier versions that now live in a group (old name -> new place).
MOVED = {
    "chip_size": "chips.size", "positive_fraction": "chips.positive_fraction",
    "hard_fraction": "chips.hard_fraction", "mine_at": "chips.mine_at", "sigma_px": "chips.sigma_px",
    "gain": "chips.gain", "band_jitter": "chips.band_jitter", "validate_every": "validation.every",
    "patience": "validation.patience", "eval_tile": "validation.tile",
    "tolerance_px": "validation.tolerance_px", "min_distance_px": "validation.min_distance_px",
    "min_distance_choices": "validation.min_distance_choices",
    "box_suppression_choices": "validation.box_suppression_choices", "checkpoint_dir": "checkpoints.folder",
    "checkpoint_every": "checkpoints.every", "resume": "checkpoints.resume",
}
#: Settings of earlier versions that were removed, and why.
REMOVED = {
    "open_water_negatives": "tried on sen2ships and not adopted (docs/detectors.md, 'Tried and rejected')",
    "target_shape": "tried on sen2ships and not adopted (docs/detectors.md, 'Tried and rejected')",
    "haze": "tried on sen2ships and not adopted (docs/detectors.md, 'Tried and rejected')",
    "time_budget_s": "training runs its steps, never against a clock: lower 'steps' for a shorter run",
    "weight_decay": "fixed at 1e-4 (no preset changed it)",
    "size_weight": "fixed at 0.1 (no preset changed it)",
    "eval_halo": "fixed at 32 px (no preset changed it)",
}


def _check_keys(values: Mapping[str, Any]) -> None:
    for key in values:
        if key in MOVED:
            group, name = MOVED[key].split(".")
            raise ValueError(f"training setting {key!r} is now {MOVED[key]!r}: write it as "
                             f"{group}: {{{name}: ...}}")
        if key in REMOVED:
            raise ValueError(f"training setting {key!r} was removed: {REMOVED[key]}")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown training setting(s) {unknown!r}; known: {sorted(known)!r}")


def _message(exc: pydantic.ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "settings"
        if error["type"] == "value_error":  # our own check, which names the value
            parts.append(str(error["msg"]).removeprefix("Value error, "))
        elif error["type"] == "unexpected_keyword_argument":
            group = _GROUPS.get(str(error["loc"][0]))
            known = f"; {group.__name__} has {[f.name for f in dataclasses.fields(group)]!r}" if group else ""
            parts.append(f"unknown setting {where!r}{known}")
        else:
            parts.append(f"{where}: {error['msg']} (got {error.get('input')!r})")
    return "; ".join(parts)


#: The presets: ``default`` (the dataclass defaults), ``demo`` and ``vessels``.
PRESETS: dict[str, TrainConfig] = {
    "default": TrainConfig(),
    # fieldtruth demo: kilns and camps on synthetic scenes, 900 steps of 16 chips of 64 px.
    "demo": TrainConfig(
        seed=0, steps=900, batch_size=16, lr=3e-3, classes=("brick_kiln", "fishing_camp"), num_threads=2
    ),
    # Small bright objects in water at 10 m (sen2ships): NDWI input, wide context, sizes. Chips of 128 px
    # (8 a step) so the ~300 px receptive field sees real water and land while training, as it does in a
    # scan; the peak suppression (minimum distance, box fraction) is chosen on the validation scenes with
    # the threshold. Each scene's open water is brought to one level first (WATER_OFFSET), so haze and
    # glint do not move its pixels. Four members, averaged.
    "vessels": TrainConfig(
        seed=0,
        steps=700,
        batch_size=8,
        lr=3e-3,
        classes=("vessel",),
        num_threads=2,
        gsd_m=None,
        ensemble=4,
        architecture_args={
            "width": 32,
            "dilations": [1, 2, 4, 8, 2, 1],
            "size_head": True,
            "indices": [[1, 3]],
            "context_down": True,
            "fast_stem": True,
        },
        scene_offset=dict(WATER_OFFSET),
        chips=Chips(size=128, positive_fraction=0.45, hard_fraction=0.3, mine_at=(0.4,), sigma_px=1.5),
        validation=Validation(
            every=175,
            patience=0,
            min_distance_px=4,
            min_distance_choices=(4, 6, 8, 10),
            box_suppression_choices=(0.5, 1.0),
        ),
    ),
}

_ADAPTER = pydantic.TypeAdapter(TrainConfig)
