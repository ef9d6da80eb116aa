"""A run folder described as STAC Items: ``run.stac.json`` (restricted) and ``run-shared.stac.json``.

The run's Item (restricted) covers what the scan covered (the union of the cores of the tiles that held
valid imagery, EPSG:4326) over the imagery's dates (``start_datetime``/``end_datetime``). Its assets are
the run's files as they are now: detections (described with the label extension: vector labels of a
detection task, their classes and counts), coverage, ledger, risk files, maps, the heatmap (with the
projection extension: the scan grid at the heatmap's cells) and the model card; it links to the
detector's own MLM Item, ``model.stac.json``. Every asset says who may see it: a role ``restricted``
or ``shared`` and the field ``fieldtruth:access``.

The restricted Item lists every file; the shared Item is the same footprint and dates with only what
the shared view may carry: the risk cells with small counts suppressed and the shared map. It
references nothing restricted, names no local path, and links nowhere. Both are written again whenever
the run folder changes (a scan, risk cells, maps, an erasure). Asset hrefs are relative to the run
folder, so the folder can be moved or served.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pystac
import rasterio
import shapely
from pystac.extensions.projection import ProjectionExtension
from rasterio.errors import RasterioError

from fieldtruth.atomicfile import write_json
from fieldtruth.pipelines.errors import RunFolderError
from fieldtruth.runfiles import MODEL_STAC, RunFiles

log = logging.getLogger(__name__)

RESTRICTED, SHARED = "restricted", "shared"
ACCESS = "fieldtruth:access"
STATEMENT = ("Detections are unverified leads, not findings; human verification is required before any "
             "action. Areas outside the footprint were not covered by imagery: not covered is NOT low risk.")
LABEL_SCHEMA = "https://stac-extensions.github.io/label/v1.0.1/schema.json"
PARQUET = "application/vnd.apache.parquet"
COG = "image/tiff; application=geotiff; profile=cloud-optimized"
#: Tile statuses whose core holds valid imagery (see :mod:`fieldtruth.pipelines.merge`).
COVERED_STATUSES = ("covered", "partial")


@dataclass(frozen=True)
class RunAsset:
    """A file of the run folder as an asset of its Items.

    Attributes:
        key: the asset's key.
        name: the file, relative to the run folder.
        media_type: its media type.
        roles: its roles (the access role is added).
        title: what it is.
        access: :data:`RESTRICTED` or :data:`SHARED`.
    """

    key: str
    name: str
    media_type: str
    roles: tuple[str, ...]
    title: str
    access: str = RESTRICTED


def run_assets(files: RunFiles) -> tuple[RunAsset, ...]:
    """Every file of a run folder its Items describe, whether present or not (the name of each from
    :mod:`fieldtruth.runfiles`); ``map_keys.json``, tile results and chips are never assets."""
    rel = {name: str(path.relative_to(files.root)) for name, path in {
        "detections": files.detections, "coverage": files.coverage, "ledger": files.ledger,
        "run": files.run_json, "card": files.model_card, "risk": files.risk, "risk_shared": files.risk_shared,
        "risk_report": files.risk_report, "sectors": files.sectors, "heatmap": files.heatmap,
        "map_restricted": files.leads_map(RESTRICTED), "map_shared": files.leads_map(SHARED),
    }.items()}
    return (
        RunAsset("detections", rel["detections"], PARQUET, ("data", "labels"),
                 "Leads (GeoParquet, EPSG:4326): unverified, exact locations"),
        RunAsset("coverage", rel["coverage"], PARQUET, ("data", "coverage"),
                 "Tile cores with their fraction of valid imagery, and the errors of failed tiles"),
        RunAsset("review", rel["ledger"], "application/vnd.sqlite3", ("data",),
                 "Review ledger: decisions on each lead"),
        RunAsset("run", rel["run"], "application/json", ("metadata",),
                 "Configuration, inputs with checksums, software versions, timings"),
        RunAsset("model-card", rel["card"], "application/json", ("metadata",),
                 "Model card of the detector: what it is, its held-out figures and its limits"),
        RunAsset("heatmap", rel["heatmap"], COG, ("data",),
                 "The detector's score (best class) on the scan grid; nodata where not covered"),
        RunAsset("risk", rel["risk"], PARQUET, ("data",), "Risk cells with all their counts"),
        RunAsset("risk-report", rel["risk_report"], "application/json", ("metadata",),
                 "Provenance of the sector datasets behind the risk cells"),
        RunAsset("sectors", rel["sectors"], PARQUET, ("data",), "Sector sites drawn on the restricted map"),
        RunAsset("map-restricted", rel["map_restricted"], "text/html", ("visual",),
                 "Restricted map: exact leads, for the verification team"),
        RunAsset("risk-shared", rel["risk_shared"], "application/geo+json", ("data",),
                 "Shareable risk cells, small counts suppressed", SHARED),
        RunAsset("map-shared", rel["map_shared"], "text/html", ("visual",),
                 "Shared map: risk cells only", SHARED),
    )


def write_run_items(run_dir: Path) -> tuple[Path, Path]:
    """Write (again) ``run.stac.json`` and ``run-shared.stac.json`` from the run folder as it is now.

    Returns:
        The two files written.

    Raises:
        RunFolderError: the folder has no readable ``run.json`` or ``coverage.parquet`` (not a finished
            scan).
    """
    files = RunFiles(Path(run_dir))
    run = _read_run_json(files)
    footprint = covered_footprint(files)
    restricted = _base_item(files, run, footprint, RESTRICTED)
    shared = _base_item(files, run, footprint, SHARED)
    for asset in run_assets(files):
        if (files.root / asset.name).is_file():
            restricted.add_asset(asset.key, _asset(asset))
            if asset.access == SHARED:
                shared.add_asset(asset.key, _asset(asset))
    _describe_labels(restricted, files)
    _describe_heatmap(restricted, files)
    if files.model_stac.is_file():
        restricted.add_link(pystac.Link("derived_from", MODEL_STAC, pystac.MediaType.JSON,
                                        "The detector (STAC MLM Item)"))
    for item, path in ((restricted, files.run_stac), (shared, files.shared_stac)):
        write_json(path, item.to_dict(include_self_link=False, transform_hrefs=False))
    log.info("wrote %s and %s", files.run_stac, files.shared_stac)
    return files.run_stac, files.shared_stac


def refresh_run_items(run_dir: Path) -> bool:
    """Write the run's Items again after a command changed its folder (risk cells, maps, an erasure);
    a folder that is not a finished scan is left as it is, with a warning.

    Returns:
        True when the Items were written.
    """
    try:
        write_run_items(run_dir)
    except RunFolderError as exc:
        log.warning("the run's STAC Items were not written: %s", exc)
        return False
    return True


def _read_run_json(files: RunFiles) -> dict[str, Any]:
    try:
        run = json.loads(files.run_json.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"expected a readable {files.run_json.name} in {str(files.root)!r} to describe "
                             f"the run as STAC ({exc}); run the scan (again, with --resume) first") from exc
    if not isinstance(run, dict):
        raise RunFolderError(f"{str(files.run_json)!r} is not a JSON object; run the scan again with "
                             "--resume")
    return run


def covered_footprint(files: RunFiles) -> shapely.Geometry | None:
    """The union of the cores of the tiles that held valid imagery (EPSG:4326); None when none did.

    Raises:
        RunFolderError: ``coverage.parquet`` cannot be read.
    """
    try:
        coverage = gpd.read_parquet(files.coverage, columns=["status", "geometry"])
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"expected a readable {files.coverage.name} in {str(files.root)!r} ({exc}); "
                             "run the scan (again, with --resume) first") from exc
    covered = coverage[coverage["status"].isin(COVERED_STATUSES)].to_crs("EPSG:4326")
    if covered.empty:
        return None
    union = shapely.union_all(covered.geometry.to_numpy())
    return shapely.set_precision(union, 1e-7)


def _base_item(
    files: RunFiles, run: dict[str, Any], footprint: shapely.Geometry | None, access: str,
) -> pystac.Item:
    start, end = imagery_range(run)
    when = start if start == end else None
    suffix = "" if access == RESTRICTED else "-shared"
    item = pystac.Item(
        id=f"{run_item_id(files)}{suffix}",
        geometry=None if footprint is None else shapely.geometry.mapping(footprint),
        bbox=None if footprint is None else [round(v, 7) for v in footprint.bounds],
        datetime=when, start_datetime=None if when else start, end_datetime=None if when else end,
        properties={
            "title": "fieldtruth scan" + (" (shared view)" if access == SHARED else " (restricted)"),
            "description": STATEMENT,
            ACCESS: access,
            "fieldtruth:statement": STATEMENT,
        },
    )
    if access == RESTRICTED:
        item.properties["fieldtruth:detector_sha256"] = (run.get("detector") or {}).get("sha256")
        item.properties["fieldtruth:tiles"] = run.get("tiles")
    return item


def run_item_id(files: RunFiles) -> str:
    """A stable id of the run: from its scan plan (grid, detector, imagery), else from ``run.json``."""
    source = files.plan if files.plan.is_file() else files.run_json
    return f"fieldtruth-run-{hashlib.sha256(source.read_bytes()).hexdigest()[:16]}"


def imagery_range(run: dict[str, Any]) -> tuple[datetime, datetime]:
    """First and last acquisition time of the scanned imagery (UTC), from ``run.json``; the time the run
    was described when the imagery carries none."""
    times = []
    for scene in (run.get("inputs") or {}).get("scenes") or ():
        text = scene.get("acquired") if isinstance(scene, dict) else None
        try:
            parsed = datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None
        except ValueError:
            parsed = None
        if parsed is not None:
            times.append(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    if not times and run.get("imagery_dates"):
        for part in str(run["imagery_dates"]).split("/"):
            try:
                times.append(datetime.fromisoformat(part).replace(tzinfo=UTC))
            except ValueError:
                continue
    if not times:
        now = datetime.now(UTC).replace(microsecond=0)
        return now, now
    return min(times).astimezone(UTC), max(times).astimezone(UTC)


def _asset(asset: RunAsset) -> pystac.Asset:
    return pystac.Asset(asset.name, title=asset.title, media_type=asset.media_type,
                        roles=[*asset.roles, asset.access], extra_fields={ACCESS: asset.access})


def _describe_labels(item: pystac.Item, files: RunFiles) -> None:
    """The label extension on the restricted Item: vector labels of a detection task, by class.

    The fields are written as the extension defines them (pystac's own label helper is deprecated)."""
    classes: list[str] = []
    counts: dict[str, int] = {}
    if files.model_card.is_file():
        try:
            classes = [str(c) for c in json.loads(files.model_card.read_text(encoding="utf-8"))["classes"]]
        except (OSError, ValueError, KeyError, TypeError):
            classes = []
    if files.detections.is_file():
        labels = pd.read_parquet(files.detections, columns=["label"])["label"].astype(str)
        counts = labels.value_counts().to_dict()
    names = classes or sorted(counts)
    item.stac_extensions.append(LABEL_SCHEMA)
    item.properties.update({
        "label:description": "Sites found by the detector: unverified leads, not findings",
        "label:type": "vector", "label:properties": ["label"],
        "label:classes": [{"name": "label", "classes": names}],
        "label:tasks": ["detection"], "label:methods": ["automated"],
        "label:overviews": [{"property_key": "label", "counts": [
            {"name": name, "count": int(counts.get(name, 0))} for name in names]}],
    })


def _describe_heatmap(item: pystac.Item, files: RunFiles) -> None:
    """The projection extension on the heatmap asset: its grid's CRS, shape and transform, read from it."""
    asset = item.assets.get("heatmap")
    if asset is None:
        return
    try:
        with rasterio.open(files.heatmap) as src:
            code, shape, transform = src.crs.to_string(), [src.height, src.width], list(src.transform)[:6]
    except RasterioError as exc:
        log.warning("heatmap %s cannot be read (%s); described without its grid", files.heatmap, exc)
        return
    projection = ProjectionExtension.ext(asset, add_if_missing=True)
    projection.code, projection.shape, projection.transform = code, shape, transform
