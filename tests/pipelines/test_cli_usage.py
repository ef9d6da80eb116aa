"""Usage mistakes are click's usage errors (exit 2, before any work); library errors stay exit 1, but a scan
its preflight refuses exits 2 too (it cannot start; nothing was written)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fieldtruth.pipelines.cli import cli


def _invoke(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], obj={})
    return result.exit_code, result.output


@pytest.fixture()
def folders(tmp_path: Path) -> dict[str, Path]:
    names = ("a", "b", "run")
    for name in names:
        (tmp_path / name).mkdir()
    config = tmp_path / "train.yaml"
    config.write_text("preset: default\nsteps: 3\n")
    return {**{n: tmp_path / n for n in names}, "config": config, "bundle": tmp_path / "none.safetensors"}


def _cases(f: dict[str, Path]) -> dict[str, tuple[list[object], str]]:
    out = f["a"].parent / "out"
    train = ["train", f["a"], "--out", out / "x.safetensors"]
    evaluate = ["evaluate", f["a"], "--detector", f["bundle"], "--out", out]
    scan = ["scan", "--detector", f["bundle"], "--out", out]
    return {
        "train --resume alone": ([*train, "--resume"], "--resume needs --checkpoint-dir"),
        "train --val also a scene": ([*train, "--val", f["a"]], "--val"),
        "train --preset against the config's": ([*train, "--config", f["config"], "--preset", "demo"],
                                                "disagree"),
        "evaluate --baseline-fit alone": ([*evaluate, "--baseline-fit", f["b"]], "with --baseline"),
        "evaluate --baseline-fit on evaluated scenes": ([*evaluate, "--baseline", "--baseline-fit", f["a"]],
                                                        "--baseline-fit"),
        "scan STAC search of a folder": ([*scan, "--imagery", f["a"], "--collection", "s2"], "--collection"),
        "scan --max-cloud of a folder": ([*scan, "--imagery", f["a"], "--max-cloud", "20"], "--max-cloud"),
        "scan STAC API without --collection": ([*scan, "--imagery", "https://stac.example.org/v1"],
                                               "give --collection"),
        "scan --workers with --scheduler": ([*scan, "--imagery", f["a"], "--scheduler", "tcp://127.0.0.1:1",
                                             "--workers", "4"], "--scheduler cannot go with --workers"),
        "map --export of the shared tier": (["map", f["run"], "--export", "csv", "--out", out / "q.csv",
                                             "--tier", "shared"], "--export cannot go with --tier"),
        "map --export with map options": (["map", f["run"], "--export", "kml", "--out", out / "q.kml",
                                           "--online-basemap", "--no-encrypt"],
                                          "--export cannot go with --no-encrypt, --online-basemap"),
        "map --export without --out": (["map", f["run"], "--export", "gpkg"], "--export needs --out"),
        "map --no-encrypt of the shared map": (["map", f["run"], "--tier", "shared", "--no-encrypt"],
                                               "never encrypted"),
        "-v with -q": (["-v", "-q", "review", "status", f["run"]], "contradict"),
    }


CASES = list(_cases({k: Path(k) for k in ("a", "b", "run", "config", "bundle")}))


@pytest.mark.parametrize("case", CASES)
def test_a_usage_mistake_exits_2_naming_the_options_and_does_nothing(
    case: str, folders: dict[str, Path],
) -> None:
    args, expected = _cases(folders)[case]
    before = sorted(folders["a"].parent.rglob("*"))
    code, output = _invoke(*args)
    assert code == 2, output
    assert "Usage:" in output and expected in output and "Traceback" not in output
    assert sorted(folders["a"].parent.rglob("*")) == before, "a usage mistake must not start any work"


def test_the_same_commands_used_right_go_on_to_the_library(folders: dict[str, Path]) -> None:
    code, output = _invoke("scan", "--imagery", folders["a"], "--detector", folders["bundle"],
                           "--out", folders["run"])
    assert code == 2 and output.startswith("error: ") and "none.safetensors" in output
    assert "Usage:" not in output and not folders["run"].joinpath("run.json").exists()
    code, output = _invoke("evaluate", folders["a"], "--detector", folders["bundle"], "--out", folders["run"])
    assert code == 1 and output.startswith("error: ") and len(output.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_device_cuda_without_cuda_stops_in_one_line_writing_nothing(
    folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch, command: str,
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    case = "train --resume alone" if command == "train" else "evaluate --baseline-fit alone"
    args, _ = _cases(folders)[case]
    code, output = _invoke(*args[:-1 if command == "train" else -2], "--device", "cuda")
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, output
    assert lines[0].startswith("error: --device cuda: no CUDA device") and "--device cpu" in lines[0]
    assert not (folders["a"].parent / "out").exists()
