"""The run folder's files: their names, and the paths of one run folder.

One run folder per scan holds everything the run produced, traceable to its inputs. The rooms that meet
only through it (the scan writes it, review reads its detections, maps read detections and coverage)
name its files from here, so the layout is written down once::

    run.json              config, versions, inputs with provenance, bundle sha256, timings, tile counts
    scan-plan.json        the tile grid, block size, detector and scene offsets a scan started with
    tiles/<tile>.json     one atomic result per tile (detections and coverage, or its error)
    tiles/manifest.jsonl  one line per tile result written, with status, time and process
    tiles/<tile>.heat.npy the detector's score over a tile's core (``scan --heatmap``)
    detections.parquet    GeoParquet, EPSG:4326, one row per site
    coverage.parquet      GeoParquet, EPSG:4326, one row per tile core
    review.sqlite         the review ledger
    model_card.json       the detector's model card
    model.stac.json       the detector as a STAC Item (MLM extension)
    run.stac.json         the run as a STAC Item (restricted: every file of the run)
    run-shared.stac.json  the shared view as a STAC Item (nothing restricted)
    heatmap.tif           the detector's score as a Cloud Optimised GeoTIFF (``scan --heatmap``)
    risk.parquet          risk cells (restricted)
    risk_shared.geojson   the shareable view of the risk cells (small counts suppressed)
    risk.json             provenance of the sector datasets behind the risk cells
    sectors.parquet       sector sites to draw on the restricted map (optional)
    maps/                 HTML maps (maps/leads_<tier>.html by default)
    map_keys.json         the run's id and the signing key of each restricted map drawn (owner only)
    lineage.json          the other runs of the same region this run is linked to (``scan --previous``)
    chips/<site>.png      image chips of sites, where a run keeps them
    learned-by.json       the bundles trained on this run's decisions (``train --from-review``), by sha256
    demo_scores.json      the demo's precision and recall against the generator's labels (demo runs only)
    dask-performance-report.html  Dask's report of the tile phase (``scan --performance-report``)

Every room may import this module; it imports no room.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RUN_JSON = "run.json"
SCAN_PLAN = "scan-plan.json"
TILES = "tiles"
MANIFEST = "manifest.jsonl"
DETECTIONS = "detections.parquet"
COVERAGE = "coverage.parquet"
LEDGER = "review.sqlite"
MODEL_CARD = "model_card.json"
RISK = "risk.parquet"
RISK_SHARED = "risk_shared.geojson"
RISK_REPORT = "risk.json"
SECTORS = "sectors.parquet"
MAPS = "maps"
MAP_KEYS = "map_keys.json"
LINEAGE = "lineage.json"
CHIPS = "chips"
DEMO_SCORES = "demo_scores.json"
PERFORMANCE_REPORT = "dask-performance-report.html"
MODEL_STAC = "model.stac.json"
RUN_STAC = "run.stac.json"
SHARED_STAC = "run-shared.stac.json"
HEATMAP = "heatmap.tif"
TILE_HEATMAP_SUFFIX = ".heat.npy"
LEARNED_BY = "learned-by.json"


@dataclass(frozen=True)
class RunFiles:
    """Paths of the files of one run folder (nothing is read or created here)."""

    root: Path

    @property
    def run_json(self) -> Path:
        return self.root / RUN_JSON

    @property
    def plan(self) -> Path:
        return self.root / SCAN_PLAN

    @property
    def tiles(self) -> Path:
        return self.root / TILES

    @property
    def manifest(self) -> Path:
        return self.tiles / MANIFEST

    @property
    def detections(self) -> Path:
        return self.root / DETECTIONS

    @property
    def coverage(self) -> Path:
        return self.root / COVERAGE

    @property
    def ledger(self) -> Path:
        return self.root / LEDGER

    @property
    def model_card(self) -> Path:
        return self.root / MODEL_CARD

    @property
    def risk(self) -> Path:
        return self.root / RISK

    @property
    def risk_shared(self) -> Path:
        return self.root / RISK_SHARED

    @property
    def risk_report(self) -> Path:
        return self.root / RISK_REPORT

    @property
    def sectors(self) -> Path:
        return self.root / SECTORS

    @property
    def maps(self) -> Path:
        return self.root / MAPS

    @property
    def map_keys(self) -> Path:
        return self.root / MAP_KEYS

    @property
    def lineage(self) -> Path:
        return self.root / LINEAGE

    @property
    def chips(self) -> Path:
        return self.root / CHIPS

    @property
    def demo_scores(self) -> Path:
        return self.root / DEMO_SCORES

    @property
    def performance_report(self) -> Path:
        return self.root / PERFORMANCE_REPORT

    @property
    def model_stac(self) -> Path:
        return self.root / MODEL_STAC

    @property
    def run_stac(self) -> Path:
        return self.root / RUN_STAC

    @property
    def shared_stac(self) -> Path:
        return self.root / SHARED_STAC

    @property
    def heatmap(self) -> Path:
        return self.root / HEATMAP

    @property
    def learned_by(self) -> Path:
        return self.root / LEARNED_BY

    def tile_heatmap(self, tile_id: str) -> Path:
        """The detector's score over one tile's core, kept for the heatmap (``scan --heatmap``)."""
        return self.tiles / f"{tile_id}{TILE_HEATMAP_SUFFIX}"

    def tile_result(self, tile_id: str) -> Path:
        """The result file of one tile."""
        return self.tiles / f"{tile_id}.json"

    def leads_map(self, tier: str) -> Path:
        """Where ``fieldtruth map`` writes the map of a tier (``restricted`` or ``shared``) by default."""
        return self.maps / f"leads_{tier}.html"

    def chip(self, site_id: str) -> Path:
        """The stored image chip of a site."""
        return self.chips / f"{site_id}.png"
