"""Shared pieces of the command line: error reporting, logging set-up, progress printing.

Library errors (:class:`fieldtruth.errors.FieldtruthError`) become a one-line message naming the input
and a non-zero exit; the traceback is shown only with ``-v``.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from fieldtruth.errors import FieldtruthError

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

#: Exit status for bad input or a failed run (click uses 2 for usage errors).
EXIT_FAILURE = 1


def configure_logging(verbosity: int) -> None:
    """Set the log level from -v/-q; Dask's own chatter only from -vv on (also in worker processes)."""
    if verbosity < 2:
        # Read by dask.config when distributed is first imported, here and in spawned workers.
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True)
    for noisy in ("distributed", "tornado", "bokeh", "rasterio", "fiona", "pyogrio"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING if verbosity < 2 else logging.INFO))


def reports_errors(command: F) -> F:
    """Turn library errors into a one-line message and exit status 1 (traceback only with -v)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except FieldtruthError as exc:
            ctx = click.get_current_context()
            if ctx.find_root().obj.get("verbosity", 0) > 0:
                log.exception("failed")
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_FAILURE)

    return wrapper  # type: ignore[return-value]


def echo_for(ctx: click.Context) -> Callable[[str], None]:
    """A progress printer that respects -q."""
    quiet = ctx.find_root().obj.get("verbosity", 0) < 0
    return (lambda message: None) if quiet else (lambda message: click.echo(message, err=True))
