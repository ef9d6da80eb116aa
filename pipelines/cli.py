"""The ``fieldtruth`` command line: the group, and the commands registered on it.

As rasterio's ``rio`` does it, each command or command group lives in its own module
(``cli_<topic>.py``: it parses, calls the library and reports), and the options several commands
share are defined once, in :mod:`fieldtruth.pipelines.cli_common`.
"""

from __future__ import annotations

import click

from fieldtruth.pipelines.cli_bundle import bundle_group
from fieldtruth.pipelines.cli_changes import changes_command
from fieldtruth.pipelines.cli_common import configure_logging, quiet_option, verbose_option
from fieldtruth.pipelines.cli_dataset import dataset_group
from fieldtruth.pipelines.cli_demo import demo_command
from fieldtruth.pipelines.cli_detectors import evaluate_command, train_command
from fieldtruth.pipelines.cli_maps import map_command
from fieldtruth.pipelines.cli_review import export_group, forget_command, review_group
from fieldtruth.pipelines.cli_risk import risk_command
from fieldtruth.pipelines.cli_scan import scan_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@verbose_option
@quiet_option
@click.version_option(package_name="fieldtruth")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """fieldtruth: satellite leads, field truth.

    Scans open satellite imagery for sites where labour exploitation is known to happen, and writes
    maps of LEADS. A detection is a lead, never a finding: people verify before anyone acts.
    """
    if quiet and verbose:
        raise click.UsageError("-q (only errors) and -v (more log output) contradict each other; give one")
    verbosity = -1 if quiet else verbose
    ctx.ensure_object(dict)["verbosity"] = verbosity
    configure_logging(verbosity)


for command in (demo_command, dataset_group, train_command, evaluate_command, bundle_group, scan_command,
                risk_command, map_command, review_group, export_group, forget_command, changes_command):
    cli.add_command(command)


def main() -> None:
    """Entry point of the ``fieldtruth`` console script."""
    cli(obj={})


if __name__ == "__main__":  # pragma: no cover
    main()
