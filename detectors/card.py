"""Model cards: what a detector is, what it was trained on, how well it did, and what it must not be used for.

The card travels inside the bundle (safetensors metadata) and is copied into every run folder, so a
lead on a map can be traced to the detector, its training data and its measured error rates.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from fieldtruth.detectors.errors import BundleError
from fieldtruth.detectors.metrics import CardMetrics
from fieldtruth.detectors.sceneoffset import check_scene_offset

INTENDED_USE = (
    "Finding candidate sites (leads) in 10 m multispectral imagery for people to verify. "
    "A detection is a lead, never a finding: nothing may be acted on without a recorded human decision."
)
LIMITS = (
    "Scores are not calibrated probabilities. Measured only on the held-out scenes named in `split`; "
    "expect lower precision and recall on other regions, seasons, sensors or pixel sizes. Sites smaller "
    "than about 3 pixels, under cloud, or on invalid pixels are not found. Absence of detections is not "
    "evidence of absence."
)

_TUPLE_FIELDS = ("bands", "norm_mean", "norm_std", "classes", "training_data")


@dataclass(frozen=True)
class ModelCard:
    """The model card of a detector bundle.

    Attributes:
        architecture: architecture name (see :data:`fieldtruth.detectors.registry.ARCHITECTURES`).
        architecture_args: keyword arguments that rebuild the network with it.
        bands: band names the model reads, in input order.
        gsd_m: ground sampling distance the model was trained at, in metres.
        norm_mean: per-band mean of the raw values, subtracted before the model.
        norm_std: per-band standard deviation, divided by before the model.
        classes: class of each heatmap channel.
        threshold: operating score threshold (detections below it are dropped).
        min_distance_px: peaks closer than this (pixels) are merged into the stronger one.
        box_suppression: with a box size head, a weaker peak closer to a kept peak than this fraction of the
            kept peak's predicted box (height, width) is the same site and is dropped (0.5: inside the box).
        receptive_field_px: receptive field of one output in pixels (a scan's halo should be >= half of it).
        scene_offset: per-scene correction added before ``norm_mean``/``norm_std`` (see
            :mod:`fieldtruth.detectors.sceneoffset`); empty for none.
        metrics: figures measured on the scenes the threshold was chosen on, and how training went.
        split: scene ids used for training and validation, and what chose the threshold.
        training_data: provenance of the training scenes (id, files, sha256, source, licence).
        licence: licence of the weights.
        intended_use: what the detector is for.
        limits: known limits.
        created: creation time (ISO 8601, UTC).
        name: short human name of the detector (written into detections).
        weights_sha256: sha256 of the safetensors tensor bytes; filled and checked by the bundle code.
    """

    architecture: str
    architecture_args: dict[str, Any]
    bands: tuple[str, ...]
    gsd_m: float
    norm_mean: tuple[float, ...]
    norm_std: tuple[float, ...]
    classes: tuple[str, ...]
    threshold: float = 0.5
    min_distance_px: int = 6
    box_suppression: float = 0.5
    receptive_field_px: int = 0
    scene_offset: dict[str, Any] = field(default_factory=dict)
    metrics: CardMetrics = field(default_factory=CardMetrics)
    split: dict[str, Any] = field(default_factory=dict)
    training_data: tuple[dict[str, Any], ...] = ()
    licence: str = "CC-BY-4.0"
    intended_use: str = INTENDED_USE
    limits: str = LIMITS
    created: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    name: str = "fieldtruth-centrenet"
    weights_sha256: str = ""

    def __post_init__(self) -> None:
        """Check that the per-band lists agree and the numbers are usable."""
        n = len(self.bands)
        if n == 0 or len(self.norm_mean) != n or len(self.norm_std) != n:
            raise ValueError(
                f"bands, norm_mean and norm_std must have the same non-zero length, got "
                f"{len(self.bands)}, {len(self.norm_mean)}, {len(self.norm_std)}"
            )
        if any(s <= 0 for s in self.norm_std):
            raise ValueError(f"norm_std must be positive, got {self.norm_std!r}")
        if not self.classes:
            raise ValueError("a model card needs at least one class")
        if self.box_suppression < 0:
            raise ValueError(f"box_suppression must be >= 0, got {self.box_suppression!r}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {self.threshold!r}")
        check_scene_offset(self.scene_offset, self.bands)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary."""
        return {**asdict(self), "metrics": self.metrics.to_dict()}

    def to_json(self) -> str:
        """Return the card as JSON text (keys sorted, so equal cards give equal text)."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=1)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "model card") -> ModelCard:
        """Build a card from a parsed JSON object, refusing anything malformed.

        Args:
            data: the parsed JSON.
            source: what the data came from, for error messages (e.g. the bundle path).

        Raises:
            BundleError: the object is not a dict, lacks required fields, or has values of the wrong type.
        """
        if not isinstance(data, dict):
            raise BundleError(f"{source}: expected a JSON object as model card, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in _TUPLE_FIELDS:
            if key in values:
                if not isinstance(values[key], list | tuple):
                    raise BundleError(f"{source}: card field {key!r} must be a list, got {values[key]!r}")
                values[key] = tuple(values[key])
        for key in ("architecture_args", "metrics", "split", "scene_offset"):
            if key in values and not isinstance(values[key], dict):
                raise BundleError(f"{source}: card field {key!r} must be an object, got {values[key]!r}")
        try:
            if "metrics" in values:
                values["metrics"] = CardMetrics.from_dict(values["metrics"], source=source)
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise BundleError(f"{source}: the model card is not valid ({exc}); re-save the bundle") from exc

    @classmethod
    def from_json(cls, text: str, *, source: str = "model card") -> ModelCard:
        """Parse a card from JSON text (see :meth:`from_dict`)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BundleError(f"{source}: the model card is not valid JSON ({exc})") from exc
        return cls.from_dict(data, source=source)
