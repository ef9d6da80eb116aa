"""The run folder as a scan writes it: tile results and their manifest, the scan plan, clean-up on start.

The folder's files and their names are :class:`fieldtruth.runfiles.RunFiles`; every file is written
atomically (:mod:`fieldtruth.atomicfile`).
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from fieldtruth.atomicfile import remove_stale, write_json
from fieldtruth.pipelines.errors import RunFolderError
from fieldtruth.pipelines.tileresult import TileResult
from fieldtruth.runfiles import RunFiles


@dataclass(frozen=True)
class RunFolder(RunFiles):
    """A run folder a scan writes: the paths of :class:`RunFiles`, and how the scan writes them."""

    def write_tile_result(self, result: TileResult) -> None:
        """Write a tile's result atomically and record it in the manifest.

        The manifest line goes in once the file is complete, just before its rename, so every result file
        has its line even when the process is killed in between (a line without a file: the tile is
        redone on resume, and gets a second line).
        """
        write_json(self.tile_result(result.tile_id), result.to_json(),
                   before_rename=lambda: self.record_in_manifest(result))

    def record_in_manifest(self, result: TileResult) -> None:
        """Append a line saying a tile's result is written (see :meth:`write_tile_result`).

        The manifest is the run's history: one line per tile result, with its status and UTC time, so a
        resumed run shows which tiles were done in which attempt. Tile files remain the source of truth.
        """
        line = {"tile_id": result.tile_id, "status": result.status,
                "written_at": datetime.now(UTC).isoformat(timespec="milliseconds"), "pid": os.getpid()}
        with open(self.manifest, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, sort_keys=True) + "\n")

    def keep_plan(self, plan: dict[str, Any], *, resume: bool) -> None:
        """Record what fixes a scan's tiles (grid, block size, detector) in ``scan-plan.json``, or check that
        a resumed scan keeps the recorded plan (a folder from before plans were recorded gets this one).

        Raises:
            RunFolderError: the run folder was started with another plan; nothing is written.
        """
        if resume and self.plan.exists():
            try:
                recorded = json.loads(self.plan.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise RunFolderError(
                    f"{str(self.plan)!r} is not valid JSON ({exc}); choose a new --out"
                ) from exc
            changed = {
                k: (recorded.get(k), plan.get(k))
                for k in {**recorded, **plan}
                if recorded.get(k) != plan.get(k)
            }
            if changed:
                detail = "; ".join(_plan_change(k, old, new) for k, (old, new) in changed.items())
                raise RunFolderError(
                    f"run folder {str(self.root)!r} was started with other settings ({detail}); "
                    "resume with the "
                    "same imagery, AOI, --tile-size, --halo, --block, --detector and --heatmap, or choose "
                    "a new --out"
                )
            return
        write_json(self.plan, plan)

    def create(self) -> RunFolder:
        """Create the folder and its sub-folders (idempotent), removing the temporary files a killed
        writer left behind (:func:`fieldtruth.atomicfile.remove_stale`)."""
        self.tiles.mkdir(parents=True, exist_ok=True)
        self.maps.mkdir(parents=True, exist_ok=True)
        for folder in (self.root, self.tiles, self.maps):
            remove_stale(folder)
        return self


def _plan_change(key: str, old: Any, new: Any) -> str:
    """One line saying how a setting of the plan changed; for the imagery, which scenes or files."""
    if key != "scenes":
        return f"{key}: started with {old!r}, now {new!r}"
    if old is None:
        return (
            "scenes: the plan was recorded by an older fieldtruth that did not record the imagery's checksums"
        )
    before, after = {s["id"]: s for s in old}, {s["id"]: s for s in new}
    if set(before) != set(after):
        return f"scenes: started with {sorted(before)!r}, now {sorted(after)!r}"
    changed = sorted(i for i in before if before[i] != after[i])
    return (
        f"scenes: the files of {changed!r} are not the ones the scan started with "
        "(checksum, size or time differ)"
    )


def software_versions() -> dict[str, str]:
    """Versions of the software that shapes a run's results."""
    versions = {"python": platform.python_version()}
    for package in (
        "fieldtruth",
        "torch",
        "torchvision",
        "rasterio",
        "numpy",
        "dask",
        "distributed",
        "geopandas",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    try:
        import rasterio

        versions["gdal"] = rasterio.__gdal_version__
    except ImportError:  # pragma: no cover - rasterio is a hard dependency
        pass
    return versions
