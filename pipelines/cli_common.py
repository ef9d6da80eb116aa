"""Shared pieces of the command line: options several commands take, error reporting, logging, progress.

Library errors (:class:`fieldtruth.errors.FieldtruthError`) become a one-line message naming the input
and exit status 1; the traceback is shown only with ``-v``. Usage mistakes (options that do not go
together, or one that needs another) are click's :class:`click.UsageError`, exit status 2, raised by the
command before it calls the library; so is a scan that its preflight refuses
(:class:`~fieldtruth.pipelines.errors.PreflightError`): the scan cannot start, and nothing was written.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from fieldtruth.detectors.errors import DeviceError
from fieldtruth.errors import FieldtruthError
from fieldtruth.pipelines.errors import PreflightError

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

#: Exit status for bad input or a failed run (click uses 2 for usage errors).
EXIT_FAILURE = 1
#: Exit status of a command that could not start (a scan its preflight refused), as for usage errors.
EXIT_CANNOT_START = 2

#: A labelled scene folder (bands and a label file), as train and evaluate take them.
SCENE_FOLDER = click.Path(exists=True, file_okay=False, path_type=Path)

verbose_option = click.option(
    "-v", "--verbose", count=True, help="More log output (repeat for debug); shows tracebacks.")
quiet_option = click.option("-q", "--quiet", is_flag=True, help="Only errors.")
run_argument = click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
scenes_argument = click.argument("scenes", nargs=-1, required=True, type=SCENE_FOLDER)
detector_option = click.option(
    "--detector", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="Model bundle (.safetensors).")
allow_dir_option = click.option(
    "--allow-dir", "allow_dirs", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A folder the documents you give (STAC catalogues and items, VRTs, sector declarations, a risk "
         "config) may name files in besides their own folder; repeat for several. Adds to "
         "FIELDTRUTH_ALLOW_DIRS (folders separated by ':'), which does the same.")
device_option = click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
    help="Where the model runs: the GPU (cuda), the CPU, or auto: the GPU when there is one, else the CPU "
         "(said in one line). cuda on a machine without CUDA stops at once, having written nothing.")
precision_option = click.option(
    "--precision", type=click.Choice(["auto", "float32", "bfloat16"]), default="auto", show_default=True,
    help="The model's arithmetic. auto: bfloat16 on a CPU with bfloat16 instructions (AVX512-BF16, AMX), "
         "where it runs 1.75x as fast with the same detection quality and scores within 0.003 of "
         "float32's; float32 elsewhere (emulated bfloat16 is slower) and on a GPU.")
workers_option = click.option(
    "--workers", type=click.IntRange(1, 256), default=None,
    help="Local Dask worker processes [default: 2 on the CPU; on a GPU one per 4 cores, sharing it].")


def configure_logging(verbosity: int) -> None:
    """Set the log level from -v/-q; Dask's own chatter only from -vv on (also in worker processes)."""
    if verbosity < 2:
        # Read by dask.config when distributed is first imported, here and in spawned workers.
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr,
                        force=True)
    for noisy in ("distributed", "tornado", "bokeh", "rasterio", "fiona", "pyogrio"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING if verbosity < 2 else logging.INFO))


def reports_errors(command: F) -> F:
    """Turn library errors into a one-line message and exit status 1, or 2 for a scan refused by its
    preflight and for a device this machine lacks (traceback only with -v)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except FieldtruthError as exc:
            ctx = click.get_current_context()
            if ctx.find_root().obj.get("verbosity", 0) > 0:
                log.exception("failed")
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_CANNOT_START if isinstance(exc, PreflightError | DeviceError) else EXIT_FAILURE)

    return wrapper  # type: ignore[return-value]


def given(ctx: click.Context, name: str) -> bool:
    """True when the user gave the parameter ``name`` (on the command line or in its environment
    variable)."""
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def refuse_together(ctx: click.Context, name: str, others: tuple[str, ...], why: str) -> None:
    """Raise a usage error when ``name`` and any of ``others`` were both given.

    Raises:
        click.UsageError: naming the options as the user types them, and ``why``.
    """
    clash = [o for o in others if given(ctx, o)]
    if given(ctx, name) and clash:
        others_given = ", ".join(_flag(ctx, o) for o in clash)
        raise click.UsageError(f"{_flag(ctx, name)} cannot go with {others_given}: {why}.")


def _flag(ctx: click.Context, name: str) -> str:
    """How the user writes parameter ``name`` (``--tile-size`` for ``tile_size``)."""
    param = next(p for p in ctx.command.params if p.name == name)
    return param.opts[-1] if isinstance(param, click.Option) else param.human_readable_name


def echo_for(ctx: click.Context) -> Callable[[str], None]:
    """A progress printer that respects -q."""
    quiet = ctx.find_root().obj.get("verbosity", 0) < 0
    return (lambda message: None) if quiet else (lambda message: click.echo(message, err=True))
