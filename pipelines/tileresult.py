"""A tile's result: what the scan found in one tile, as a worker sends it and the run folder keeps it.

Each finished tile is one file, ``tiles/<id>.json`` (:meth:`fieldtruth.runfiles.RunFiles.tile_result`):
its status, the valid fraction of its core, the detections in its core (in the grid's CRS), the error
when it failed, and the seconds spent reading, waiting for the model and in the model. The file is
parsed here, once; everything after works on :class:`TileResult`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fieldtruth.pipelines.errors import RunFolderError

#: Status of a tile whose pixels were read and passed through the detector, and of one that failed.
OK, FAILED = "ok", "failed"

#: Seconds a tile's result records where they were measured (a failed tile has none).
_TIMINGS = ("read_seconds", "wait_seconds", "model_seconds", "seconds")


@dataclass(frozen=True)
class TileDetection:
    """One detection whose centre lies in a tile's core, in the tile grid's CRS.

    Attributes:
        x: easting of its centre.
        y: northing of its centre.
        score: the detector's score.
        label: the class detected.
        site_id: the random id stamped on it before its tile result is written
            (:func:`fieldtruth.pipelines.merge.with_site_ids`); None in a result not yet stamped, or
            written by an older fieldtruth.
    """

    x: float
    y: float
    score: float
    label: str
    site_id: str | None = None

    def to_json(self) -> dict[str, object]:
        """The detection as its tile result file holds it (``site_id`` only once stamped)."""
        doc: dict[str, object] = {"x": self.x, "y": self.y, "score": self.score, "label": self.label}
        if self.site_id is not None:
            doc["site_id"] = self.site_id
        return doc


@dataclass(frozen=True)
class TileResult:
    """What the scan found in one tile.

    Attributes:
        tile_id: the tile.
        status: :data:`OK`, or :data:`FAILED` when its pixels could not be read.
        valid_fraction: fraction of the tile's core holding valid pixels (0: not covered).
        detections: detections whose centre lies in the core.
        error: why the tile failed (the exception and the file it names); None when it did not.
        worker: address of the Dask worker that did the tile.
        read_seconds: seconds spent reading the tile's pixels (its share of its block's read).
        wait_seconds: seconds waiting for a model slot (only for tiles with valid pixels).
        model_seconds: seconds in the model (only for tiles with valid pixels).
        seconds: the tile's seconds in all.
        heatmap: the detector's scores over the core (``scan --heatmap``; see
            :mod:`fieldtruth.pipelines.heatmap`), on its way from the worker; kept in a file of its own,
            never in the result's JSON.
    """

    tile_id: str
    status: str = OK
    valid_fraction: float = 0.0
    detections: tuple[TileDetection, ...] = ()
    error: str | None = None
    worker: str | None = None
    read_seconds: float | None = None
    wait_seconds: float | None = None
    model_seconds: float | None = None
    seconds: float | None = None
    heatmap: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        """True when the tile was read and passed through the detector."""
        return self.status == OK

    def to_json(self) -> dict[str, object]:
        """The result as the JSON document of its file (seconds only where they were measured)."""
        doc: dict[str, object] = {
            "tile_id": self.tile_id, "status": self.status, "valid_fraction": self.valid_fraction,
            "detections": [d.to_json() for d in self.detections], "error": self.error,
        }
        if self.worker is not None:
            doc["worker"] = self.worker
        doc.update({k: getattr(self, k) for k in _TIMINGS if getattr(self, k) is not None})
        return doc

    @classmethod
    def from_json(cls, doc: object, source: str) -> TileResult:
        """Parse a tile result's JSON document.

        Raises:
            RunFolderError: the document is not a tile result (``source`` names it in the message).
        """
        try:
            if not isinstance(doc, dict) or doc.get("status") not in (OK, FAILED):
                raise ValueError(f"expected an object with status {OK!r} or {FAILED!r}")
            detections = tuple(
                TileDetection(
                    float(d["x"]), float(d["y"]), float(d["score"]), str(d["label"]),
                    None if d.get("site_id") is None else str(d["site_id"]),
                )
                for d in doc.get("detections") or ()
            )
            timings = {k: float(doc[k]) for k in _TIMINGS if doc.get(k) is not None}
            text = {k: None if doc.get(k) is None else str(doc[k]) for k in ("error", "worker")}
            return cls(
                tile_id=str(doc["tile_id"]), status=doc["status"],
                valid_fraction=float(doc["valid_fraction"]), detections=detections, **text, **timings,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RunFolderError(
                f"{source!r} is not a tile result ({type(exc).__name__}: {exc}); delete it and run the scan "
                "again with --resume to redo its tile"
            ) from exc


def read_tile_result(path: Path) -> TileResult:
    """Read one tile's result file.

    Raises:
        RunFolderError: the file cannot be read, is not JSON, or is not a tile result.
    """
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunFolderError(
            f"{str(path)!r} cannot be read as JSON ({exc}); delete it and run the scan again with --resume "
            "to redo its tile"
        ) from exc
    return TileResult.from_json(doc, str(path))


def load_tile_results(tiles_dir: Path) -> dict[str, TileResult]:
    """Read every tile result of a run folder's ``tiles/``, keyed by tile id.

    Raises:
        RunFolderError: as :func:`read_tile_result`.
    """
    results = (read_tile_result(path) for path in sorted(tiles_dir.glob("*.json")))
    return {result.tile_id: result for result in results}
