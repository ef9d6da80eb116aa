"""``fieldtruth dataset build``: labelled scenes from a generated kiln inventory over a loopback STAC API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from click.testing import CliRunner
from rasterio.warp import transform_bounds

from fieldtruth.detectors.labels import find_label_file, read_labels
from fieldtruth.ingest.provenance import file_sha256
from fieldtruth.ingest.scene import open_scene
from fieldtruth.pipelines.cli import cli
from fieldtruth.tests.data.kilninventory import (
    kiln_centres,
    kiln_item,
    kiln_scenes,
    write_inventory,
    write_scl,
)
from fieldtruth.tests.data.stacapi import stac_api

SPLIT = ["--split-by", "district", "--train", "d1", "--validation", "d2", "--test", "d3"]


def build_args(decl: Path, imagery: str, out: Path, root: Path, *more: str) -> list[str]:
    """The command line of a build from ``imagery`` (a loopback STAC API or a path)."""
    remote = imagery.startswith("http")
    api = ["--collection", "sentinel-2-l2a", "--allow-host", "127.0.0.1"] if remote else []
    return ["dataset", "build", "--points", str(decl), "--imagery", imagery, *api, "--out", str(out),
            "--window-px", "256", "--allow-dir", str(root), *more]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Three districts (generated scenes, 6 kilns each), their inventory, and a dataset built from them
    through a STAC API serving a clear, a hazier and a cloudy item."""
    root = tmp_path_factory.mktemp("dataset")
    scenes = kiln_scenes(root / "scenes", [1, 2, 3], size=512, n_kilns=6)
    decl = write_inventory(root / "inventory", scenes)
    items = [kiln_item(s, f"S2_{d}", cloud=5.0) for d, s in scenes.items()]
    items += [kiln_item(scenes["d1"], "S2_d1_hazy", cloud=15.0),
              kiln_item(scenes["d2"], "S2_d2_cloudy", cloud=80.0)]
    out = root / "built"
    with stac_api(items) as url:
        result = CliRunner().invoke(cli, build_args(decl, url, out, root, *SPLIT, "--datetime",
                                                    "2024-01-01/2024-03-31", "--max-cloud", "20"))
    assert result.exit_code == 0, result.output
    return {"root": root, "scenes": scenes, "decl": decl, "out": out, "items": items, "output": result.output}


def folders(out: Path) -> list[Path]:
    return sorted(p.parent for p in out.glob("*/*/split.json"))


def test_labels_fall_within_a_pixel_of_the_generators_kilns(world: dict) -> None:
    built = folders(world["out"])
    assert built, "no scene folder written"
    found = 0
    for folder in built:
        scene = open_scene(folder)
        district = json.loads((folder / "split.json").read_text())["regions"][0]
        xs, ys = zip(*kiln_centres(world["scenes"][district]), strict=True)
        from pyproj import Transformer

        x, y = Transformer.from_crs("EPSG:4326", scene.crs, always_xy=True).transform(xs, ys)
        cols, rows = ~scene.transform * (np.array(x), np.array(y))
        labels = read_labels(find_label_file(folder), scene.crs, scene.transform, shape=(scene.height,
                                                                                        scene.width))
        for label in labels:
            row, col = label.centre
            whole = label.geometry.area >= 0.99 * 12 * 12
            if whole:  # a square cut by the window's edge is centred on its visible part
                assert np.min(np.hypot(rows - row, cols - col)) < 1.0
        inside = (cols >= 0) & (cols < scene.width) & (rows >= 0) & (rows < scene.height)
        for row, col in zip(rows[inside], cols[inside], strict=True):
            assert any(label.geometry.buffer(1.0).contains(shapely.Point(col, row)) for label in labels)
        found += int(inside.sum())
    summary = json.loads((world["out"] / "dataset.json").read_text())
    assert found == summary["sites_labelled"] == 18


def test_cloudy_items_are_skipped_and_the_clearest_is_taken_first(world: dict) -> None:
    summary = json.loads((world["out"] / "dataset.json").read_text())
    used = {record["item"] for record in summary["imagery"]}
    assert used == {"S2_d1", "S2_d2", "S2_d3"}  # not the hazier twin of d1, nor the cloudy one of d2
    assert all(p.name.startswith(("S2_d1-", "S2_d2-", "S2_d3-")) for p in folders(world["out"]))
    assert "S2_d1_hazy" not in world["output"] and summary["windows_left_out"]["overlaps-clearer-scene"] > 0


def test_split_keeps_regions_apart(world: dict) -> None:
    named = {"train": {"d1"}, "validation": {"d2"}, "test": {"d3"}}
    footprints: dict[str, list] = {"train": [], "validation": [], "test": []}
    for folder in folders(world["out"]):
        record = json.loads((folder / "split.json").read_text())
        assert folder.parent.name == record["split"]
        assert set(record["regions"]) <= named[record["split"]]
        window = record["window"]
        footprints[record["split"]].append(shapely.box(*transform_bounds(window["crs"], "EPSG:6933",
                                                                         *window["bounds"])))
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        gaps = [p.distance(q) for p in footprints[a] for q in footprints[b]]
        assert gaps and min(gaps) >= 2000.0


def test_provenance_is_recorded_without_site_coordinates(world: dict) -> None:
    import hashlib

    expected = hashlib.sha256(file_sha256(world["decl"].parent / "kilns.csv").encode()).hexdigest()
    for folder in folders(world["out"]):
        record = json.loads((folder / "split.json").read_text())
        assert record["inventory"]["sha256"] == expected and record["inventory"]["licence"] == "CC0-1.0"
        assert record["imagery"]["item"].startswith("S2_d")
        assert record["imagery"]["acquired"][:10] == "2024-02-01"
        described = open_scene(folder).provenance[0]
        assert described.licence == "proprietary" and expected in described.source
    text = (world["out"] / "dataset.json").read_text()
    lon, lat = kiln_centres(world["scenes"]["d1"])[0]
    assert f"{lon:.4f}" not in text and f"{lat:.4f}" not in text and "point_lon" not in text


def test_train_and_evaluate_refuse_a_crossed_split(world: dict, quick_bundle: Path, tmp_path: Path) -> None:
    test_scene = next((world["out"] / "test").iterdir())
    train_scene = next((world["out"] / "train").iterdir())
    trained = CliRunner().invoke(cli, ["train", str(test_scene), "--out", str(tmp_path / "b.safetensors")])
    assert trained.exit_code == 1 and "training refuses" in trained.output
    assert test_scene.name in trained.output
    evaluated = CliRunner().invoke(cli, ["evaluate", "--detector", str(quick_bundle), str(train_scene),
                                         "--out", str(tmp_path / "eval")])
    assert evaluated.exit_code == 1 and "evaluation refuses" in evaluated.output
    assert train_scene.name in evaluated.output and not (tmp_path / "eval").exists()


def test_the_scene_classification_layer_masks_clouds(world: dict, tmp_path: Path) -> None:
    scene = world["scenes"]["d3"]
    scl = write_scl(scene, world["root"] / "SCL_d3.tif", slice(0, 256))
    item = kiln_item(scene, "S2_d3_scl", scl=scl)
    with stac_api([item]) as url:
        result = CliRunner().invoke(cli, build_args(world["decl"], url, tmp_path / "out", world["root"],
                                                    "--split-by", "district", "--test", "d3"))
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "dataset.json").read_text())
    rows = np.array([s.centre[0] for s in scene.sites])
    clear = int((rows > 256 + 6).sum())
    assert summary["windows_left_out"].get("cloudy", 0) >= 1
    assert clear <= summary["sites_labelled"] < len(rows)
    assert all(p.name.endswith(("r0001c0000", "r0001c0001")) for p in folders(tmp_path / "out"))


@pytest.mark.parametrize(("extra", "message"), [
    ("personal:\n  - {column: owner_name, reason: needed to contact the owners}\n", "keeps personal column"),
    ("", "keeps personal column"),
])
def test_a_personal_column_is_refused(world: dict, tmp_path: Path, extra: str, message: str) -> None:
    csv = (world["decl"].parent / "kilns.csv").read_text().splitlines()
    folder = tmp_path / "inv"
    folder.mkdir()
    rows = [csv[0] + ",owner_name", *(r + ",A Person" for r in csv[1:])]
    (folder / "kilns.csv").write_text("\n".join(rows))
    decl = folder / "kilns.yaml"
    text = world["decl"].read_text().replace("keep: [kiln_type, district]",
                                             "keep: [kiln_type, district, owner_name]")
    decl.write_text(text + extra)
    result = CliRunner().invoke(cli, build_args(decl, str(world["scenes"]["d1"].path), tmp_path / "out",
                                                world["root"], *SPLIT))
    assert result.exit_code == 1 and message in result.output and str(decl) in result.output
    assert "A Person" not in result.output and not (tmp_path / "out").exists()


def test_points_outside_every_scene_are_an_error(world: dict, tmp_path: Path) -> None:
    args = build_args(world["decl"], str(world["scenes"]["d2"].path), tmp_path / "out", world["root"],
                      "--split-by", "district", "--train", "d1")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "lies inside any of the 1 scene(s)" in result.output
    assert "generated-kilns" in result.output
    # next variant: an AOI that holds no site
    result = CliRunner().invoke(cli, [*args, "--aoi", "10,10,11,11"])
    assert result.exit_code == 1 and "no site of inventory 'generated-kilns' lies in --aoi" in result.output


def test_an_empty_search_is_an_error(world: dict, tmp_path: Path) -> None:
    decl, root = world["decl"], world["root"]
    with stac_api(world["items"]) as url:
        outside = CliRunner().invoke(cli, build_args(decl, url, tmp_path / "a", root, *SPLIT,
                                                     "--datetime", "2023-06-01/2023-06-30"))
        clouded = CliRunner().invoke(cli, build_args(decl, url, tmp_path / "b", root, *SPLIT,
                                                     "--max-cloud", "1"))
    assert outside.exit_code == 1 and "no scene within datetime='2023-06-01/2023-06-30'" in outside.output
    assert url in outside.output
    assert clouded.exit_code == 1 and "found no 'sentinel-2-l2a' items" in clouded.output


@pytest.mark.parametrize(("split", "message"), [
    (["--train", "d1", "--test", "d1"], "region 'd1' is given to both 'train' and 'test'"),
    (["--train", "d1", "--test", "d9"], "region(s) ['d9'] are not in inventory"),
])
def test_a_split_putting_a_region_in_two_sets_is_an_error(world: dict, tmp_path: Path, split: list[str],
                                                           message: str) -> None:
    args = build_args(world["decl"], str(world["scenes"]["d1"].path), tmp_path / "out", world["root"],
                      "--split-by", "district", *split)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and message in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_too_few_regions_for_a_random_split_is_an_error(world: dict, tmp_path: Path) -> None:
    decl = write_inventory(tmp_path / "one", {"d1": world["scenes"]["d1"]})
    args = build_args(decl, str(world["scenes"]["d1"].path), tmp_path / "out", world["root"],
                      "--split-by", "district")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "holds 1 region(s) (['d1']) for 3 sets" in result.output
    # next variant: two sets wanted, one region still cannot fill them
    result = CliRunner().invoke(cli, [*args, "--fractions", "0.5,0,0.5"])
    assert result.exit_code == 1 and "for 2 sets ['train', 'test']" in result.output


def test_blocks_split_the_ground_and_no_window_straddles_two(world: dict, tmp_path: Path) -> None:
    with stac_api(world["items"][:3]) as url:
        args = build_args(world["decl"], url, tmp_path / "out", world["root"], "--block-km", "3",
                          "--buffer-km", "0.5", "--fractions", "0.5,0,0.5", "--seed", "2",
                          "--window-px", "128")
        result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert summary["split"]["by"] == "blocks of 3000 m" and summary["scenes"]["validation"] == 0
    blocks_of = {}
    for folder in folders(tmp_path / "out"):
        record = json.loads((folder / "split.json").read_text())
        assert len(record["regions"]) == 1 and record["regions"][0].startswith("b")
        blocks_of.setdefault(record["regions"][0], set()).add(record["split"])
        west, south, east, north = transform_bounds(record["window"]["crs"], "EPSG:6933",
                                                    *record["window"]["bounds"])
        assert np.floor((west - 250) / 3000) == np.floor((east + 250) / 3000)
        assert np.floor((south - 250) / 3000) == np.floor((north + 250) / 3000)
    assert all(len(sets) == 1 for sets in blocks_of.values())
    assert summary["windows_left_out"].get("straddling", 0) > 0
