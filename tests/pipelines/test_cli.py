"""The command line: help everywhere, and bad input as one line naming the input (no traceback)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fieldtruth.pipelines.cli import cli
from fieldtruth.tests.data.rasters import scene_folder, write_band


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), obj={})
    return result.exit_code, result.output


def test_every_command_has_help() -> None:
    code, out = _invoke("--help")
    assert code == 0
    names = [line.split()[0] for line in out.split("Commands:")[1].strip().splitlines()]
    assert {"demo", "scan", "map"} <= set(names)
    for name in names:
        code, text = _invoke(name, "--help")
        assert code == 0 and "Usage:" in text, name


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no rasters here")
    text = tmp_path / "not-a-raster.tif"
    text.write_text("plain text")
    uneven = scene_folder(tmp_path / "uneven", size=96)
    write_band(uneven / "B08.tif", np.ones((80, 80)))
    return {
        "missing": (tmp_path / "does-not-exist", "does not exist"),
        "no rasters": (empty, "no band files"),
        "not a raster": (text, "not a readable"),
        "different sizes": (uneven, "same size"),
    }


@pytest.mark.slow
@pytest.mark.parametrize("case", ["missing", "no rasters", "not a raster", "different sizes"])
def test_bad_imagery_is_one_line_naming_the_input(case: str, tmp_path: Path, quick_bundle: Path) -> None:
    path, expected = _bad_inputs(tmp_path)[case]
    code, out = _invoke(
        "scan", "--imagery", str(path), "--detector", str(quick_bundle), "--out", str(tmp_path / "run")
    )
    assert code == 2  # refused by the scan's preflight: nothing written
    assert not (tmp_path / "run").exists()
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out
    assert path.name in lines[0] and expected in lines[0]
    assert "Traceback" not in out


def test_missing_detector_bundle_is_one_line(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "s", size=64)
    code, out = _invoke(
        "scan",
        "--imagery",
        str(folder),
        "--detector",
        str(tmp_path / "none.safetensors"),
        "--out",
        str(tmp_path / "run"),
    )
    assert code == 2 and "none.safetensors" in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1


def test_verbose_shows_the_traceback(tmp_path: Path, quick_bundle: Path) -> None:
    code, out = _invoke(
        "-v",
        "scan",
        "--imagery",
        str(tmp_path / "nowhere"),
        "--detector",
        str(quick_bundle),
        "--out",
        str(tmp_path / "run"),
    )
    assert code == 2 and "Traceback" in out
