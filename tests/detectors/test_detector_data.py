"""Labels onto the pixel grid, joint augmentation, target heatmaps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from fieldtruth.detectors.data import RandomRot90, render_targets
from fieldtruth.detectors.errors import LabelError
from fieldtruth.detectors.labels import read_labels
from fieldtruth.imagery.synthetic import SyntheticScene


def test_labels_land_on_the_generator_boxes(small_scene: SyntheticScene) -> None:
    labels = read_labels(small_scene.labels_path, small_scene.crs, small_scene.transform)
    assert len(labels) == len(small_scene.sites)
    for label, site in zip(labels, small_scene.sites, strict=True):
        assert label.label == site.label
        minx, miny, maxx, maxy = label.geometry.bounds
        assert (miny, minx, maxy, maxx) == pytest.approx(tuple(site.box), abs=0.05)
        assert label.centre == pytest.approx(site.centre, abs=0.05)
    only = read_labels(
        small_scene.labels_path, small_scene.crs, small_scene.transform, classes=["fishing_camp"]
    )
    assert {lab.label for lab in only} == {"fishing_camp"}


def test_bad_label_files_are_refused(tmp_path: Path, small_scene: SyntheticScene) -> None:
    args = (small_scene.crs, small_scene.transform)
    with pytest.raises(LabelError, match="do not exist"):
        read_labels(tmp_path / "none.geojson", *args)
    bad = tmp_path / "bad.geojson"
    bad.write_text("{not json")
    with pytest.raises(LabelError, match="not valid JSON"):
        read_labels(bad, *args)
    bad.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [87, 25]},
                        "properties": {},
                    }
                ],
            }
        )
    )
    with pytest.raises(LabelError, match="'class'"):
        read_labels(bad, *args)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_quarter_turns_move_boxes_with_pixels(k: int) -> None:
    image = torch.zeros(1, 32, 32)
    image[0, 4:10, 20:23] = 1.0  # rows 4-9, cols 20-22
    boxes = tv_tensors.BoundingBoxes(
        torch.tensor([[20.0, 4.0, 23.0, 10.0]]), format="XYXY", canvas_size=(32, 32)
    )
    turn = RandomRot90()
    out_image = turn.transform(tv_tensors.Image(image), {"k": k})
    out_boxes = turn.transform(boxes, {"k": k})
    x0, y0, x1, y1 = (int(v) for v in out_boxes[0].tolist())
    ones = torch.nonzero(out_image[0])
    assert (int(ones[:, 0].min()), int(ones[:, 0].max()) + 1) == (y0, y1)
    assert (int(ones[:, 1].min()), int(ones[:, 1].max()) + 1) == (x0, x1)


def test_target_heatmap_has_one_at_each_centre_cell() -> None:
    boxes = torch.tensor([[10.0, 20.0, 16.0, 24.0], [40.0, 40.0, 52.0, 46.0]])
    heat, sizes, mask = render_targets(boxes, torch.tensor([0, 1]), 2, 64, 2, 2.0)
    assert heat.shape == (2, 32, 32)
    assert heat[0, 11, 6] == 1.0 and heat[1, 21, 23] == 1.0
    assert int((heat == 1.0).sum()) == 2 and float(heat.max()) == 1.0
    assert int(mask.sum()) == 2
    assert sizes[:, 11, 6].tolist() == pytest.approx([np.log(4.0), np.log(6.0)])
