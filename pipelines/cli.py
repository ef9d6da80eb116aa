"""The ``fieldtruth`` command line: thin commands that parse, call the library, and report.

Commands of other capabilities live in ``cli_<topic>.py`` modules and are added to the group here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from fieldtruth.pipelines.cli_common import EXIT_FAILURE, configure_logging, echo_for, reports_errors
from fieldtruth.pipelines.cli_detectors import evaluate_command, train_command
from fieldtruth.pipelines.cli_maps import map_command
from fieldtruth.pipelines.cli_review import export_group, forget_command, review_group
from fieldtruth.pipelines.cli_risk import risk_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (repeat for debug); shows tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.version_option(package_name="fieldtruth")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """fieldtruth: satellite leads, field truth.

    Scans open satellite imagery for sites where labour exploitation is known to happen, and writes
    maps of LEADS. A detection is a lead, never a finding: people verify before anyone acts.
    """
    verbosity = -1 if quiet else verbose
    ctx.ensure_object(dict)["verbosity"] = verbosity
    configure_logging(verbosity)


@cli.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("fieldtruth-demo"),
              show_default=True, help="Folder for the synthetic scenes, the detector and the run.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the training scene (the demo scene uses seed+1).")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="Local Dask worker processes.")
@click.pass_context
@reports_errors
def demo(ctx: click.Context, out: Path, seed: int, workers: int) -> None:
    """Run the whole path offline on a synthetic region: generate, train, scan, map, and score."""
    from fieldtruth.pipelines.demo import run_demo

    report = run_demo(out, seed=seed, workers=workers, progress=echo_for(ctx))
    click.echo(report.text())


@cli.command()
@click.option("--imagery", required=True,
              help="Scene folder, GeoTIFF/VRT, STAC item.json or catalog.json, or a STAC API URL (with --collection).")
@click.option("--detector", required=True, type=click.Path(path_type=Path), help="Model bundle (.safetensors).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run folder to write.")
@click.option("--aoi", default=None, help="AOI: GeoJSON/GeoPackage file or 'west,south,east,north' [default: imagery footprint].")
@click.option("--collection", default=None, help="STAC API collection to search, e.g. sentinel-2-l2a.")
@click.option("--datetime", "datetime", default=None, help="STAC API date or range, e.g. 2024-01-01/2024-03-31.")
@click.option("--max-cloud", type=click.FloatRange(0, 100), default=None, help="STAC API largest cloud cover (%).")
@click.option("--allow-host", "allow_hosts", multiple=True,
              help="Read from this host although it is loopback/private or plain http (your own server).")
@click.option("--tile-size", type=click.IntRange(64, 4096), default=512, show_default=True, help="Tile core side in pixels.")
@click.option("--halo", type=click.IntRange(0, 1024), default=None, help="Halo in pixels [default: from the detector's receptive field].")
@click.option("--block", type=click.IntRange(1, 16), default=None,
              help="Tiles per side of the block one task reads in one window (1: every tile alone) "
                   "[default: 2, or 1 for a region of fewer than 16 blocks].")
@click.option("--workers", type=click.IntRange(1, 256), default=2, show_default=True, help="Local Dask worker processes.")
@click.option("--threads-per-worker", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--scheduler", default=None, help="Address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786.")
@click.option("--resume", is_flag=True, help="Continue a run folder: skip finished tiles, retry failed ones.")
@click.option("--performance-report", is_flag=True,
              help="Save Dask's performance report of the tile phase as RUN/dask-performance-report.html.")
@click.pass_context
@reports_errors
def scan(ctx: click.Context, **options: Any) -> None:
    """Scan imagery with a detector bundle into a run folder (detections, coverage, ledger, run.json)."""
    from fieldtruth.pipelines.scan import ScanConfig
    from fieldtruth.pipelines.scan import scan as run_scan

    options["allow_hosts"] = tuple(options["allow_hosts"])
    summary = run_scan(ScanConfig(**options), progress=echo_for(ctx))
    click.echo(
        f"scanned {summary.tiles} tiles ({summary.done} ok, {len(summary.failed)} failed, "
        f"{summary.skipped} skipped) in {summary.seconds:.1f} s: {summary.detections} unverified leads -> {summary.run_dir}"
    )
    for failure in summary.failed:
        click.echo(f"failed tile {failure.tile_id}: {failure.error}", err=True)
    for left_out in summary.scenes_left_out:
        click.echo(f"scene left out {left_out.scene_id}: {left_out.error}", err=True)
    if summary.failed or summary.scenes_left_out:
        ctx.exit(EXIT_FAILURE)


cli.add_command(train_command)
cli.add_command(evaluate_command)
cli.add_command(map_command)
cli.add_command(review_group)
cli.add_command(export_group)
cli.add_command(forget_command)
cli.add_command(risk_command)


def main() -> None:
    """Entry point of the ``fieldtruth`` console script."""
    cli(obj={})


if __name__ == "__main__":  # pragma: no cover
    main()
