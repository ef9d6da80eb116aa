"""``fieldtruth dataset build``: labelled training scenes from a point inventory and open imagery."""

from __future__ import annotations

from pathlib import Path

import click

from fieldtruth.pipelines.cli_common import allow_dir_option, echo_for, reports_errors


def _regions(text: tuple[str, ...]) -> list[str]:
    return [r.strip() for item in text for r in item.split(",") if r.strip()]


@click.group(name="dataset")
def dataset_group() -> None:
    """Training datasets: labelled scene folders for `fieldtruth train` and `evaluate`."""


@dataset_group.command(name="build")
@click.option("--points", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Declaration (YAML) of the site inventory, as for `fieldtruth risk`, with object_size_m.")
@click.option("--imagery", required=True,
              help="STAC API URL (with --collection), STAC catalog.json or item.json, or a scene folder.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Dataset folder to write (new or empty): OUT/train, OUT/validation, OUT/test.")
@click.option("--collection", default=None, help="STAC API collection to search, e.g. sentinel-2-l2a.")
@click.option("--datetime", "datetime", default=None,
              help="Date or range of the scenes taken, e.g. 2024-01-01/2024-03-31.")
@click.option("--max-cloud", type=click.FloatRange(0, 100), default=None,
              help="Largest scene cloud cover (%).")
@click.option("--aoi", default=None, help="Only sites in this AOI: GeoJSON file or 'west,south,east,north'.")
@click.option("--split-by", "split_by", default=None,
              help="Inventory column whose values are the regions split (state, district).")
@click.option("--block-km", type=click.FloatRange(0.1, 10_000), default=None,
              help="Split by square blocks of the ground this many km a side instead of a column.")
@click.option("--train", "train", multiple=True, help="Region(s) for training (repeat, or a,b).")
@click.option("--validation", "validation", multiple=True, help="Region(s) for validation.")
@click.option("--test", "test", multiple=True, help="Region(s) for testing.")
@click.option("--fractions", default="0.6,0.2,0.2", show_default=True,
              help="Shares of regions for train,validation,test when none is named (seeded).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random region assignment.")
@click.option("--buffer-km", type=click.FloatRange(0), default=2.0, show_default=True,
              help="Least distance between a window and a site of another set.")
@click.option("--window-px", type=click.IntRange(128, 2048), default=512, show_default=True,
              help="Side of the windows cut from the scenes (pixels).")
@click.option("--min-valid", type=click.FloatRange(0, 1), default=0.8, show_default=True,
              help="Least share of clear pixels (not cloud, not nodata) of a window kept.")
@click.option("--background-share", type=click.FloatRange(0, 10), default=0.5, show_default=True,
              help="Background windows (no site near: negatives only) per labelled window of a set; 0 for "
                   "none.")
@click.option("--allow-host", "allow_hosts", multiple=True,
              help="Read from this host although it is loopback/private or plain http (your own server).")
@allow_dir_option
@click.pass_context
@reports_errors
def build_command(ctx: click.Context, points: Path, imagery: str, out: Path, collection: str | None,
                  datetime: str | None, max_cloud: float | None, aoi: str | None, split_by: str | None,
                  block_km: float | None, train: tuple[str, ...], validation: tuple[str, ...],
                  test: tuple[str, ...], fractions: str, seed: int, buffer_km: float, window_px: int,
                  min_valid: float, background_share: float, allow_hosts: tuple[str, ...],
                  allow_dirs: tuple[Path, ...]) -> None:
    """Cut labelled scenes over the inventory's sites, each region in one set (train/validation/test)."""
    from fieldtruth.ingest.guard import allowing_dirs
    from fieldtruth.ingest.sources import is_stac_api
    from fieldtruth.pipelines.dataset import ImageryQuery, build
    from fieldtruth.pipelines.datasetfolders import WindowOptions
    from fieldtruth.pipelines.datasplit import SplitPlan

    if (split_by is None) == (block_km is None):
        raise click.UsageError("give one of --split-by COLUMN (regions named by a column) and --block-km N")
    if is_stac_api(imagery) and not collection:
        raise click.UsageError(f"--imagery {imagery!r} is a STAC API: give --collection (and --datetime)")
    try:
        shares = tuple(float(v) for v in fractions.split(","))
    except ValueError:
        shares = ()
    if len(shares) != 3:
        raise click.BadParameter(f"{fractions!r} is not three numbers 'train,validation,test'",
                                 param_hint="--fractions")
    named = {"train": _regions(train), "validation": _regions(validation), "test": _regions(test)}
    plan = SplitPlan(column=split_by, block_m=block_km * 1000 if block_km else None,
                     buffer_m=buffer_km * 1000, named=named, fractions=shares, seed=seed)  # type: ignore[arg-type]
    query = ImageryQuery(imagery, collection, datetime, max_cloud, aoi, tuple(allow_hosts), tuple(allow_dirs))
    with allowing_dirs(allow_dirs):
        summary = build(points, query, out, plan, WindowOptions(window_px, min_valid, background_share))
    say = echo_for(ctx)
    for name in ("train", "validation", "test"):
        say(f"{name}: {summary.scenes[name]} scene(s) ({summary.background[name]} background), "
            f"{summary.labels[name]} label(s), regions "
            f"{summary.regions[name][:10]}{' ...' if len(summary.regions[name]) > 10 else ''}")
    say(f"sites: {summary.sites_labelled} labelled of {summary.sites_in_sets} in the sets "
        f"({summary.sites_outside_scenes} outside every scene); windows left out: "
        f"{dict(summary.windows_left_out)}")
    click.echo(f"dataset -> {out} (dataset.json)")
