"""The tile grid: cores partition the AOI exactly; halos and ownership of points."""

from __future__ import annotations

import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.coords import BoundingBox
from rasterio.crs import CRS

from fieldtruth.imagery.errors import GridError
from fieldtruth.imagery.grid import TileGrid

UTM = CRS.from_epsg(32645)


@st.composite
def grids(draw: st.DrawFn) -> TileGrid:
    left = draw(st.floats(-1e5, 1e6, allow_nan=False))
    bottom = draw(st.floats(0, 9e6, allow_nan=False))
    resolution = draw(st.sampled_from([0.5, 3.0, 10.0, 20.0, 30.0]))
    tile_size = draw(st.integers(16, 1536))  # up to the largest core a scan chooses itself
    span = tile_size * resolution  # at most 12 x 12 tiles, so the property is checked quickly
    width = draw(st.floats(resolution, 12 * span))
    height = draw(st.floats(resolution, 12 * span))
    halo = draw(st.integers(0, 512))
    bounds = BoundingBox(left, bottom, left + width, bottom + height)
    return TileGrid(bounds, UTM, resolution, tile_size, halo)


@settings(max_examples=60, deadline=None)
@given(grids())
def test_cores_partition_the_aoi_without_gap_or_overlap(grid: TileGrid) -> None:
    cores = [shapely.box(*t.core) for t in grid]
    aoi = shapely.box(*grid.bounds)
    union = shapely.union_all(cores)
    assert union.symmetric_difference(aoi).area <= 1e-6 * aoi.area
    assert sum(c.area for c in cores) == pytest.approx(aoi.area, rel=1e-9)
    assert len(cores) == len(grid)


@settings(max_examples=60, deadline=None)
@given(grids(), st.floats(0, 1), st.floats(0, 1))
def test_every_point_of_the_aoi_belongs_to_exactly_one_core(grid: TileGrid, fx: float, fy: float) -> None:
    left, bottom, right, top = grid.bounds
    x = left + fx * (right - left) * 0.999999
    y = top - fy * (top - bottom) * 0.999999
    owners = [t.id for t in grid if t.in_core(x, y)]
    assert len(owners) == 1


@settings(max_examples=40, deadline=None)
@given(grids())
def test_halo_grows_the_core_by_the_margin(grid: TileGrid) -> None:
    tile = next(iter(grid))
    margin = grid.halo * grid.resolution
    assert tile.halo.left == pytest.approx(tile.core.left - margin)
    assert tile.halo.top == pytest.approx(tile.core.top + margin)
    rows, cols = tile.shape
    assert cols * grid.resolution == pytest.approx(tile.halo.right - tile.halo.left, abs=grid.resolution)


def test_geographic_crs_is_refused() -> None:
    with pytest.raises(GridError, match="projected"):
        TileGrid(BoundingBox(0, 0, 1, 1), CRS.from_epsg(4326), 0.0001)


def test_empty_aoi_is_refused() -> None:
    with pytest.raises(GridError, match="empty"):
        TileGrid(BoundingBox(10, 10, 10, 20), UTM, 10.0)


def test_core_valid_fraction_ignores_the_halo() -> None:
    import numpy as np

    from fieldtruth.imagery.chip import Chip

    grid = TileGrid(BoundingBox(0, 0, 1000, 1000), CRS.from_epsg(32645), 10.0, tile_size=50, halo=7)
    tile = grid.tile(0, 0)
    assert tile.halo_px == 7 and tile.shape == (64, 64)
    valid = np.zeros(tile.shape, bool)
    valid[:7, :] = True  # data only in the top halo rows
    chip = Chip(np.zeros((1, *tile.shape), np.float32), valid, tile.transform, grid.crs, tile.id, ("red",))
    assert chip.valid_fraction > 0 and chip.core_valid_fraction(tile.halo_px) == 0
    valid[7:32, 7:57] = True  # the core's upper half
    assert chip.core_valid_fraction(tile.halo_px) == pytest.approx(0.5)


@settings(max_examples=40, deadline=None)
@given(grids(), st.integers(1, 4))
def test_blocks_group_every_tile_once_into_cells_whose_window_covers_them(grid: TileGrid, side: int) -> None:
    blocks = grid.blocks(side)
    grouped = [t.id for b in blocks for t in b.tiles]
    assert sorted(grouped) == sorted(t.id for t in grid) and len(set(grouped)) == len(grouped)
    for block in blocks:
        assert 1 <= len(block.tiles) <= side * side
        assert len({(t.row // side, t.col // side) for t in block.tiles}) == 1
        # every tile of the cell is there: the window is exactly the union of their halos
        union = shapely.union_all([shapely.box(*t.halo) for t in block.tiles])
        assert union.bounds == pytest.approx(tuple(block.window.halo))


def test_a_blocks_window_is_its_whole_cell_whichever_tiles_are_left() -> None:
    # 3 x 3 tiles, the last ones 50 px
    grid = TileGrid(BoundingBox(0, 0, 2500, 2500), UTM, 10.0, tile_size=100, halo=8)
    whole = {b.window.id: b for b in grid.blocks(2)}
    left = grid.blocks(2, [grid.tile(0, 1), grid.tile(2, 2)])
    assert [[t.id for t in b.tiles] for b in left] == [["r0000c0001"], ["r0002c0002"]]
    for block in left:
        assert block.window == whole[block.window.id].window
    assert left[0].window.halo == BoundingBox(-80, 500 - 80, 2000 + 80, 2500 + 80)
    assert [len(b.tiles) for b in grid.blocks(2)] == [4, 2, 2, 1]
    assert [len(b.tiles) for b in grid.blocks(1)] == [1] * 9
    with pytest.raises(GridError, match="at least one tile"):
        grid.blocks(0)


@pytest.mark.parametrize(("tiles_per_side", "block"), [(1, 1), (4, 1), (6, 1), (7, 2), (20, 2)])
def test_regions_too_small_to_keep_workers_busy_with_blocks_are_read_tile_by_tile(
    tiles_per_side: int, block: int
) -> None:
    side = tiles_per_side * 100 * 10.0
    grid = TileGrid(BoundingBox(0, 0, side, side), UTM, 10.0, tile_size=100, halo=8)
    assert grid.default_block() == block
    assert len(grid.blocks(block)) >= 16 or block == 1
