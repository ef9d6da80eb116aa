"""``fieldtruth demo``: the whole path offline on a synthetic region: generate, train, scan, score, map."""

from __future__ import annotations

from pathlib import Path

import click

from fieldtruth.pipelines.cli_common import echo_for, reports_errors, workers_option


@click.command(name="demo")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("fieldtruth-demo"),
              show_default=True, help="Folder for the synthetic scenes, the detector and the run.")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Seed of the training scene (the demo scene uses seed+1).")
@workers_option
@click.pass_context
@reports_errors
def demo_command(ctx: click.Context, out: Path, seed: int, workers: int | None) -> None:
    """Run the whole path offline on a synthetic region: generate, train, scan, map, and score."""
    from fieldtruth.pipelines.demo import run_demo

    report = run_demo(out, seed=seed, workers=workers, progress=echo_for(ctx))
    click.echo(report.text())
