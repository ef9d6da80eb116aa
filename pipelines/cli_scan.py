"""``fieldtruth scan``: imagery + detector bundle -> run folder, on a local Dask cluster or a scheduler."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from fieldtruth.pipelines.cli_common import (
    EXIT_FAILURE,
    allow_dir_option,
    detector_option,
    device_option,
    echo_for,
    given,
    precision_option,
    refuse_together,
    reports_errors,
    workers_option,
)

if TYPE_CHECKING:
    from fieldtruth.pipelines.scansummary import ScanSummary

#: Options that search a STAC API, and need one as --imagery.
STAC_SEARCH = ("collection", "datetime", "max_cloud")


@click.command(name="scan")
@click.option("--imagery", required=True,
              help="Scene folder, GeoTIFF/VRT, Sentinel-2 L2A product (.SAFE folder or .zip), STAC "
                   "item.json or catalog.json (a path, or an https URL), or a STAC API URL (with "
                   "--collection).")
@detector_option
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run folder to write.")
@click.option("--aoi", default=None,
              help="AOI: GeoJSON/GeoPackage file or 'west,south,east,north' [default: imagery footprint].")
@click.option("--collection", default=None, help="STAC API collection to search, e.g. sentinel-2-l2a.")
@click.option("--datetime", "datetime", default=None,
              help="STAC API date or range, e.g. 2024-01-01/2024-03-31.")
@click.option("--max-cloud", type=click.FloatRange(0, 100), default=None,
              help="STAC API largest cloud cover (%).")
@click.option("--allow-host", "allow_hosts", multiple=True,
              help="Read from this host although it is loopback/private or plain http (your own server).")
@allow_dir_option
@click.option("--tile-size", type=click.IntRange(64, 4096), default=None,
              help="Tile core side in pixels [default: from the detector's receptive field: at least 6 "
                   "times the halo, in steps of 128 px, 512 px or more, core and halos at most 1,536 px].")
@click.option("--halo", type=click.IntRange(0, 1024), default=None,
              help="Halo in pixels [default: from the detector's receptive field].")
@click.option("--block", type=click.IntRange(1, 16), default=None,
              help="Tiles per side of the block one task reads in one window (1: every tile alone) "
                   "[default: 2, or 1 for a region of fewer than 16 blocks].")
@workers_option
@device_option
@precision_option
@click.option("--threads-per-worker", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Torch threads of the model on each worker.")
@click.option("--scheduler", default=None,
              help="Address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786.")
@click.option("--resume", is_flag=True, help="Continue a run folder: skip finished tiles, retry failed ones.")
@click.option("--performance-report", is_flag=True,
              help="Save Dask's performance report of the tile phase as RUN/dask-performance-report.html.")
@click.option("--dry-run", is_flag=True,
              help="Check the scenes and detector, time the detector on one tile and print the plan (scenes, "
                   "tiles, megapixels, estimated time); write nothing and start no cluster.")
@click.option("--heatmap", is_flag=True,
              help="Also write the detector's score (best class, per heatmap cell, on the scan grid) as "
                   "RUN/heatmap.tif, a Cloud Optimised GeoTIFF; restricted, like the leads.")
@click.option("--previous", "previous", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="An earlier run folder of the same region (repeatable; the latest is enough, its own "
                   "links are followed): leads found again keep their site ids and decisions.")
@click.option("--by-date", is_flag=True,
              help="Keep the dates of the imagery apart: one run per acquisition date under --out "
                   "(OUT/YYYY-MM-DD), each linked to the date before (see `fieldtruth changes`).")
@click.pass_context
@reports_errors
def scan_command(
    ctx: click.Context, imagery: str, detector: Path, out: Path, aoi: str | None, collection: str | None,
    datetime: str | None, max_cloud: float | None, allow_hosts: tuple[str, ...], allow_dirs: tuple[Path, ...],
    tile_size: int | None, halo: int | None, block: int | None, workers: int | None, device: str,
    precision: str, threads_per_worker: int, scheduler: str | None, resume: bool, performance_report: bool,
    dry_run: bool, heatmap: bool, previous: tuple[Path, ...], by_date: bool,
) -> None:
    """Scan imagery with a detector bundle into a run folder (detections, coverage, ledger, run.json).

    Every scene and the detector are checked together first (bands, CRS, pixel size, headers, AOI): a scan
    that cannot work stops in seconds with one line and exit status 2, having written nothing.
    """
    from fieldtruth.ingest.guard import allowing_dirs
    from fieldtruth.pipelines.scan import ScanConfig, scan

    check_scan_usage(ctx, imagery)
    config = ScanConfig(
        imagery=imagery, detector=detector, out=out, aoi=aoi, collection=collection, datetime=datetime,
        max_cloud=max_cloud, allow_hosts=allow_hosts, tile_size=tile_size, block=block, halo=halo,
        workers=workers, threads_per_worker=threads_per_worker, scheduler=scheduler, resume=resume,
        performance_report=performance_report, heatmap=heatmap, previous=previous, device=device,
        precision=precision,
    )
    with allowing_dirs(allow_dirs):
        if dry_run:
            from fieldtruth.pipelines.dryrun import dry_run_report

            for line in dry_run_report(config):
                click.echo(line)
            return
        if by_date:
            from fieldtruth.pipelines.bydate import scan_by_date

            summaries = scan_by_date(config, progress=echo_for(ctx))
        else:
            summaries = [scan(config, progress=echo_for(ctx))]
    for summary in summaries:
        _report(ctx, summary)
    if not all(s.complete for s in summaries):
        ctx.exit(EXIT_FAILURE)


def _report(ctx: click.Context, summary: ScanSummary) -> None:
    """Print what a scan did, and its failed tiles and scenes left out."""
    click.echo(
        f"scanned {summary.tiles} tiles ({summary.done} ok, {len(summary.failed)} failed, {summary.skipped} "
        f"skipped) in {summary.seconds:.1f} s: {summary.detections} unverified leads -> {summary.run_dir}"
    )
    for failure in summary.failed:
        click.echo(f"failed tile {failure.tile_id}: {failure.error}", err=True)
    for left_out in summary.scenes_left_out:
        click.echo(f"scene left out {left_out.scene_id}: {left_out.error}", err=True)


def check_scan_usage(ctx: click.Context, imagery: str) -> None:
    """Refuse options that do not go with the imagery or with each other, before anything is read.

    Raises:
        click.UsageError: a STAC API without --collection, a STAC search option without a STAC API, or
            --workers with --scheduler (the scheduler's workers are started elsewhere).
    """
    from fieldtruth.ingest.sources import is_stac_api

    if is_stac_api(imagery):
        if not ctx.params.get("collection"):
            raise click.UsageError(f"--imagery {imagery!r} is a STAC API: give --collection (and "
                                   "--datetime) to search it")
    else:
        searches = [f"--{name.replace('_', '-')}" for name in STAC_SEARCH if given(ctx, name)]
        if searches:
            raise click.UsageError(f"{', '.join(searches)} search a STAC API, but --imagery {imagery!r} is "
                                   "not one; give the API's URL as --imagery, or leave them out")
    refuse_together(ctx, "scheduler", ("workers",), "a scheduler's workers are started with `dask worker`")
    refuse_together(ctx, "by_date", ("dry_run",), "check one date at a time: leave --by-date out")
