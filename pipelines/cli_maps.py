"""``fieldtruth map``: the maps of a run (restricted: exact leads, encrypted; shared: cells), and exports.

Restricted maps are encrypted by default: the passphrase comes from ``$FIELDTRUTH_PASSPHRASE`` or a
hidden, confirmed prompt, never from the command line. ``--export gpkg|kml|csv --out FILE`` writes the
restricted sites (GeoPackage, KML) or the verification queue (CSV) instead of a map.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from fieldtruth.pipelines.cli_common import refuse_together, reports_errors, run_argument


@click.command(name="map")
@run_argument
@click.option("--tier", type=click.Choice(["restricted", "shared"]), default="restricted", show_default=True,
              help="restricted: exact sites, for the verification team only; shared: risk cells only.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write [default: RUN/maps/leads_<tier>.html; required with --export].")
@click.option("--no-encrypt", is_flag=True, default=False,
              help="Write the restricted map unencrypted: anyone who gets the file sees exact lead "
                   "locations. For local use on a trusted machine only.")
@click.option("--online-basemap", is_flag=True, default=False,
              help="Add OpenStreetMap tiles; viewing the map then tells tile.openstreetmap.org your IP "
                   "address and the area you look at.")
@click.option("--export", "export_fmt", type=click.Choice(["gpkg", "kml", "csv"]), default=None,
              help="Instead of a map, export the restricted sites (gpkg, kml) or the review queue (csv); "
                   "unencrypted, exact locations, mode 0600.")
@click.pass_context
@reports_errors
def map_command(ctx: click.Context, run: Path, tier: str, out: Path | None, no_encrypt: bool,
                online_basemap: bool, export_fmt: str | None) -> None:
    """Draw the map of a run as one offline HTML file, or export its sites for field tools."""
    refuse_together(ctx, "export_fmt", ("tier", "no_encrypt", "online_basemap"),
                    "an export is the restricted sites as a file for field tools, not a map")
    if tier == "shared" and no_encrypt:
        raise click.UsageError("--no-encrypt applies to the restricted map; the shared map holds no site "
                               "and is never encrypted")
    if export_fmt:
        from fieldtruth.maps.exports import export_sites

        if out is None:
            raise click.UsageError("--export needs --out FILE.")
        path = export_sites(run, export_fmt, out)
        click.echo(f"{export_fmt} export (UNENCRYPTED, exact site locations; keep it safe): {path}")
        return
    from fieldtruth.maps.leads import PASSPHRASE_ENV, build_leads_map
    from fieldtruth.pipelines.stacitem import refresh_run_items

    encrypt = tier == "restricted" and not no_encrypt
    passphrase = None
    if encrypt:
        passphrase = os.environ.get(PASSPHRASE_ENV) or click.prompt(
            "Passphrase for the encrypted map (share it separately from the file)",
            hide_input=True, confirmation_prompt=True, err=True)
    elif tier == "restricted":
        click.echo(
            "WARNING: --no-encrypt: the restricted map is readable by anyone who gets the file.", err=True
        )
    if online_basemap:
        click.echo(
            "WARNING: --online-basemap: the map will request tiles from tile.openstreetmap.org, "
            "revealing the viewer's IP address and the area viewed.",
            err=True,
        )
    path = build_leads_map(
        run, out, tier=tier, passphrase=passphrase, encrypt=encrypt, online_basemap=online_basemap
    )
    refresh_run_items(run)
    click.echo(f"{tier} map ({'encrypted' if encrypt else 'not encrypted'}): {path}")
