"""``fieldtruth changes``: what is new, persistent and not seen lately across the runs of a region."""

from __future__ import annotations

from pathlib import Path

import click

from fieldtruth.pipelines.cli_common import echo_for, reports_errors


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Check --since before anything is read."""
    from fieldtruth.pipelines.sitehistory import check_since

    try:
        return None if value is None else check_since(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command(name="changes")
@click.argument("runs", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--since", default=None, callback=_since,
              help="Count as new the sites first seen after this date (YYYY-MM-DD) [default: the date of "
                   "the run before the newest].")
@click.option("--cell-size", type=click.FloatRange(min=100, max=1_000_000), default=5000.0, show_default=True,
              help="Side of the square equal-area cells (EPSG:6933) in metres, as for `fieldtruth risk`.")
@click.option("--k", "k", type=click.IntRange(min=1), default=3, show_default=True,
              help="Smallest count the shared change view shows; a cell with a smaller count is left out.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the sites with their dates and status as CSV (RESTRICTED: exact positions).")
@click.option("--shared-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the shared change view (counts per cell, small counts left out) as GeoJSON.")
@click.pass_context
@reports_errors
def changes_command(ctx: click.Context, runs: tuple[Path, ...], since: str | None, cell_size: float, k: int,
                    out: Path | None, shared_out: Path | None) -> None:
    """Link the RUNS of one region (one run folder per date) into sites, and say what changed.

    Each site is new (first seen after --since), persistent, not seen lately (its place was covered
    later and nothing was found there) or unknown (no usable imagery of its place since it was last
    seen: never read this as gone). Counts are given per equal-area cell.
    """
    from fieldtruth.pipelines.changes import region_changes, write_shared_changes, write_sites_csv

    say = echo_for(ctx)
    changes = region_changes(list(runs), since, cell_size)
    click.echo(f"dates: {', '.join(changes.dates)}; "
               f"new = first seen after {changes.since or 'the first date'}")
    totals = changes.totals()
    rejected = len(changes.sites) - len(changes.counted())
    click.echo("  ".join(f"{status}: {n}" for status, n in totals.items())
               + (f"  (left out, rejected by reviewers: {rejected})" if rejected else ""))
    click.echo(f"{'cell':<14} {'new':>5} {'persistent':>11} {'not seen lately':>16} {'unknown':>8}")
    for row in changes.cells.itertuples(index=False):
        click.echo(f"{row.cell_id:<14} {row.new:>5} {row.persistent:>11} {row.not_seen_lately:>16} "
                   f"{row.unknown:>8}")
    if out is not None:
        write_sites_csv(changes, out)
        say(f"wrote {len(changes.sites)} site(s) to {out} (restricted: exact positions)")
    if shared_out is not None:
        view = write_shared_changes(changes, shared_out, k)
        say(f"wrote the shared change view ({len(view['features'])} cell(s), k={k}) to {shared_out}")
    say("these are leads, not findings; 'unknown' means no usable imagery lately, never gone")
