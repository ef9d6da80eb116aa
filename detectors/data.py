"""Labelled chips for training: scenes in memory, chips sampled around sites and at random, joint
augmentation.

Augmentation uses :mod:`torchvision.transforms.v2` on the raw image and the site boxes together
(flips, 90 degree rotations, a brightness gain), so the targets always move with the pixels; the
centre heatmap (a Gaussian per site, exactly 1 in the cell holding the centre, CenterNet-style) is
drawn from the augmented boxes at the model's output resolution.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from fieldtruth.detectors.errors import TrainingError
from fieldtruth.detectors.labels import POINT_SIZE_PX, PixelLabel, find_label_file, read_labels
from fieldtruth.detectors.sceneoffset import prepare_scenes
from fieldtruth.ingest.errors import IngestError
from fieldtruth.ingest.scene import Scene, open_scene

log = logging.getLogger(__name__)


@dataclass
class TrainingScene:
    """A labelled scene held in memory (small scenes only).

    Attributes:
        id: scene id. data: float32 ``(bands, H, W)`` raw values. valid: bool ``(H, W)``.
        labels: sites on the pixel grid. provenance: JSON-ready description of its files.
        ground_gsd_m: ground size of a pixel at the scene's centre (metres).
        negatives: (row, col) of known look-alikes (rejected leads): training draws chips around them
            as around mined hard negatives.
        supervised: bool ``(H, W)``: partial labels, the loss ignores the heatmap away from these pixels
            (neither site nor background); every pixel is supervised when None.
    """

    id: str
    data: np.ndarray
    valid: np.ndarray
    labels: list[PixelLabel]
    provenance: dict[str, Any] = field(default_factory=dict)
    ground_gsd_m: float = 10.0
    negatives: list[tuple[float, float]] = field(default_factory=list)
    supervised: np.ndarray | None = None


def open_scene_with_bands(path: Path, bands: tuple[str, ...], *, role: str) -> Scene:
    """Open a scene folder that must hold ``bands`` (``role`` names it in errors: training, evaluation).

    Raises:
        TrainingError: the folder is not a readable scene or lacks one of ``bands``.
    """
    try:
        scene = open_scene(path)
    except IngestError as exc:
        raise TrainingError(f"{role} scene {str(path)!r} cannot be opened: {exc}") from exc
    missing = [b for b in bands if b not in scene.bands]
    if missing:
        raise TrainingError(f"{role} scene {str(path)!r} lacks band(s) {missing!r}; it has "
                            f"{scene.band_names!r}")
    return scene


def load_training_scene(
    path: Path, bands: tuple[str, ...], scene_offset: dict[str, Any] | None = None,
    point_size_m: float | None = None,
) -> TrainingScene:
    """Read a scene folder's bands and its label file (see :func:`find_label_file`) onto the scene grid.

    Point labels become squares of ``point_size_m`` on the ground (of
    :data:`~fieldtruth.detectors.labels.POINT_SIZE_PX` pixels when None). With a ``scene_offset`` (see
    :mod:`fieldtruth.detectors.sceneoffset`), the scene's offsets are added to its valid pixels, as a scan
    of it would add them.

    Raises:
        TrainingError: the folder is not a readable scene or lacks one of ``bands``.
        LabelError: the labels cannot be read.
    """
    path = Path(path)
    scene = open_scene_with_bands(path, bands, role="training")
    scene = prepare_scenes([scene], bands, scene_offset or {})[0]
    data = scene.read(bands)
    valid = np.ones(data.shape[1:], dtype=bool)
    if scene.nodata is not None:
        valid = np.all(data != scene.nodata, axis=0)
    valid &= np.any(data != 0, axis=0) & np.all(np.isfinite(data), axis=0)
    offsets = scene.offsets_for(bands)
    if offsets is not None:
        data = np.where(valid, data + offsets, 0).astype(np.float32)
    ground = ground_pixel_size(scene)
    size_px = POINT_SIZE_PX if point_size_m is None else point_size_m / ground
    labels = read_labels(find_label_file(path), scene.crs, scene.transform, shape=valid.shape,
                         point_size_px=size_px)
    described = {k: v for k, v in scene.describe().items()
                 if k in ("id", "crs", "size", "acquired", "provenance") or (k == "band_offsets" and v)}
    return TrainingScene(scene.id, data, valid, labels, described, ground)


def ground_pixel_size(scene: Any) -> float:
    """Ground size (metres) of a scene pixel at its centre: geodesic distance to the next pixel.

    Web Mercator and geographic pixels are not ground metres (a 10 m EPSG:3857 pixel at 54 N spans 5.9 m).
    """
    from pyproj import Geod, Transformer

    height, width = scene.height, scene.width
    to_lonlat = Transformer.from_crs(scene.crs, "EPSG:4326", always_xy=True)
    x0, y0 = scene.transform * (width / 2, height / 2)
    x1, y1 = scene.transform * (width / 2 + 1, height / 2)
    x2, y2 = scene.transform * (width / 2, height / 2 + 1)
    (lon0, lon1, lon2), (lat0, lat1, lat2) = to_lonlat.transform([x0, x1, x2], [y0, y1, y2])
    geod = Geod(ellps="WGS84")
    across = geod.inv(lon0, lat0, lon1, lat1)[2]
    down = geod.inv(lon0, lat0, lon2, lat2)[2]
    return float((across + down) / 2)


def band_statistics(
    scenes: list[TrainingScene], step: int = 4
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-band mean and standard deviation over the valid pixels of the scenes (every ``step``-th pixel)."""
    samples = [s.data[:, ::step, ::step][:, s.valid[::step, ::step]] for s in scenes]
    values = np.concatenate(samples, axis=1).astype(np.float64)
    if values.shape[1] < 2:
        raise TrainingError("the training scenes hold no valid pixels to compute normalisation statistics "
                            "from")
    std = np.maximum(values.std(axis=1), 1e-3)
    return tuple(float(v) for v in values.mean(axis=1)), tuple(float(v) for v in std)


class RandomRot90(v2.Transform):
    """Rotate images and boxes by a random multiple of 90 degrees (square chips)."""

    _transformed_types = (tv_tensors.Image, tv_tensors.BoundingBoxes, tv_tensors.Mask)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        """Draw the number of quarter turns."""
        return {"k": int(torch.randint(0, 4, ()).item())}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        """Rotate counter-clockwise ``k`` times: pixel (x, y) goes to (y, width - x) per turn."""
        k = params["k"]
        if k == 0:
            return inpt
        if isinstance(inpt, tv_tensors.BoundingBoxes):
            boxes = inpt.as_subclass(torch.Tensor)
            h, w = inpt.canvas_size
            for _ in range(k):
                x0, y0, x1, y1 = boxes.unbind(-1)
                boxes = torch.stack([y0, w - x1, y1, w - x0], dim=-1)
                h, w = w, h
            return tv_tensors.wrap(boxes, like=inpt, canvas_size=(h, w))
        return tv_tensors.wrap(torch.rot90(inpt.as_subclass(torch.Tensor), k, dims=(-2, -1)), like=inpt)


class RandomGain(v2.Transform):
    """Multiply raw band values by a random overall gain with a per-band jitter (brightness)."""

    _transformed_types = (tv_tensors.Image,)

    def __init__(self, low: float = 0.85, high: float = 1.15, band_jitter: float = 0.03) -> None:
        """Build the transform: gain uniform in ``[low, high]``, each band jittered by ``+-band_jitter``."""
        super().__init__()
        self.low, self.high, self.band_jitter = low, high, band_jitter

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        """Draw the per-band gains."""
        bands = next(x.shape[-3] for x in flat_inputs if isinstance(x, tv_tensors.Image))
        gain = torch.empty(()).uniform_(self.low, self.high)
        jitter = torch.empty(bands).uniform_(-self.band_jitter, self.band_jitter)
        return {"gain": gain * (1 + jitter)}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        """Apply the gains to an image."""
        return tv_tensors.wrap(inpt.as_subclass(torch.Tensor) * params["gain"][:, None, None], like=inpt)


def default_augmentation(gain: tuple[float, float] = (0.85, 1.15), band_jitter: float = 0.03) -> v2.Transform:
    """Flips, quarter turns and brightness (overall gain range, per-band jitter), applied jointly to the
    image and its boxes."""
    return v2.Compose([v2.RandomHorizontalFlip(), v2.RandomVerticalFlip(), RandomRot90(),
                       RandomGain(*gain, band_jitter)])


def render_targets(
    boxes: torch.Tensor, classes: torch.Tensor, num_classes: int, size: int, stride: int, sigma_px: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Centre heatmap, log box sizes and their mask at the output resolution.

    Args:
        boxes: ``(n, 4)`` XYXY boxes in chip pixels. classes: ``(n,)`` class indices.
        num_classes: heatmap channels. size: chip size (pixels). stride: output stride.
        sigma_px: least Gaussian radius in pixels (larger sites get a quarter of the box's geometric mean
            side).

    Returns:
        heatmap ``(classes, s, s)`` with exactly 1 in each centre's cell, sizes ``(2, s, s)`` (log height,
        log width in pixels) and mask ``(1, s, s)``, with ``s = ceil(size / stride)``.
    """
    cells = -(-size // stride)
    heat = torch.zeros(num_classes, cells, cells)
    sizes = torch.zeros(2, cells, cells)
    mask = torch.zeros(1, cells, cells)
    grid = (torch.arange(cells, dtype=torch.float32) + 0.5) * stride
    for box, k in zip(boxes.tolist(), classes.tolist(), strict=True):
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        width, height = max(box[2] - box[0], 0), max(box[3] - box[1], 0)
        sigma = max(sigma_px, float(np.sqrt(width * height)) / 4)
        gy = torch.exp(-((grid - cy) ** 2) / (2 * sigma**2))
        gx = torch.exp(-((grid - cx) ** 2) / (2 * sigma**2))
        heat[k] = torch.maximum(heat[k], gy[:, None] * gx[None, :])
        i, j = int(cy // stride), int(cx // stride)
        if 0 <= i < cells and 0 <= j < cells:
            heat[k, i, j] = 1.0
            sizes[:, i, j] = torch.tensor([np.log(max(height, 1.0)), np.log(max(width, 1.0))])
            mask[0, i, j] = 1.0
    return heat, sizes, mask


class ChipDataset(Dataset):
    """Chips sampled around labelled sites (``positive_fraction`` of them), around hard negatives
    (``hard_fraction``, once :attr:`hard` holds points, e.g. false detections mined during training)
    and uniformly at random.

    Item ``i`` is drawn from ``numpy.random.default_rng((seed, i))``, so the chip positions are the
    same on every run; augmentation draws from torch's generator (seed it with ``torch.manual_seed``).
    """

    def __init__(
        self,
        scenes: list[TrainingScene],
        *,
        classes: tuple[str, ...],
        norm: tuple[tuple[float, ...], tuple[float, ...]],
        chip_size: int,
        length: int,
        stride: int,
        positive_fraction: float = 0.5,
        hard_fraction: float = 0.0,
        sigma_px: float = 2.0,
        seed: int = 0,
        augment: v2.Transform | None = None,
    ) -> None:
        """See the class docstring; ``norm`` is (mean, std) per band, ``length`` the number of items."""
        if any(min(s.valid.shape) < chip_size for s in scenes):
            raise TrainingError(f"every training scene must be at least {chip_size} x {chip_size} pixels "
                                "(the chip size)")
        self.scenes, self.classes, self.chip, self.length = scenes, classes, chip_size, length
        self.stride, self.positive_fraction, self.sigma_px = stride, positive_fraction, sigma_px
        self.seed = seed
        self.augment, self.hard_fraction = augment, hard_fraction
        #: (scene index, row, col) of the scenes' known negatives (rejected leads); always sampled.
        self.negatives = [(i, float(r), float(c)) for i, s in enumerate(scenes) for r, c in s.negatives]
        #: (scene index, row, col) of hard negatives to sample chips around: the known ones and those mined.
        self.hard: list[tuple[int, float, float]] = list(self.negatives)
        self.mean = torch.tensor(norm[0], dtype=torch.float32)[:, None, None]
        self.std = torch.tensor(norm[1], dtype=torch.float32)[:, None, None]
        self.sites = [self._sites(s) for s in scenes]
        self.anchors = [(i, n) for i, sites in enumerate(self.sites) for n in range(len(sites[0]))]
        self.fills = [np.where(s.valid[None], s.data, self.mean.numpy()).astype(np.float32) for s in scenes]

    def _sites(self, scene: TrainingScene) -> tuple[np.ndarray, np.ndarray]:
        keep = [lab for lab in scene.labels if lab.label in self.classes]
        boxes = np.array([lab.geometry.bounds for lab in keep], dtype=np.float32).reshape(-1, 4)
        kinds = np.array([self.classes.index(lab.label) for lab in keep], dtype=np.int64)
        return boxes, kinds

    def __len__(self) -> int:
        """Number of chips an epoch yields."""
        return self.length

    def _origin(self, rng: np.random.Generator) -> tuple[int, int, int]:
        chip, draw = self.chip, rng.random()
        margin = min(8, chip // 4)
        if self.anchors and draw < self.positive_fraction:
            s, n = self.anchors[int(rng.integers(len(self.anchors)))]
            x0, y0, x1, y1 = self.sites[s][0][n]
            row, col = (y0 + y1) / 2, (x0 + x1) / 2
        elif self.hard and draw < self.positive_fraction + self.hard_fraction:
            s, row, col = self.hard[int(rng.integers(len(self.hard)))]
        else:
            s = int(rng.integers(len(self.scenes)))
            height, width = self.scenes[s].valid.shape
            row, col = rng.uniform(0, height), rng.uniform(0, width)
            margin = 0
        r = row - rng.uniform(margin, chip - margin) if margin else row - chip / 2
        c = col - rng.uniform(margin, chip - margin) if margin else col - chip / 2
        h, w = self.scenes[s].valid.shape
        return s, int(np.clip(r, 0, h - chip)), int(np.clip(c, 0, w - chip))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (normalised image, heatmap, log sizes, size mask) for chip ``index``; with partial
        labels, heatmap cells holding no supervised pixel are -1 (the loss ignores them)."""
        x, boxes, kinds, known = self._item(index)
        heat, sizes, mask = render_targets(boxes, kinds, len(self.classes), self.chip, self.stride,
                                           self.sigma_px)
        if known is not None:
            cells = torch.nn.functional.max_pool2d(known.float()[None], self.stride, ceil_mode=True)[0]
            heat = torch.where((cells > 0) | (heat >= 1), heat, -1.0)
        return x, heat, sizes, mask

    def boxes_item(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (normalised image, XYXY boxes in chip pixels, class indices) for chip ``index``."""
        return self._item(index)[:3]

    def _item(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(image, boxes, classes, supervised ``(chip, chip)`` pixels or None), augmented together."""
        s, r0, c0 = self._origin(np.random.default_rng((self.seed, index)))
        chip = self.chip
        image = tv_tensors.Image(torch.from_numpy(self.fills[s][:, r0 : r0 + chip, c0 : c0 + chip].copy()))
        all_boxes, all_kinds = self.sites[s]
        boxes = all_boxes - np.array([c0, r0, c0, r0], dtype=np.float32)
        centre_x, centre_y = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        near = (centre_x > -3 * self.sigma_px) & (centre_x < chip + 3 * self.sigma_px)
        near &= (centre_y > -3 * self.sigma_px) & (centre_y < chip + 3 * self.sigma_px)
        box_tv = tv_tensors.BoundingBoxes(
            torch.from_numpy(boxes[near]), format="XYXY", canvas_size=(chip, chip)
        )
        kinds = torch.from_numpy(all_kinds[near])
        supervised = self.scenes[s].supervised
        known = None if supervised is None else tv_tensors.Mask(
            torch.from_numpy(supervised[None, r0 : r0 + chip, c0 : c0 + chip].copy()))
        if self.augment is not None:
            image, box_tv, kinds, known = self.augment(image, box_tv, kinds, known)
        x = (image.as_subclass(torch.Tensor) - self.mean) / self.std
        known = None if known is None else known.as_subclass(torch.Tensor)[0]
        return x, box_tv.as_subclass(torch.Tensor), kinds, known
