"""``fieldtruth dataset build`` writes background windows (negatives only) away from every inventory site."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from click.testing import CliRunner
from pyproj import Transformer
from rasterio.warp import transform_bounds

from fieldtruth.detectors.data import load_training_scene
from fieldtruth.detectors.labels import find_label_file, read_labels
from fieldtruth.pipelines.cli import cli
from fieldtruth.tests.data.kilninventory import kiln_centres, kiln_item, kiln_scenes, write_inventory
from fieldtruth.tests.data.stacapi import stac_api

#: The inventory lists only the kilns in the top rows of each 1,024 px district: the rest is ground with
#: no listed site, where background windows can be cut.
LISTED_ROWS = 300
SPLIT = ["--split-by", "district", "--train", "d1", "--validation", "d2", "--test", "d3"]
WINDOW_PX = 256
BUFFER_KM = 1.0


def _build(world: dict, out: Path, *more: str) -> dict:
    with stac_api(world["items"]) as url:
        args = ["dataset", "build", "--points", str(world["decl"]), "--imagery", url, "--collection",
                "sentinel-2-l2a", "--allow-host", "127.0.0.1", "--allow-dir", str(world["root"]), "--out",
                str(out), "--window-px", str(WINDOW_PX), "--buffer-km", str(BUFFER_KM), *more]
        result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return {"summary": json.loads((out / "dataset.json").read_text()), "output": result.output}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("background")
    scenes = kiln_scenes(root / "scenes", [1, 2, 3], size=1024, n_kilns=8)
    decl = write_inventory(root / "inventory", scenes, above_row=LISTED_ROWS)
    world = {"root": root, "scenes": scenes, "decl": decl,
             "items": [kiln_item(s, f"S2_{d}") for d, s in scenes.items()]}
    return world | _build(world, root / "built", *SPLIT)


def _records(out: Path) -> list[tuple[Path, dict]]:
    return [(p.parent, json.loads(p.read_text())) for p in sorted(out.glob("*/*/split.json"))]


def test_each_set_gets_background_windows_up_to_its_share(world: dict) -> None:
    summary = world["summary"]
    background = summary["background_scenes"]
    for name in ("train", "validation", "test"):
        labelled = summary["scenes"][name] - background[name]
        assert labelled > 0 and 1 <= background[name] <= math.ceil(0.5 * labelled), (name, summary)
    assert (
        f"train: {summary['scenes']['train']} scene(s) ({background['train']} background)" in world["output"]
    )


def test_background_windows_are_declared_and_read_as_negatives(world: dict) -> None:
    declared = [(f, r) for f, r in _records(world["root"] / "built") if r["background"]]
    assert len(declared) == sum(world["summary"]["background_scenes"].values())
    for folder, record in declared:
        labels = json.loads((folder / "labels.geojson").read_text())
        assert labels["features"] == [] and labels["background"] is True and record["labels"] == 0
        scene = load_training_scene(folder, ("blue", "green", "red", "nir"))
        assert scene.labels == [] and scene.valid.mean() >= 0.8
        assert "background" in json.loads((folder / "scene.json").read_text())["source"]
    labelled = [f for f, r in _records(world["root"] / "built") if not r["background"]]
    assert all(read_labels(find_label_file(f), *_grid(f)) for f in labelled)


def _grid(folder: Path) -> tuple:
    from fieldtruth.ingest.scene import open_scene

    scene = open_scene(folder)
    return scene.crs, scene.transform


def test_background_windows_keep_away_from_every_site_and_in_their_set(world: dict) -> None:
    named = {"train": "d1", "validation": "d2", "test": "d3"}
    records = _records(world["root"] / "built")
    lonlat = np.vstack([kiln_centres(s, above_row=LISTED_ROWS) for s in world["scenes"].values()])
    gap = max(BUFFER_KM * 1000, WINDOW_PX * 10.0)
    for folder, record in records:
        if not record["background"]:
            continue
        assert folder.parent.name == record["split"] and record["regions"] == [named[record["split"]]]
        window = record["window"]
        x, y = Transformer.from_crs("EPSG:4326", window["crs"], always_xy=True).transform(*lonlat.T)
        core = shapely.box(*window["bounds"])
        assert min(core.distance(shapely.Point(a, b)) for a, b in zip(x, y, strict=True)) >= gap - 1e-6
        mine = shapely.box(*transform_bounds(window["crs"], "EPSG:6933", *window["bounds"]))
        for other, r in records:
            if other != folder:
                theirs = shapely.box(
                    *transform_bounds(r["window"]["crs"], "EPSG:6933", *r["window"]["bounds"])
                )
                assert mine.intersection(theirs).area <= 0.01 * mine.area


def test_no_background_when_its_share_is_zero(world: dict, tmp_path: Path) -> None:
    built = _build(world, tmp_path / "none", *SPLIT, "--background-share", "0")
    assert built["summary"]["background_scenes"] == {"train": 0, "validation": 0, "test": 0}
    assert not any(r["background"] for _, r in _records(tmp_path / "none"))
    assert built["summary"]["labels"] == world["summary"]["labels"]  # the labelled windows are the same


def test_block_splits_put_background_in_a_block_with_sites(world: dict, tmp_path: Path) -> None:
    built = _build(world, tmp_path / "blocks", "--block-km", "130", "--fractions", "0.5,0,0.5", "--seed", "1")
    assert sum(built["summary"]["background_scenes"].values()) > 0
    sets_of_block: dict[str, set] = {}
    for _, record in _records(tmp_path / "blocks"):
        sets_of_block.setdefault(record["regions"][0], set()).add(record["split"])
        if record["background"]:
            assert record["regions"][0] in built["summary"]["regions"][record["split"]]
    assert all(len(sets) == 1 for sets in sets_of_block.values())
