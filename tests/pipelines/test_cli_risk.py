"""``fieldtruth risk``: writes the risk files into the run folder, and turns bad input into one line."""

from __future__ import annotations

import json
from pathlib import Path

import click
import geopandas as gpd
from click.testing import CliRunner

from fieldtruth.pipelines.cli_risk import risk_command
from fieldtruth.tests.data.runfolder import make_run_folder
from fieldtruth.tests.data.sectors import bomb_zip, personal_values, sites_frame, write_declaration


@click.group()
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Stand-in for the fieldtruth group (the lead registers risk_command there)."""
    ctx.ensure_object(dict)["verbosity"] = 0


cli.add_command(risk_command)


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_risk_command_writes_cells_and_shared_view(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path / "run").path
    frame = sites_frame(150, seed=2, personal=True)
    frame.to_csv(tmp_path / "sites.csv", index=False)
    decl = write_declaration(tmp_path / "decl.yaml", ["sites.csv"])
    (tmp_path / "risk.yaml").write_text("min_coverage: 0.6\n")
    result = CliRunner().invoke(
        cli,
        [
            "risk",
            str(run),
            "--sectors",
            str(decl),
            "--cell-size",
            "2500",
            "--k",
            "4",
            "--config",
            str(tmp_path / "risk.yaml"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "dropped undeclared column(s)" in result.output and "risk_shared.geojson" in result.output
    cells = gpd.read_parquet(run / "risk.parquet")
    assert cells.crs == "EPSG:4326" and (cells["cell_m"] == 2500).all()
    shared = json.loads((run / "risk_shared.geojson").read_text())
    assert shared["k"] == 4 and shared["cell_m"] == 2500
    assert json.loads((run / "risk.json").read_text())["config"]["min_coverage"] == 0.6
    for path in run.iterdir():
        data = path.read_bytes()
        assert not [v for v in personal_values(frame) if v in data], path.name


def test_bad_input_is_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path / "run").path
    bomb_zip(tmp_path / "bomb.zip", megabytes=32)
    decl = write_declaration(tmp_path / "decl.yaml", ["bomb.zip"], geometry={"crs": "EPSG:4326"})
    before = _tree(tmp_path)
    result = CliRunner().invoke(cli, ["risk", str(run), "--sectors", str(decl)])
    assert result.exit_code == 1
    assert "\nerror: " in result.output and "bomb.zip" in result.output and "Traceback" not in result.output
    assert _tree(tmp_path) == before
    (tmp_path / "bad.csv").write_text("kiln_type,lon,lat\nFCBK,87.0,25.5\nFCBK,87.0,95\n")
    bad = write_declaration(tmp_path / "bad.yaml", ["bad.csv"])
    result = CliRunner().invoke(cli, ["risk", str(run), "--sectors", str(bad)])
    assert result.exit_code == 1 and "bad.csv' line 3" in result.output
    assert not (run / "risk.parquet").exists()
