"""The run folder: one per scan, holding everything a run produced, traceable to its inputs.

Layout (the contract between rooms)::

    run.json            config, versions, inputs with provenance, bundle sha256, timings, tile counts
    scan-plan.json      the tile grid, block size, detector and scene offsets a scan started with (a resume must match)
    tiles/<tile>.json   one atomic result per tile (detections and coverage, or its error)
    tiles/manifest.jsonl one line per tile result written, with status, time and process
    detections.parquet  GeoParquet, EPSG:4326, one row per site
    coverage.parquet    GeoParquet, EPSG:4326, one row per tile core
    review.sqlite       the review ledger
    model_card.json     the detector's model card
    maps/               HTML maps
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from fieldtruth.pipelines.errors import RunFolderError
from fieldtruth.review.ledger import DETECTIONS_FILE, LEDGER_FILE

#: Suffix of the temporary files :func:`atomic_path` writes before renaming them into place.
TEMPORARY_SUFFIX = ".tmp"


@dataclass(frozen=True)
class RunFolder:
    """Paths of one run folder."""

    root: Path

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def plan(self) -> Path:
        return self.root / "scan-plan.json"

    @property
    def tiles(self) -> Path:
        return self.root / "tiles"

    @property
    def detections(self) -> Path:
        return self.root / DETECTIONS_FILE

    @property
    def coverage(self) -> Path:
        return self.root / "coverage.parquet"

    @property
    def review(self) -> Path:
        return self.root / LEDGER_FILE

    @property
    def model_card(self) -> Path:
        return self.root / "model_card.json"

    @property
    def maps(self) -> Path:
        return self.root / "maps"

    @property
    def manifest(self) -> Path:
        return self.tiles / "manifest.jsonl"

    def tile_result(self, tile_id: str) -> Path:
        return self.tiles / f"{tile_id}.json"

    def write_tile_result(self, result: dict[str, Any]) -> None:
        """Write a tile's result atomically and record it in the manifest.

        The manifest line goes in once the file is complete, just before its rename, so every result file
        has its line even when the process is killed in between (a line without a file: the tile is
        redone on resume, and gets a second line).
        """
        write_json_atomic(self.tile_result(result["tile_id"]), result, before_rename=lambda: self.record_in_manifest(result))

    def record_in_manifest(self, result: dict[str, Any]) -> None:
        """Append a line saying a tile's result is written (see :meth:`write_tile_result`).

        The manifest is the run's history: one line per tile result, with its status and UTC time, so a
        resumed run shows which tiles were done in which attempt. Tile files remain the source of truth.
        """
        line = {"tile_id": result["tile_id"], "status": result["status"],
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
                raise RunFolderError(f"{str(self.plan)!r} is not valid JSON ({exc}); choose a new --out") from exc
            changed = {k: (recorded.get(k), v) for k, v in plan.items() if recorded.get(k) != v}
            if changed:
                detail = "; ".join(_plan_change(k, old, new) for k, (old, new) in changed.items())
                raise RunFolderError(
                    f"run folder {str(self.root)!r} was started with other settings ({detail}); resume with the "
                    "same imagery, AOI, --tile-size, --halo, --block and --detector, or choose a new --out"
                )
            return
        write_json_atomic(self.plan, plan)

    def create(self) -> RunFolder:
        """Create the folder and its sub-folders (idempotent), removing the temporary files a killed
        writer left behind (:func:`atomic_path` renames them into place only on success)."""
        self.tiles.mkdir(parents=True, exist_ok=True)
        self.maps.mkdir(parents=True, exist_ok=True)
        for folder in (self.root, self.tiles, self.maps):
            for stale in folder.glob(f".*{TEMPORARY_SUFFIX}"):
                stale.unlink(missing_ok=True)
        return self


def _plan_change(key: str, old: Any, new: Any) -> str:
    """One line saying how a setting of the plan changed; for the imagery, which scenes or files."""
    if key != "scenes":
        return f"{key}: started with {old!r}, now {new!r}"
    if old is None:
        return "scenes: the plan was recorded by an older fieldtruth that did not record the imagery's checksums"
    before, after = {s["id"]: s for s in old}, {s["id"]: s for s in new}
    if set(before) != set(after):
        return f"scenes: started with {sorted(before)!r}, now {sorted(after)!r}"
    changed = sorted(i for i in before if before[i] != after[i])
    return f"scenes: the files of {changed!r} are not the ones the scan started with (checksum, size or time differ)"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed over ``path``, on failure removed.

    Readers see either the old file or the whole new one, never a part.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, text: str, before_rename: Callable[[], None] | None = None) -> None:
    """Write a text file atomically, flushed to disk before the rename (see :func:`atomic_path`);
    ``before_rename`` runs once the text is on disk, just before the rename."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if before_rename is not None:
            before_rename()


def write_geoparquet_atomic(path: Path, frame: Any) -> None:
    """Write a GeoDataFrame as GeoParquet atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_json_atomic(path: Path, payload: Any, before_rename: Callable[[], None] | None = None) -> None:
    """Write JSON atomically (see :func:`write_atomic`)."""
    write_atomic(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n", before_rename)


def software_versions() -> dict[str, str]:
    """Versions of the software that shapes a run's results."""
    versions = {"python": platform.python_version()}
    for package in ("fieldtruth", "torch", "torchvision", "rasterio", "numpy", "dask", "distributed", "geopandas"):
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
