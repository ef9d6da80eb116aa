"""Evaluation reports, bootstrap intervals, leave-scenes-out folds and the overlap check, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fieldtruth.detectors.bundle import LoadedBundle
from fieldtruth.detectors.checkpoint import CHECKPOINT_NAME
from fieldtruth.detectors.crossval import check_split, make_folds
from fieldtruth.detectors.errors import TrainingError
from fieldtruth.detectors.evaluate import LabelShape, ScoredPoint, match_points
from fieldtruth.detectors.report import SceneResult, bootstrap, evaluate_bundle
from fieldtruth.imagery.synthetic import SyntheticScene, generate_scene
from fieldtruth.pipelines.cli_detectors import evaluate_command, train_command


def test_report_json_and_html(
    tmp_path: Path, trained: tuple[LoadedBundle, list[float]], small_scene: SyntheticScene
) -> None:
    bundle, _ = trained
    report = evaluate_bundle(bundle, [small_scene.path], tmp_path / "rep")
    saved = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert saved["pooled"] == {**report.pooled.to_dict(), "ci95": {}}  # one scene: no interval
    assert set(saved["pooled"]) == {"precision", "recall", "f1", "ap", "tp", "fp", "fn", "n_labels", "ci95"}
    assert saved["per_scene"].keys() == {"synthetic-seed5-384"} and report.scenes == ("synthetic-seed5-384",)
    assert saved["threshold"] == report.threshold == bundle.card.threshold and saved["grid"] == "scan"
    assert len(saved["curve"]["score"]) >= report.pooled.tp + report.pooled.fp  # below the threshold too
    assert report.warning and "optimistic" in report.warning and saved["warning"] == report.warning
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "data:image/png;base64," in page and "precision" in page


def test_bootstrap_resamples_whole_scenes() -> None:
    shape = [LabelShape(__import__("shapely").geometry.box(0, 0, 4, 4), "v")]
    good = SceneResult("a", match_points([ScoredPoint(2, 2, 0.9, "v")], shape))
    bad = SceneResult("b", match_points([ScoredPoint(9, 9, 0.9, "v")], shape))
    ci = bootstrap([good, bad], 0.5, n=200)
    assert ci.f1 == (0.0, 1.0) and ci.to_dict()["f1"] == [0.0, 1.0]
    assert bootstrap([good], 0.5) is None


def test_folds_hold_whole_scenes_out(tmp_path: Path) -> None:
    dirs = [tmp_path / name for name in "abcdefghi"]
    folds = make_folds(dirs, 3)
    assert [[p.name for p in f.test] for f in folds] == [["a", "b", "c"], ["d", "e", "f"], ["g", "h", "i"]]
    for fold in folds:
        assert not set(fold.test) & (set(fold.train) | set(fold.validation))
        assert len(fold.validation) == 1 and len(fold.train) == 5
    with pytest.raises(ValueError, match="k"):
        make_folds(dirs[:2], 2)
    for fold in make_folds(dirs, 3, validation=0):  # every non-test scene trained on, threshold cross-fitted
        assert fold.validation == () and len(fold.train) == 6 and not set(fold.test) & set(fold.train)


def test_folds_can_validate_on_several_scenes_with_most_labels(tmp_path: Path) -> None:
    dirs = []
    for name, labels in zip("abcdefghi", [5, 1, 2, 9, 3, 7, 4, 8, 6], strict=True):
        (tmp_path / name).mkdir()
        (tmp_path / name / "scene.json").write_text(json.dumps({"labels": labels}))
        dirs.append(tmp_path / name)
    folds = make_folds(dirs, 3, validation=2)
    assert [[p.name for p in f.validation] for f in folds] == [["d", "h"], ["h", "i"], ["d", "f"]]
    for fold in folds:
        assert len(fold.train) == 4 and not set(fold.validation) & (set(fold.train) | set(fold.test))
    with pytest.raises(ValueError, match="none to train on"):
        make_folds(dirs, 3, validation=6)


def test_split_with_overlapping_scenes_is_refused(tmp_path: Path, small_scene: SyntheticScene) -> None:
    twin = tmp_path / "twin"  # another folder holding the same pixels: overlaps on the ground
    twin.mkdir()
    for f in small_scene.path.iterdir():
        (twin / f.name).symlink_to(f)
    with pytest.raises(TrainingError, match="overlaps evaluation scene"):
        check_split([twin], [small_scene.path])
    far = generate_scene(tmp_path / "far", seed=6, size=128, epsg=32633)  # another UTM zone: no overlap
    check_split([far.path], [small_scene.path])
    with pytest.raises(TrainingError, match="both trained on and evaluated"):
        check_split([small_scene.path], [small_scene.path])


def _cli() -> click.Group:
    @click.group()
    @click.pass_context
    def root(ctx: click.Context) -> None:
        ctx.obj = {"verbosity": 0}

    root.add_command(train_command)
    root.add_command(evaluate_command)
    return root


def test_cli_train_then_evaluate(tmp_path: Path, small_scene: SyntheticScene) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "preset: default\nbatch_size: 4\nchips: {size: 32, mine_at: []}\n"
        "classes: [brick_kiln]\narchitecture_args: {width: 8, dilations: [1]}\n"
    )
    runner = CliRunner()
    bundle = tmp_path / "b.safetensors"
    result = runner.invoke(
        _cli(),
        [
            "train",
            str(small_scene.path),
            "--out",
            str(bundle),
            "--config",
            str(config),
            "--steps",
            "3",
            "--seed",
            "1",
            "--threads",
            "1",
            "--checkpoint-dir",
            str(tmp_path / "ckpt"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "threshold" in result.output and bundle.is_file()
    assert (tmp_path / "ckpt" / CHECKPOINT_NAME).is_file()
    result = runner.invoke(
        _cli(), ["evaluate", "--detector", str(bundle), str(small_scene.path), "--out", str(tmp_path / "ev")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ev" / "report.json").is_file() and "pooled" in result.output


def test_cli_errors_are_one_line(tmp_path: Path, small_scene: SyntheticScene) -> None:
    runner = CliRunner()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x80\x04not a bundle at all")
    result = runner.invoke(
        _cli(), ["evaluate", "--detector", str(bad), str(small_scene.path), "--out", str(tmp_path / "e")]
    )
    assert result.exit_code == 1 and "error:" in result.output and "bad.safetensors" in result.output
    result = runner.invoke(
        _cli(), ["train", str(small_scene.path), "--out", str(tmp_path / "x.safetensors"), "--resume"]
    )
    assert result.exit_code == 2 and "--checkpoint-dir" in result.output  # a usage mistake: click's exit 2
    cfg = tmp_path / "c.yaml"
    for text, says in (("stepz: 3\n", "stepz"), ("chip_size: 32\n", "is now 'chips.size'")):
        cfg.write_text(text)
        result = runner.invoke(
            _cli(),
            ["train", str(small_scene.path), "--out", str(tmp_path / "x.safetensors"), "--config", str(cfg)],
        )
        assert result.exit_code == 1 and says in result.output
