"""``fieldtruth risk``: score a run's risk cells with declared sector datasets; write the shared view."""

from __future__ import annotations

from pathlib import Path

import click

from fieldtruth.pipelines.cli_common import allow_dir_option, echo_for, reports_errors, run_argument


@click.command(name="risk")
@run_argument
@click.option("--sectors", "sectors", multiple=True, required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Sector dataset declaration (YAML); repeat for several datasets.")
@click.option("--cell-size", type=click.FloatRange(min=100, max=1_000_000), default=5000.0, show_default=True,
              help="Side of the square equal-area cells (EPSG:6933) in metres.")
@click.option("--k", "k", type=click.IntRange(min=1), default=3, show_default=True,
              help="Smallest count the shared view shows; smaller cells are merged or suppressed.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Risk scoring config (YAML: weights, scales, bands, min_coverage, area_stats) "
                   "[default: built in].")
@click.option("--partition-mb", type=click.IntRange(min=1), default=256, show_default=True,
              help="Sector files larger than this are read in partitions (bounded memory).")
@allow_dir_option
@click.pass_context
@reports_errors
def risk_command(ctx: click.Context, run: Path, sectors: tuple[Path, ...], cell_size: float, k: int,
                 config_path: Path | None, partition_mb: int, allow_dirs: tuple[Path, ...]) -> None:
    """Write RUN/risk.parquet (every cell) and RUN/risk_shared.geojson (cells only, shareable)."""
    from fieldtruth.ingest.guard import allowing_dirs
    from fieldtruth.ingest.sectors import load_declaration
    from fieldtruth.maps.risk import build_risk_cells, write_risk
    from fieldtruth.maps.risk_score import load_risk_config
    from fieldtruth.pipelines.stacitem import refresh_run_items

    say = echo_for(ctx)
    with allowing_dirs(allow_dirs):
        config = load_risk_config(config_path)
        decls = [load_declaration(path) for path in sectors]
        risk = build_risk_cells(run, decls, config=config, cell_m=cell_size,
                                partition_bytes=partition_mb * 1024**2, progress=say)
    for report in risk.sectors:
        for file in report.files:
            name = Path(file.path).name
            if file.dropped_columns:
                say(f"{report.name}: dropped undeclared column(s) {file.dropped_columns} of {name}")
            for what in ("bad_rows", "duplicate_rows", "repaired_rows"):
                if getattr(file, what):
                    say(f"{report.name}: {len(getattr(file, what))} {what.replace('_', ' ')} in {name}")
    out = write_risk(run, risk, config=config, k=k)
    refresh_run_items(run)
    bands = risk.cells["band"].value_counts().to_dict()
    click.echo(f"{len(risk.cells)} cells {bands} -> {out.parquet}; shared view (k={k}) -> {out.shared}")
