"""``fieldtruth bundle describe``: a detector bundle's model card, for people or as a STAC MLM Item."""

from __future__ import annotations

import json
from pathlib import Path

import click

from fieldtruth.pipelines.cli_common import reports_errors


@click.group(name="bundle")
def bundle_group() -> None:
    """Detector bundles: describe one."""


@bundle_group.command(name="describe")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--stac", is_flag=True,
              help="Print the bundle as a STAC Item of the Machine Learning Model (MLM) extension (JSON).")
@click.option("--href", default=None,
              help="Where the Item says the bundle file is (a URL where you publish it) "
                   "[default: its file name, for an Item kept beside it].")
@reports_errors
def describe_command(bundle: Path, stac: bool, href: str | None) -> None:
    """Print BUNDLE's model card: what the detector is, its held-out figures, its limits."""
    from fieldtruth.detectors.bundle import load_bundle
    from fieldtruth.pipelines.stacmodel import card_text, model_item

    loaded = load_bundle(bundle)
    if not stac:
        click.echo(card_text(loaded))
        return
    item = model_item(loaded, href or bundle.name)
    click.echo(json.dumps(item.to_dict(include_self_link=False, transform_hrefs=False), indent=2))
