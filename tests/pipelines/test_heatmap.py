"""The heatmap's cells: a tile's scores cut to its core, in cells aligned with the scan grid."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from rasterio.coords import BoundingBox

from fieldtruth.imagery.grid import Tile
from fieldtruth.pipelines.errors import PreflightError
from fieldtruth.pipelines.heatmap import NODATA, core_scores, heatmap_factor


def _tile(core_px: tuple[int, int], halo: int, res: float = 10.0) -> Tile:
    rows, cols = core_px
    core = BoundingBox(0.0, -rows * res, cols * res, 0.0)
    grown = BoundingBox(core.left - halo * res, core.bottom - halo * res, core.right + halo * res,
                        core.top + halo * res)
    return Tile("r0000c0000", 0, 0, core, grown, "EPSG:32645", res)


def test_the_cells_of_a_core_are_the_model_cells_when_the_halo_is_a_multiple_of_the_stride() -> None:
    tile, stride = _tile((8, 12), halo=4), 2
    chip = (8 + 8, 12 + 8)
    cells = np.arange(chip[0] // stride * chip[1] // stride, dtype=np.float32).reshape(8, 10) / 100
    out = core_scores(cells, stride, np.ones(chip, dtype=bool), tile, factor=stride)
    np.testing.assert_array_equal(out, cells[2:6, 2:8])


def test_cells_without_a_valid_pixel_are_nodata_and_others_keep_their_valid_pixels_best_score() -> None:
    tile, stride = _tile((4, 4), halo=0), 1
    scores = np.array([[0.1, 0.9, 0.2, 0.2], [0.3, 0.4, 0.2, 0.2], [0.5, 0.5, 0.6, 0.6],
                       [0.5, 0.5, 0.6, 0.6]], dtype=np.float32)
    valid = np.ones((4, 4), dtype=bool)
    valid[0, 1] = False  # the 0.9 is not a valid pixel's
    valid[2:, 2:] = False
    out = core_scores(scores, stride, valid, tile, factor=2)
    np.testing.assert_array_equal(out, np.array([[0.4, 0.2], [0.5, NODATA]], dtype=np.float32))


def test_a_core_cut_short_at_the_aoi_edge_gets_a_last_partial_cell() -> None:
    tile = _tile((5, 3), halo=2)
    out = core_scores(np.full((9, 7), 0.7, dtype=np.float32), 1, np.ones((9, 7), dtype=bool), tile, factor=2)
    assert out.shape == (3, 2) and (out == np.float32(0.7)).all()


def test_an_odd_halo_keeps_the_cells_on_the_grid() -> None:
    tile, stride = _tile((4, 4), halo=3), 2
    pixels = np.zeros((10, 10), dtype=np.float32)
    pixels[3:5, 5:7] = 0.8  # core rows 0-1, cols 2-3: one output cell
    cells = pixels.reshape(5, 2, 5, 2).max(axis=(1, 3))
    out = core_scores(cells, stride, np.ones((10, 10), dtype=bool), tile, factor=2)
    assert out.shape == (2, 2) and out[0, 1] == np.float32(0.8)


def test_the_factor_is_the_stride_when_tiles_hold_whole_cells_and_box_detectors_are_refused() -> None:
    card = SimpleNamespace(architecture="centrenet")
    bundle = SimpleNamespace(model=SimpleNamespace(output_stride=4), card=card)
    assert heatmap_factor(bundle, 512) == 4
    assert heatmap_factor(bundle, 510) == 1
    boxes = SimpleNamespace(model=SimpleNamespace(detect=print), card=SimpleNamespace(architecture="fcos"))
    with pytest.raises(PreflightError, match="'fcos' detects boxes: scan without --heatmap"):
        heatmap_factor(boxes, 512)
