"""Preflight: a scan's scenes and detector checked together, before anything is written or started.

A scan that cannot work must say so in seconds, in one line that names the scene and the fix, before a
Dask cluster starts or a run folder is made (a scene without the band a detector reads used to start a
cluster, fail every tile and leave an empty run folder). :func:`preflight` opens everything a scan needs
(the detector bundle, the AOI, every scene's band headers, through the input guard) and checks:

- **bands**: every scene has every band the model card reads;
- **CRS**: every scene's CRS can be brought to WGS 84 and its footprint lies on the Earth (an engineering
  "site grid" CRS, or another planet's, cannot be placed under a tile grid);
- **pixel size**: every scene's ground pixel (:func:`~fieldtruth.imagery.target.ground_resolution`) is at
  most :data:`GSD_COARSER` times the card's ``gsd_m`` (coarser imagery lacks the detail the detector
  learned) and at least the card's divided by :data:`GSD_FINER` (finer imagery is resampled to the card's
  pixel bilinearly, which beyond that factor keeps too little of it: resample it first);
- **headers**: every band file opens and its header is plausible (the guard refuses absurd sizes);
- **AOI**: the AOI overlaps at least one scene;
- **size**: the tile grid can be made; its tiles and megapixels are the plan;
- **device**: ``--device cuda`` needs a usable CUDA device (``auto`` takes the CPU where there is none).

Any failure raises :class:`~fieldtruth.pipelines.errors.PreflightError` (the command line: one line, exit
status 2). :func:`dry_run_report` adds a short timing of the detector on this machine and describes the
plan, for ``fieldtruth scan --dry-run``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import shapely
import torch
from pyproj import CRS as ProjCRS
from pyproj import Transformer
from pyproj.exceptions import ProjError

from fieldtruth.detectors.bundle import LoadedBundle, load_bundle
from fieldtruth.detectors.device import Device, resolve_device, resolve_precision
from fieldtruth.detectors.scangrid import default_halo, default_tile_size
from fieldtruth.errors import FieldtruthError
from fieldtruth.imagery.grid import TileGrid
from fieldtruth.imagery.target import grid_for_scenes, ground_resolution
from fieldtruth.ingest.aoi import read_aoi
from fieldtruth.ingest.scene import Scene
from fieldtruth.ingest.sources import open_imagery
from fieldtruth.pipelines.errors import PreflightError
from fieldtruth.pipelines.heatmap import heatmap_factor

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry

    from fieldtruth.pipelines.scan import ScanConfig

log = logging.getLogger(__name__)

#: A scene's ground pixel may be at most this many times the card's gsd, and at least the gsd divided by
#: :data:`GSD_FINER`.
GSD_COARSER = 1.5
GSD_FINER = 4.0
#: Scenes named in one message, at most.
_NAMED = 3


@dataclass(frozen=True)
class ScanPlan:
    """What a scan will do, once every check passed.

    Attributes:
        bundle: the loaded detector.
        scenes: the scenes, least cloudy first (the order a mosaic prefers them in).
        grid: the tile grid.
        block: tiles per side of the block one task reads.
        ground_m: each scene's ground pixel in metres, by scene id.
        device: where the model runs (``cpu`` or ``cuda``), and the line saying what ``auto`` chose.
        precision: the model's arithmetic there (``float32`` or ``bfloat16``, ``--precision`` resolved).
    """

    bundle: LoadedBundle
    scenes: list[Scene]
    grid: TileGrid
    block: int
    ground_m: dict[str, float]
    device: Device = Device(torch.device("cpu"), None)
    precision: str = "float32"

    @property
    def megapixels(self) -> float:
        """Millions of pixels in the tiles' cores (the area scanned at the card's pixel)."""
        return len(self.grid) * self.grid.tile_size**2 / 1e6

    @property
    def read_megapixels(self) -> float:
        """Millions of pixels read with the halos."""
        return len(self.grid) * (self.grid.tile_size + 2 * self.grid.halo) ** 2 / 1e6


def preflight(config: ScanConfig) -> ScanPlan:
    """Open and check everything a scan needs, writing nothing and starting nothing.

    Raises:
        PreflightError: the detector, the AOI or a scene cannot be read, or they do not go together; the
            message is one line naming the input and the fix.
    """
    try:
        device = resolve_device(config.device)
        precision = resolve_precision(config.precision, device.device)
        bundle = load_bundle(config.detector, precision=precision)
        aoi = read_aoi(config.aoi) if config.aoi else None
        scenes = open_imagery(
            config.imagery, collection=config.collection, datetime=config.datetime,
            max_cloud=config.max_cloud, bbox=aoi.bounds if aoi is not None else None,
            allow_hosts=config.allow_hosts,
        )
    except FieldtruthError as exc:
        raise PreflightError(str(exc)) from exc
    halo = config.halo if config.halo is not None else default_halo(bundle)
    tile_size = config.tile_size if config.tile_size is not None else default_tile_size(bundle, halo)
    if config.heatmap:
        heatmap_factor(bundle, tile_size)
    if config.date:
        scenes = _of_date(scenes, config.date)
    scenes = sorted(scenes, key=cloud_order)
    _check_bands(bundle, scenes)
    footprints = _check_crs(scenes)
    ground = _check_pixel_size(bundle, scenes)
    if aoi is not None:
        _check_aoi(aoi, footprints)
    try:
        grid = grid_for_scenes(scenes, resolution=bundle.card.gsd_m, tile_size=tile_size, halo=halo,
                               aoi_bounds=aoi.bounds if aoi is not None else None)
    except (FieldtruthError, ValueError) as exc:
        raise PreflightError(f"no tile grid can be laid over the imagery: {exc}") from exc
    plan = ScanPlan(bundle, scenes, grid, config.block or grid.default_block(), ground, device,
                    precision)
    log.info("preflight: %d scene(s), %d tiles, %.1f Mpx", len(scenes), len(grid), plan.megapixels)
    return plan


def _of_date(scenes: list[Scene], date: str) -> list[Scene]:
    """The scenes acquired on ``date`` (a scan of one date of the imagery)."""
    kept = [s for s in scenes if (s.acquired or "")[:10] == date]
    if not kept:
        dates = sorted({(s.acquired or "no date")[:10] for s in scenes})
        raise PreflightError(f"no scene of the imagery was acquired on {date!r}; its dates are {dates!r}. "
                             "Give one of them")
    return kept


def cloud_order(scene: Scene) -> tuple[bool, float]:
    """Sort key: scenes with a known cloud cover first, least cloudy first."""
    cloud = scene.metadata.get("cloud_cover")
    return (cloud is None, float(cloud or 0.0))


def _named(scenes: list[Scene]) -> str:
    shown = ", ".join(repr(s.id) for s in scenes[:_NAMED])
    return shown + (f" and {len(scenes) - _NAMED} more" if len(scenes) > _NAMED else "")


def _check_bands(bundle: LoadedBundle, scenes: list[Scene]) -> None:
    card = bundle.card
    lacking = [s for s in scenes if any(b not in s.band_names for b in card.bands)]
    if lacking:
        first = lacking[0]
        missing = [b for b in card.bands if b not in first.band_names]
        has = ", ".join(first.band_names) or "none"
        raise PreflightError(
            f"scene {_named(lacking)} lacks band(s) {missing} that the detector "
            f"{card.name or card.architecture!r} reads ({', '.join(card.bands)}; the scene has {has}); give "
            "imagery with those bands (Sentinel-2: B02 blue, B03 green, B04 red, B08 nir) or a detector for "
            "these"
        )


def _check_crs(scenes: list[Scene]) -> list[shapely.Polygon]:
    """Each scene's footprint in WGS 84 degrees, once its CRS is known to place it on the Earth."""
    footprints = []
    for scene in scenes:
        if scene.crs is None:
            raise PreflightError(f"scene {scene.id!r} has no CRS; georeference it (gdal_edit.py -a_srs "
                                 "EPSG:...)")
        crs = ProjCRS.from_user_input(scene.crs.to_wkt())
        try:
            to_wgs84 = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
            west, south, east, north = to_wgs84.transform_bounds(*scene.bounds, densify_pts=21)
        except ProjError as exc:
            raise PreflightError(
                f"scene {scene.id!r} is in {crs.name!r} ({crs.type_name}), which cannot be brought to WGS "
                "84, so the scan cannot place it on the Earth; reproject it to a CRS with an EPSG code "
                "(gdalwarp -t_srs EPSG:32645 for UTM zone 45N, say)"
            ) from exc
        if not (all(map(math.isfinite, (west, south, east, north)))
                and -180 <= west <= east <= 180 and -90 <= south <= north <= 90):
            raise PreflightError(f"scene {scene.id!r} does not lie on the Earth in its CRS {crs.name!r}; "
                                 "check its georeferencing")
        footprints.append(shapely.box(west, south, east, north))
    return footprints


def _check_pixel_size(bundle: LoadedBundle, scenes: list[Scene]) -> dict[str, float]:
    gsd = float(bundle.card.gsd_m)
    ground = {scene.id: ground_resolution(scene) for scene in scenes}
    coarse = [s for s in scenes if ground[s.id] > gsd * GSD_COARSER]
    if coarse:
        raise PreflightError(
            f"scene {_named(coarse)} has {ground[coarse[0].id]:.3g} m pixels on the ground, over "
            f"{GSD_COARSER:g}x the {gsd:g} m the detector was trained at: the detail it looks for is not in "
            f"the imagery; give imagery at {gsd:g} m or finer"
        )
    fine = [s for s in scenes if ground[s.id] < gsd / GSD_FINER]
    if fine:
        raise PreflightError(
            f"scene {_named(fine)} has {ground[fine[0].id]:.3g} m pixels on the ground, finer than "
            f"1/{GSD_FINER:g} of the {gsd:g} m the detector was trained at; resample it to {gsd:g} m first "
            f"(gdalwarp -tr {gsd:g} {gsd:g} -r average)"
        )
    return ground


def _check_aoi(aoi: BaseGeometry, footprints: list[shapely.Polygon]) -> None:
    if any(aoi.intersects(footprint) for footprint in footprints):
        return
    covered = shapely.union_all(footprints).bounds
    raise PreflightError(
        f"the AOI {tuple(round(v, 4) for v in aoi.bounds)} lies outside the imagery, which covers "
        f"{tuple(round(v, 4) for v in covered)} (west, south, east, north in degrees); give an AOI over the "
        "imagery, or imagery over the AOI"
    )
