"""What the experiment scripts share: a cross-validation's held-out ports, read as its fold bundles scan
them, their detections ranked against the labels, and natural-colour crops to judge by eye.

Import it as ``fieldtruth.experiments.heldout`` (the editable install of a checkout makes the repository's
folders importable under ``fieldtruth``); it is not part of the installed package.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fieldtruth.detectors.bundle import LoadedBundle, load_bundle
from fieldtruth.detectors.evaluate import LabelShape, ScoredPoint, match_points
from fieldtruth.detectors.scangrid import labels_on_grid, scan_grid
from fieldtruth.detectors.sceneoffset import prepare_scenes
from fieldtruth.imagery.read import read_mosaic
from fieldtruth.ingest.scene import open_scene
from fieldtruth.tests.data.shared import shared_data_root

#: Where the sen2ships ports are unless a script's ``--data`` says otherwise.
SEN2SHIPS = shared_data_root() / "sen2ships"
ZOOM = 3


@dataclasses.dataclass
class HeldOutPort:
    """A held-out port of a cross-validation, read as its fold's bundle scans it."""

    fold: int
    bundle: LoadedBundle
    folder: Path
    raw: Any  # the scene without offsets
    scene: Any  # with the bundle's scene offsets
    grid: Any  # the scan's grid
    labels: list


def held_out_ports(run: Path, data: Path) -> Iterator[HeldOutPort]:
    """Every test port of ``RUN/crossval.json`` (a ``bench_detectors.py`` output), with its fold bundle,
    on the scan's grid."""
    for i, fold in enumerate(json.loads((run / "crossval.json").read_text())["folds"]):
        bundle = load_bundle(run / f"fold{i}.safetensors")
        for port in fold["test"]:
            folder = data / port.removeprefix("sen2ships-")
            raw = open_scene(folder, hash_files=False)
            scene = prepare_scenes([raw], bundle.card.bands, bundle.card.scene_offset)[0]
            grid = scan_grid(bundle, scene)
            yield HeldOutPort(i, bundle, folder, raw, scene, grid, labels_on_grid(folder, scene, grid))


def ranked_truth(kept: list, labels: list) -> list[tuple[Any, bool]]:
    """The detections, highest score first, each with whether it matches a label (one pixel, one-to-one)."""
    ranked = sorted(kept, key=lambda d: -d.score)
    matched = match_points([ScoredPoint(d.col, d.row, d.score, d.label) for d in ranked],
                           [LabelShape(lab.geometry, lab.label) for lab in labels], tolerance=1.0)
    return [(d, true) for d, (_, true) in zip(ranked, matched.ranked, strict=True)]


def natural_colour(scene: Any, grid: Any, bands: tuple[str, ...]) -> np.ndarray:
    """The whole scene on the scan's grid as red-green-blue in 0..1 (2nd-99th percentile stretch)."""
    whole = dataclasses.replace(grid, tile_size=max(grid.shape) * grid.tile_size, halo=0)
    chip = read_mosaic([scene], whole.tile(0, 0), bands)
    rgb = chip.data[[bands.index("red"), bands.index("green"), bands.index("blue")]]
    low, high = np.percentile(rgb[:, chip.valid], [2, 99], axis=1)
    return np.clip((rgb - low[:, None, None]) / (high - low)[:, None, None], 0, 1).transpose(1, 2, 0)


def crop(image: np.ndarray, detection: Any, size: int, zoom: int = ZOOM) -> Image.Image:
    """The ``size`` px square of ``image`` centred on ``detection`` (black beyond the scene), zoomed."""
    row, col = int(detection.row) - size // 2, int(detection.col) - size // 2
    cut = np.zeros((size, size, 3))
    part = image[max(row, 0) : row + size, max(col, 0) : col + size]
    cut[max(-row, 0) : max(-row, 0) + part.shape[0], max(-col, 0) : max(-col, 0) + part.shape[1]] = part
    return Image.fromarray((cut * 255).astype(np.uint8)).resize((size * zoom, size * zoom), Image.NEAREST)
