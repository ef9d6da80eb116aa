"""`fieldtruth train` and `fieldtruth evaluate`: labelled scenes -> detector bundle -> evaluation report."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fieldtruth.pipelines.cli_common import (
    SCENE_FOLDER,
    detector_option,
    device_option,
    echo_for,
    given,
    precision_option,
    reports_errors,
    scenes_argument,
)

if TYPE_CHECKING:
    from fieldtruth.detectors.report import EvaluationReport

log = logging.getLogger(__name__)


def _load_config(  # noqa: ANN202 - a TrainConfig
    path: Path | None, preset: str, overrides: dict, *, preset_given: bool = False, init=None,  # noqa: ANN001
):
    """The training settings: the options over the config file over (with ``init``, a fine-tune's settings
    over) the preset; with ``init``, the settings its weights need come from its card."""
    import yaml

    from fieldtruth.detectors.errors import TrainingError
    from fieldtruth.detectors.finetune import FINETUNE_SETTINGS, check_init, config_from_bundle
    from fieldtruth.detectors.train import TrainConfig

    values = {}
    if path is not None:
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise TrainingError(f"training config {str(path)!r} cannot be read as YAML ({exc})") from exc
        if not isinstance(values, dict):
            raise TrainingError(f"training config {str(path)!r} must be a mapping of settings, got "
                                f"{type(values).__name__}")
        if preset_given and values.get("preset", preset) != preset:
            raise click.UsageError(f"--preset {preset} and 'preset: {values['preset']}' in {str(path)!r} "
                                   "disagree; give one of them")
        preset = str(values.pop("preset", preset))
    given = {k: v for k, v in overrides.items() if v is not None}
    if init is not None:
        check_init(init, values, f"training config {str(path)!r}")
    try:  # the command's options over the file's settings over the preset (groups merged key by key)
        config = TrainConfig.from_mapping({}, preset)
        if init is not None:
            config = config.merged(FINETUNE_SETTINGS)
        config = config.merged(values).merged(given)
    except ValueError as exc:
        raise TrainingError(f"training config: {exc}") from exc
    return config if init is None else config_from_bundle(config, init)


@click.command("train")
@click.argument("scenes", nargs=-1, required=False, type=SCENE_FOLDER)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Bundle file to write (.safetensors).")
@click.option("--val", "val", multiple=True, type=SCENE_FOLDER,
              help="Validation scene (repeatable): early stopping and the operating threshold; never trained "
                   "on [default: several SCENES cross-fit it: each scene scored by a model that did not "
                   "train on it].")
@click.option("--from-review", "reviews", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A scan's run folder whose reviewed leads become labels (repeatable): the latest decision "
                   "per site, confirmed as a positive, rejected as a hard negative; its ledger must verify.")
@click.option("--init", "init_path", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Fine-tune this bundle: start from its weights and settings (architecture, bands, scene "
                   "offsets), with a fine-tune's few steps and lower learning rate.")
@click.option("--adopt-anyway", is_flag=True,
              help="With --init and --from-review: write the fine-tune even when it does worse than the "
                   "bundle started from (on the decisions it did not learn from, or on --val scenes), or "
                   "when the decisions are too few to check it [default: write the bundle started from "
                   "then, and say why].")
@click.option("--point-size-m", type=click.FloatRange(0, min_open=True), default=None,
              help="Ground size (metres) of the square a point label or a confirmed lead becomes (config key "
                   "point_size_m) [default: 3 pixels].")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="YAML file of training settings (keys of TrainConfig; "
                                 "'preset: vessels|demo|default').")
@click.option(
    "--preset",
    type=click.Choice(["vessels", "default", "demo"]),
    default="vessels",
    show_default=True,
    help="Settings to start from.",
)
@click.option("--steps", type=click.IntRange(1), default=None, help="Optimisation steps.")
@click.option("--seed", type=int, default=None, help="Seed of chips, augmentation and initial weights.")
@click.option(
    "--checkpoint-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for checkpoint.safetensors (written every checkpoint_every steps).",
)
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in --checkpoint-dir.")
@click.option("--threads", type=click.IntRange(1, 256), default=None, help="Torch CPU threads.")
@device_option
@click.pass_context
@reports_errors
def train_command(
    ctx: click.Context,
    scenes: tuple[Path, ...],
    out: Path,
    val: tuple[Path, ...],
    reviews: tuple[Path, ...],
    init_path: Path | None,
    adopt_anyway: bool,
    point_size_m: float | None,
    config_path: Path | None,
    preset: str,
    steps: int | None,
    seed: int | None,
    checkpoint_dir: Path | None,
    resume: bool,
    threads: int | None,
    device: str,
) -> None:
    """Train a detector on labelled scene folders (bands + labels.*) and reviewed scans; write its bundle."""
    from fieldtruth.detectors.bundle import load_bundle
    from fieldtruth.detectors.device import resolve_device
    from fieldtruth.detectors.train import train_detector
    from fieldtruth.pipelines.progress import TrainingProgress
    from fieldtruth.pipelines.reviewlabels import record_learning

    if not scenes and not reviews:
        raise click.UsageError("give labelled SCENES, --from-review RUN, or both")
    if resume and checkpoint_dir is None:
        raise click.UsageError("--resume needs --checkpoint-dir (the folder holding checkpoint.safetensors)")
    _refuse_shared_scenes(val, scenes, "--val", "validation scenes are never trained on")
    init = load_bundle(init_path) if init_path is not None else None
    checkpoints = {"folder": str(checkpoint_dir), "resume": resume} if checkpoint_dir else None
    overrides = {
        "steps": steps,
        "seed": seed,
        "num_threads": threads,
        "checkpoints": checkpoints,
        "point_size_m": point_size_m,
    }
    config = _load_config(config_path, preset, overrides, preset_given=given(ctx, "preset"), init=init)
    where = resolve_device(device)  # before any work: cuda without CUDA stops here (exit 2)
    if where.note:
        echo_for(ctx)(where.note)
    reviewed = _reviewed(reviews, config)
    started = time.perf_counter()
    with TrainingProgress(echo_for(ctx)) as progress:
        bundle = train_detector(
            list(scenes),
            out,
            config,
            progress,
            val_dirs=list(val),
            reviewed=reviewed,
            init=init,
            device=where.device,
            adopt_anyway=adopt_anyway,
        )
    there, split = bundle.card.metrics.overall, bundle.card.split
    guard = split.get("fine_tune")
    if guard is not None:
        click.echo(guard["reason"])
    if guard is not None and not guard["adopted"]:
        click.echo(f"wrote the bundle started from, unchanged but for its card -> {out} sha256 "
                   f"{bundle.sha256[:12]}")
        return
    for run in reviews:
        record_learning(run, bundle.sha256, out)
    expected = split.get("expected_on_new_scenes")
    if expected:
        low, high = expected["ci95"]
        click.echo(
            f"F1 to expect on a new region: {expected['f1']} (95 % interval over scenes {low}-{high}; "
            f"{expected['folds']} folds cross-fitted)"
        )
    figures = f"there: P {there.precision} R {there.recall} F1 {there.f1}" if there else "nothing measured"
    click.echo(
        f"trained {bundle.card.architecture} on {split.get('train')} in "
        f"{time.perf_counter() - started:.0f} s; "
        f"threshold {bundle.card.threshold:.3f} {_chosen_on(split)} ({figures}) -> {out} "
        f"sha256 {bundle.sha256[:12]}"
    )


def _chosen_on(split: dict) -> str:
    chosen = str(split.get("threshold_chosen_on", ""))
    if chosen == "validation":
        return f"chosen on {split.get('validation')}"
    if chosen.startswith("carried over"):
        return chosen
    return f"chosen on {chosen}"


def _reviewed(reviews: tuple[Path, ...], config) -> list:  # noqa: ANN001
    """The reviewed runs' decisions as training windows, on each run's own grid."""
    from fieldtruth.pipelines.reviewlabels import reviewed_run

    return [
        reviewed_run(
            run,
            tuple(config.bands),
            dict(config.scene_offset),
            chip_size=config.chips.size,
            point_size_m=config.point_size_m,
        )
        for run in reviews
    ]


@click.command("evaluate")
@scenes_argument
@detector_option
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for report.json and report.html.",
)
@click.option(
    "--tolerance-px",
    type=click.FloatRange(0),
    default=1.0,
    show_default=True,
    help="A detection matches a label when inside its polygon buffered by this many pixels.",
)
@click.option(
    "--grid",
    type=click.Choice(["scan", "native"]),
    default="scan",
    show_default=True,
    help="Detect on the grid `fieldtruth scan` reads (the card's pixel size; UTM for Web-Mercator "
    "imagery), so the report is what a scan finds; or on the scene's own pixels.",
)
@click.option(
    "--baseline",
    is_flag=True,
    help="Also evaluate the non-learned vessel baseline on the same scenes into OUT/baseline/ (its "
    "threshold chosen on --baseline-fit scenes, else its fixed default).",
)
@click.option(
    "--baseline-fit",
    multiple=True,
    type=SCENE_FOLDER,
    help="Scenes the baseline's threshold is chosen on (never the evaluated ones).",
)
@device_option
@precision_option
@click.pass_context
@reports_errors
def evaluate_command(
    ctx: click.Context,
    scenes: tuple[Path, ...],
    detector: Path,
    out: Path,
    tolerance_px: float,
    grid: str,
    baseline: bool,
    baseline_fit: tuple[Path, ...],
    device: str,
    precision: str,
) -> None:
    """Evaluate a detector bundle on labelled scenes held out from its training: report.json + report.html."""
    from fieldtruth.detectors.bundle import load_bundle
    from fieldtruth.detectors.device import resolve_device, resolve_precision
    from fieldtruth.detectors.report import evaluate_bundle
    from fieldtruth.pipelines.progress import evaluation_progress

    if baseline_fit and not baseline:
        raise click.UsageError("--baseline-fit chooses the baseline's threshold: give it with --baseline")
    _refuse_shared_scenes(
        baseline_fit, scenes, "--baseline-fit", "the baseline is evaluated on scenes it was not fitted on"
    )
    say = echo_for(ctx)
    where = resolve_device(device)  # before any work: cuda without CUDA stops here (exit 2)
    bundle = load_bundle(detector, device=where.device, precision=resolve_precision(precision, where.device))
    if where.note:
        say(where.note)
    with evaluation_progress(len(scenes), say):
        report = evaluate_bundle(bundle, list(scenes), out, tolerance_px=tolerance_px, grid=grid)
    if report.warning:
        say(f"warning: {report.warning}")
    _echo_report("detector", report)
    if baseline:
        fitted = _baseline(list(baseline_fit), out / "baseline" / "baseline.safetensors", tolerance_px, say)
        _echo_report(
            "baseline",
            evaluate_bundle(fitted, list(scenes), out / "baseline", tolerance_px=tolerance_px, grid=grid),
        )
    say(f"report -> {out / 'report.json'} and {out / 'report.html'}")


def _refuse_shared_scenes(chosen: tuple[Path, ...], scenes: tuple[Path, ...], option: str, why: str) -> None:
    """Raise a usage error when a scene given to ``option`` is also one of SCENES."""
    shared = sorted({p.resolve() for p in chosen} & {p.resolve() for p in scenes})
    if shared:
        names = [str(p) for p in shared]
        raise click.BadParameter(f"{names!r} also given as SCENES; {why}", param_hint=option)


def _baseline(fit_on: list[Path], out: Path, tolerance_px: float, say):  # noqa: ANN001, ANN202
    """The vessel baseline: threshold chosen on ``fit_on``, or its fixed default threshold without them."""
    from fieldtruth.detectors.baseline import fit_vessel_baseline, vessel_baseline_card
    from fieldtruth.detectors.bundle import load_bundle, save_bundle
    from fieldtruth.detectors.filters import VesselBaseline

    if fit_on:
        return fit_vessel_baseline(fit_on, out, tolerance_px=tolerance_px)
    say("baseline: no --baseline-fit scenes, using its fixed default threshold 0.5")
    save_bundle(out, VesselBaseline(), vessel_baseline_card(threshold=0.5))
    return load_bundle(out)


def _echo_report(name: str, report: EvaluationReport) -> None:
    pooled = report.pooled
    ci = report.ci95.f1 if report.ci95 else None
    ci_text = f" (95% CI over scenes {ci.low:.2f}-{ci.high:.2f})" if ci else ""
    click.echo(
        f"{name}: pooled P {pooled.precision:.3f} R {pooled.recall:.3f} F1 {pooled.f1:.3f}{ci_text} "
        f"AP {pooled.ap:.3f} on {len(report.per_scene)} scene(s)"
    )
    for scene, f in report.per_scene.items():
        click.echo(f"  {scene}: P {f.precision:.3f} R {f.recall:.3f} F1 {f.f1:.3f} AP {f.ap:.3f}")
