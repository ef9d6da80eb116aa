"""Benchmark: ingest + cell aggregation of the KilnEye kilns (21,941) plus 100,000 generated detections.

Run ``.venv/bin/python benchmarks/bench_risk.py [--runs 3]``. Each run is a fresh subprocess so that peak
memory (``ru_maxrss``) belongs to that run alone; the report gives the median seconds and peak MiB. Needs the
KilnEye inventory (``../shared/data/kilneye`` beside the repository, or ``$FIELDTRUTH_SHARED_DATA/kilneye``).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fieldtruth.tests.data.shared import data_folder_or_exit, shared_data_root


def one_run(run_dir: Path, detections: int) -> dict[str, float]:
    """Time one ingest + aggregation + write in this process; return seconds and peak RSS (MiB)."""
    from fieldtruth.maps.risk import build_risk_cells, write_risk
    from fieldtruth.tests.data.sectors import kilneye_declaration, write_kiln_run

    write_kiln_run(run_dir, n_detections=detections, seed=1)
    start = time.perf_counter()
    risk = build_risk_cells(run_dir, [kilneye_declaration()])
    aggregated = time.perf_counter() - start
    write_risk(run_dir, risk)
    total = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": total, "aggregate_seconds": aggregated, "peak_mib": peak, "cells": len(risk.cells),
            "sites": sum(risk.sites_in_aoi.values()), "detections": risk.detections_in_aoi}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--detections", type=int, default=100_000)
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        sys.stdout.write(json.dumps(one_run(args.child, args.detections)) + "\n")
        return
    data_folder_or_exit(shared_data_root() / "kilneye")
    results = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([sys.executable, __file__, "--child", str(Path(tmp) / "run"),
                                  "--detections", str(args.detections)],
                                 check=True, capture_output=True, text=True)
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            sys.stderr.write(f"run {i + 1}: {results[-1]}\n")
    summary = {
        "runs": args.runs,
        "median_seconds": statistics.median(r["seconds"] for r in results),
        "median_aggregate_seconds": statistics.median(r["aggregate_seconds"] for r in results),
        "median_peak_mib": statistics.median(r["peak_mib"] for r in results),
        "cells": results[0]["cells"], "sites_in_aoi": results[0]["sites"],
        "detections_in_aoi": results[0]["detections"],
    }
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
