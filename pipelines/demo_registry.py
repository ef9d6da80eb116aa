"""A synthetic sector dataset for the demo: a partial 'registry' of the scanned region's kilns.

Real inventories miss sites and carry more columns than needed; so does this one. It lists a seeded
two thirds of the region's kilns, with a ``kiln_type`` column (declared and kept) and an
``owner_name`` column (undeclared, so ingest drops it and reports the drop). Everything is synthetic.
"""

from __future__ import annotations

import csv
from pathlib import Path

import geopandas as gpd
import numpy as np
import yaml

REGISTRY_SHARE = 2 / 3


def write_registry(labels: Path, folder: Path, *, seed: int) -> Path:
    """Write ``registry.csv`` and its declaration ``registry.yaml``; return the declaration's path."""
    kilns = gpd.read_file(labels)
    kilns = kilns[kilns["class"] == "brick_kiln"]
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(kilns), size=round(len(kilns) * REGISTRY_SHARE), replace=False))
    centres = kilns.geometry.iloc[chosen].to_crs(kilns.estimate_utm_crs()).centroid.to_crs(4326)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "registry.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["registry_id", "kiln_type", "owner_name", "lat", "lon"])
        for i, point in enumerate(centres):
            kind = "FCBK" if rng.random() < 0.7 else "Zigzag"
            writer.writerow([f"R{i:04d}", kind, f"synthetic owner {i}", f"{point.y:.6f}", f"{point.x:.6f}"])
    declaration = {
        "name": "synthetic-kiln-registry",
        "source": "fieldtruth demo (synthetic; no real place or person)",
        "licence": "CC0-1.0",
        "purpose": "Count registered kilns per cell as context for the demo's risk scores.",
        "sector": "brick_kilns",
        "files": ["registry.csv"],
        "format": "csv",
        "geometry": {"x": "lon", "y": "lat", "crs": "EPSG:4326"},
        "keep": ["kiln_type"],
        "on_bad_rows": "error",
        "on_duplicates": "drop",
    }
    path = folder / "registry.yaml"
    path.write_text(yaml.safe_dump(declaration, sort_keys=False), encoding="utf-8")
    return path
