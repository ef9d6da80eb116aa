"""Where the real data shared beside the repository lives, for tests, benchmarks and experiments.

The data (Sentinel-2 ports of sen2ships, the KilnEye inventory) sits in ``../shared/data`` beside the
repository; ``FIELDTRUTH_SHARED_DATA`` points elsewhere (a git worktree, a laptop's data disk). Nothing
here downloads anything: data that is absent is ``None``, and the tests that need it skip and say why::

    SHIPS = shared_data_root() / "sen2ships"

    @needs_shared_data("sen2ships")
    def test_a_port_opens() -> None:
        open_scene(SHIPS / "busan")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

#: Environment variable naming the shared data folder (default: ``../shared/data`` beside the repository).
SHARED_DATA_ENV = "FIELDTRUTH_SHARED_DATA"
REPO = Path(__file__).resolve().parents[2]
DEFAULT_SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data_root() -> Path:
    """The folder where the shared data should be: ``$FIELDTRUTH_SHARED_DATA``, else ``../shared/data``."""
    configured = os.environ.get(SHARED_DATA_ENV)
    return Path(configured).expanduser() if configured else DEFAULT_SHARED_DATA


def shared_data(name: str = "") -> Path | None:
    """The shared data folder, or its sub-folder ``name`` (``"sen2ships"``, ``"kilneye"``), if present.

    Args:
        name: a data set's folder inside the shared data; empty for the shared data folder itself.

    Returns:
        The folder, or None when it does not exist (a fresh clone without the shared data).
    """
    folder = shared_data_root() / name
    return folder if folder.is_dir() else None


def absent_reason(folder: Path) -> str:
    """Why real data in ``folder`` cannot be used, and how to provide it (for skips and scripts' errors)."""
    return (f"needs the real data in {str(folder)!r}, which is absent: put the shared data beside the "
            f"repository (../shared/data) or set {SHARED_DATA_ENV} to the folder holding it")


def data_folder_or_exit(folder: Path) -> Path:
    """``folder``, for a benchmark or experiment script, which stops with the reason when it is absent."""
    if not folder.is_dir():
        raise SystemExit(absent_reason(folder))
    return folder


def needs_shared_data(name: str) -> pytest.MarkDecorator:
    """A mark that skips a test (or, as ``pytestmark``, a module) when data set ``name`` is absent."""
    import pytest

    return pytest.mark.skipif(shared_data(name) is None, reason=absent_reason(shared_data_root() / name))
