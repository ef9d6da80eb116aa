"""``fieldtruth review``, ``fieldtruth export actionable`` and ``fieldtruth forget``: human verification.

Thin commands over :mod:`fieldtruth.review`: they parse, call the library and print. The actionable
export is the only command that writes an actionable list, and it refuses unless sites were confirmed
independently and the decision chain verifies.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import tzinfo
from pathlib import Path

import click

from fieldtruth.pipelines.cli_common import echo_for, reports_errors, run_argument

DECISION_WORDS = ("confirmed", "rejected", "uncertain", "field-visit")
STATUS_WORDS = ("unverified", "confirmed", "rejected", "uncertain", "field-visit")


def _word(value: str) -> str:
    return value.replace("-", "_")


@click.group(name="review")
def review_group() -> None:
    """Verify leads: queue, show, decide, form, import field decisions, verify the ledger, status."""


@review_group.command(name="queue")
@run_argument
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUS_WORDS),
              help="Only sites with this status (repeatable) [default: all].")
@click.option("--limit", type=click.IntRange(1), default=None, help="Show at most this many sites.")
@click.option("--order", type=click.Choice(["score", "uncertain", "spread"]), default="score",
              show_default=True,
              help="score: highest risk (when RUN/risk.parquet exists) and score first, the likeliest sites; "
                   "uncertain: scores nearest the detector's threshold first, the decisions that teach a "
                   "fine-tuned detector most; spread: spread over the region, for a first round on a new "
                   "one.")
@click.pass_context
@reports_errors
def queue_command(
    ctx: click.Context, run: Path, statuses: tuple[str, ...], limit: int | None, order: str
) -> None:
    """List the run's sites in the order to review them (see --order), with their status (for a run
    scanned with --previous, the decision carried from an earlier run when it has none)."""
    from fieldtruth.review.queue import review_queue

    items = review_queue(run, tuple(_word(s) for s in statuses), order)
    click.echo(f"{'site_id':<16} {'label':<14} {'score':>6} {'risk':>6}  {'status':<12} decisions")
    for item in items[:limit]:
        risk = "-" if item.risk is None else f"{item.risk:.3f}"
        carried = f"  earlier run: {item.carried}" if item.carried else ""
        click.echo(f"{item.site_id:<16} {item.label:<14} {item.score:>6.3f} {risk:>6}  {item.status:<12} "
                   f"{item.decisions}{carried}")
    echo_for(ctx)(f"{len(items)} site(s); these are leads, not findings")


@review_group.command(name="show")
@run_argument
@click.argument("site")
@click.option("--chip-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the site's image chip (PNG) to this file.")
@click.pass_context
@reports_errors
def show_command(ctx: click.Context, run: Path, site: str, chip_out: Path | None) -> None:
    """Show every fact about SITE and its decision trail; optionally write its image chip."""
    from fieldtruth.pipelines.chips import write_site_chip
    from fieldtruth.review.errors import UnknownSiteError
    from fieldtruth.review.ledger import Ledger
    from fieldtruth.review.sitedata import site_facts

    facts = site_facts(run).get(site)
    with Ledger.of_run(run) as ledger:
        status = ledger.statuses().get(site)
        erased = ledger.erased_sites().get(site)
        entries = list(ledger.entries(site))
    if facts is None and not entries:
        raise UnknownSiteError(f"expected a site of this run; got {site!r}. List them with "
                               "`fieldtruth review queue RUN`.")
    click.echo(f"site {site}: {'ERASED at ' + erased if erased else status}")
    for key, value in (asdict(facts) if facts else {}).items():
        click.echo(f"  {key}: {value}")
    click.echo(f"decision trail ({len(entries)}):")
    for e in entries:
        ev = e.evidence
        detail = "[evidence erased]" if ev is None else (
            f"note={ev.get('note', '')!r} scenes={[s['id'] for s in ev.get('scenes', [])]} "
            f"photos={len(ev.get('photos', []))}"
        )
        visited = f" visited {e.visited_at}" if e.visited_at else ""
        click.echo(f"  #{e.seq} {e.decided_at}{visited} {e.decision} by {e.reviewer} ({e.method}) {detail} "
                   f"hash={e.entry_hash[:12]}")
    if chip_out is not None and facts is not None and facts.lon is not None and facts.lat is not None:
        source = write_site_chip(run, site, facts.lon, facts.lat, chip_out)
        echo_for(ctx)(f"chip from {source} -> {chip_out}")


@review_group.command(name="decide")
@run_argument
@click.argument("site")
@click.option("--decision", required=True, type=click.Choice(DECISION_WORDS))
@click.option("--method", required=True, type=click.Choice(["imagery", "field", "other"]))
@click.option("--reviewer", required=True, help="Your pseudonymous id (e.g. rv07), never a name or e-mail.")
@click.option("--note", default="", help="Short note; no names or details that identify people.")
@click.option("--scene", "scenes", multiple=True, help="Scene looked at: ID or ID:SHA256 (repeatable).")
@click.option("--photo", "photos", multiple=True,
              help="SHA-256 of a field photo kept elsewhere (repeatable).")
@click.option("--visited-at", default=None,
              help="When you visited the site or decided, if not now: ISO 8601 with a time zone "
                   "(2026-03-01T10:15+05:30) or a date (2026-03-01). The ledger also records when it "
                   "was entered.")
@reports_errors
def decide_command(run: Path, site: str, decision: str, method: str, reviewer: str, note: str,
                   scenes: tuple[str, ...], photos: tuple[str, ...], visited_at: str | None) -> None:
    """Record a decision about SITE (appended; a later decision supersedes, nothing is edited)."""
    from fieldtruth.review.fieldfile import scene_ref
    from fieldtruth.review.ledger import Ledger

    with Ledger.of_run(run) as ledger:
        entry = ledger.decide(site, _word(decision), method, reviewer, note=note, visited_at=visited_at,
                              evidence={"scenes": [scene_ref(s) for s in scenes], "photos": list(photos)})
    click.echo(f"recorded #{entry.seq}: {site} {entry.decision} by {entry.reviewer} ({method}), "
               f"hash {entry.entry_hash}")


def _zone(ctx: click.Context, param: click.Parameter, value: str | None) -> tzinfo | None:
    """Parse ``--timezone`` (a bad zone is a usage error, exit status 2)."""
    from fieldtruth.review.fieldtime import parse_zone

    try:
        return None if value is None else parse_zone(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc


@review_group.command(name="import")
@run_argument
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--stale", type=click.Choice(["refuse", "skip", "apply"]), default="refuse", show_default=True,
              help="For a decisions file from a map: what to do with decisions on sites whose ledger "
                   "moved on since the map was drawn (refuse the whole file, skip those, or apply them too).")
@click.option("--photos", type=click.Path(exists=True, path_type=Path), default=None,
              help="Folder or .zip of the form export's attachments: photos FILE names are fingerprinted.")
@click.option("--without-photos", is_flag=True, help="Import decisions whose photos FILE names without them.")
@click.option("--timezone", "zone", default=None, metavar="ZONE", callback=_zone,
              help="Zone of the visit times FILE writes without one (Asia/Kathmandu, +05:45) "
                   "[default: refuse such times].")
@reports_errors
def import_command(
    run: Path, file: Path, stale: str, photos: Path | None, without_photos: bool, zone: tzinfo | None
) -> None:
    """Import field decisions from FILE: all rows valid, or nothing applied.

    FILE is a decisions file exported from a map (signed; checked before anything is applied), a CSV
    exported by KoboToolbox or ODK Central (or Central's .zip download, photos included) from the form
    `fieldtruth review form` writes, the map's queue CSV with decision columns filled in, any spreadsheet
    CSV (',' ';' or tab separated; UTF-8 or UTF-16) with the columns site_id, decision, method,
    reviewer, or a GeoJSON file. Each decision keeps when the person looked (the
    form's answer, else the phone's start or end time, else when the server received it) and, if
    they recorded it, where they stood.
    """
    from fieldtruth.review.errors import FieldFileError
    from fieldtruth.review.fieldfile import import_field_file
    from fieldtruth.review.mapdecisions import is_decisions_file

    if is_decisions_file(file):
        _import_map_file(run, file, stale)
        return
    try:
        report = import_field_file(run, file, photos=photos, without_photos=without_photos, timezone=zone)
    except FieldFileError as exc:
        for line, message in exc.problems:
            click.echo(f"{file}:{line}: {message}", err=True)
        raise
    click.echo(f"{report.summary()} from {file}")


@review_group.command(name="form")
@run_argument
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The XLSForm to write (.xlsx), for KoboToolbox or ODK Central.")
@reports_errors
def form_command(run: Path, out: Path) -> None:
    """Write an XLSForm asking about RUN's open leads, for KoboToolbox or ODK (offline on phones).

    Upload it as a new form; export the answers as CSV and bring them back with `fieldtruth review import`.
    """
    from fieldtruth.review.xlsform import build_form, save_xlsform

    form = build_form(run)
    save_xlsform(form, out)
    asked = "typed as text (too many for a list)" if form.site_as_text else "chosen from a list"
    settings = form.settings
    click.echo(f"form {settings['form_id']} version {settings['version']}: {form.leads} open lead(s), "
               f"site {asked} -> {out}")


def _import_map_file(run: Path, file: Path, stale: str) -> None:
    """Import a signed decisions file exported from a map, and say what happened to each decision."""
    from fieldtruth.review.errors import FieldFileError
    from fieldtruth.review.mapdecisions import import_decisions_file

    try:
        report = import_decisions_file(run, file, stale=stale)
    except FieldFileError as exc:
        for line, message in exc.problems:
            click.echo(f"{file}:{line}: {message}", err=True)
        raise
    for why in report.stale:
        click.echo(f"stale ({'recorded' if report.stale_applied else 'NOT recorded'}): {why}", err=True)
    click.echo(f"recorded {len(report.recorded)} decision(s) from {file} (signed by a map of this run); "
               f"{report.already} already in the ledger")


@review_group.command(name="verify")
@run_argument
@reports_errors
def verify_command(run: Path) -> None:
    """Check the decision chain, and that every decided lead is still where, and what, it was when decided;
    exit 1 naming the first bad entry or every moved lead."""
    from fieldtruth.review.vouch import check_run

    check = check_run(run)
    check.raise_for_error()
    click.echo(f"chain intact: {check.chain.entries} entries, head {check.chain.head_hash}; "
               "decided leads match the detections")


@review_group.command(name="status")
@run_argument
@reports_errors
def status_command(run: Path) -> None:
    """Count sites per review status."""
    from fieldtruth.review.ledger import Ledger
    from fieldtruth.review.vouch import check_run

    with Ledger.of_run(run) as ledger:
        counts, erased = ledger.counts(), len(ledger.erased_sites())
    check = check_run(run)
    for status, count in counts.items():
        click.echo(f"{status.replace('_', '-'):<12} {count}")
    click.echo(f"{'erased':<12} {erased}")
    state = "intact" if check.chain.ok else f"BROKEN at {check.chain.first_bad_seq or 'the sites table'}"
    moved = f"; {len(check.problems)} decided lead(s) differ from the detections" if check.problems else ""
    click.echo(f"chain: {state} ({check.chain.entries} entries){moved}")


@click.group(name="export")
def export_group() -> None:
    """Export verified results."""


@export_group.command(name="actionable")
@run_argument
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="GeoJSON file to write.")
@click.option("--min-confirmations", type=click.IntRange(1), default=2, show_default=True,
              help="Different reviewers whose latest decision must be 'confirmed'.")
@click.option("--require-field-visit", is_flag=True, help="At least one confirmation must be by field visit.")
@reports_errors
def actionable_command(run: Path, out: Path, min_confirmations: int, require_field_visit: bool) -> None:
    """Write ONLY independently confirmed sites, each with its decision trail; refuse otherwise."""
    from fieldtruth.review.actionable import Rule, export_actionable

    sites = export_actionable(run, out, Rule(min_confirmations, require_field_visit))
    click.echo(f"{len(sites)} actionable site(s) -> {out} (restricted: exact locations)")


@click.command(name="forget")
@run_argument
@click.argument("site")
@click.option("--reason", required=True, help="Why the site is erased (kept in the tombstone; not the data).")
@click.option("--by", default="erasure", show_default=True,
              help="Pseudonymous id of who asked for the erasure.")
@reports_errors
def forget_command(run: Path, site: str, reason: str, by: str) -> None:
    """Erase SITE from every file of RUN, and of every run of its region linked to RUN (`scan --previous`),
    and leave a tombstone (when and why, not what) in each ledger."""
    from fieldtruth.pipelines.forget import forget_in_region

    for folder, report in forget_in_region(run, site, reason, by).items():
        done = "was already erased; re-checked the run folder" if report.already_erased else "erased"
        click.echo(f"{site} {done} in {folder}; tombstone #{report.tombstone_seq}")
        for path in report.rewritten:
            click.echo(f"  rewrote {path}")
        for path in report.deleted:
            click.echo(f"  deleted {path}")
        for path in report.maps_deleted:
            click.echo(f"  deleted map {path}: regenerate it with `fieldtruth map {folder}`")
        _say_learned(folder)


def _say_learned(run: Path) -> None:
    """Say which bundles learned from the run's decisions: erasing here does not unlearn them."""
    from fieldtruth.pipelines.reviewlabels import learned_by

    for entry in learned_by(run):
        sha = str(entry.get("bundle_sha256"))[:12]
        click.echo(f"  note: bundle {entry.get('bundle')} (sha256 {sha}) was "
                   "trained on this run's decisions; erasure does not remove what it learned: retrain it "
                   "without this run (or delete it) if the site must leave the model too")
