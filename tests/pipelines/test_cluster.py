"""Scans against a real Dask cluster on 127.0.0.1, a worker killed mid-run, and a killed scan resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest

from fieldtruth.pipelines.scan import ScanConfig, scan

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _wait_for(predicate, timeout: float = 60.0, what: str = "condition") -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


class LoopbackCluster:
    """A `dask scheduler` and worker processes on 127.0.0.1, started and stopped by the test."""

    def __init__(self, folder: Path, workers: int = 2) -> None:
        self.file = folder / "scheduler.json"
        env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
        self.scheduler = subprocess.Popen(
            [
                str(BIN / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--dashboard-address",
                ":0",
                "--scheduler-file",
                str(self.file),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        _wait_for(self.file.exists, what="the scheduler file")
        time.sleep(0.5)
        self.address = json.loads(self.file.read_text())["address"]
        self.workers = [
            subprocess.Popen(
                [
                    str(BIN / "dask"),
                    "worker",
                    "--scheduler-file",
                    str(self.file),
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--host",
                    "127.0.0.1",
                    "--dashboard-address",
                    ":0",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            for _ in range(workers)
        ]
        from distributed import Client

        with Client(self.address, timeout="30s") as client:
            client.wait_for_workers(workers, timeout=60)

    def stop(self) -> None:
        for process in [*self.workers, self.scheduler]:
            if process.poll() is None:
                process.terminate()
        for process in [*self.workers, self.scheduler]:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[LoopbackCluster]:
    running = LoopbackCluster(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _config(scene: Path, bundle: Path, out: Path, **extra: object) -> ScanConfig:
    return ScanConfig(imagery=scene, detector=bundle, out=out, tile_size=128, workers=1, **extra)


@pytest.fixture(scope="module")
def reference(
    small_scene: Path, quick_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> gpd.GeoDataFrame:
    """An undisturbed local scan: the output every other run must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "run"
    scan(_config(small_scene, quick_bundle, out))
    return gpd.read_parquet(out / "detections.parquet")


def _same(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> bool:
    """The same leads at the same places (site ids are random per run, so they are left out)."""
    drop = ["geometry", "site_id"]
    return a.drop(columns=drop).equals(b.drop(columns=drop)) and bool(
        a.geometry.geom_equals_exact(b.geometry, tolerance=0).all()
    )


def test_scan_through_a_scheduler_matches_the_local_scan(
    cluster: LoopbackCluster,
    small_scene: Path,
    quick_bundle: Path,
    reference: gpd.GeoDataFrame,
    tmp_path: Path,
) -> None:
    summary = scan(_config(small_scene, quick_bundle, tmp_path / "run", scheduler=cluster.address))
    assert summary.done == summary.tiles == 25 and not summary.failed
    assert _same(gpd.read_parquet(tmp_path / "run" / "detections.parquet"), reference)


def test_each_worker_reads_a_band_of_neighbouring_tiles(
    cluster: LoopbackCluster,
    small_scene: Path,
    quick_bundle: Path,
    reference: gpd.GeoDataFrame,
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    summary = scan(_config(small_scene, quick_bundle, out, scheduler=cluster.address, max_in_flight=2))
    assert summary.done == 25 and summary.tiles == 25
    results = [json.loads(p.read_text()) for p in sorted((out / "tiles").glob("r*.json"))]  # grid order
    done_by: dict[str, list[int]] = {}
    for index, result in enumerate(results):
        done_by.setdefault(result["worker"], []).append(index)
    assert len(done_by) == 2, "both workers must have worked"
    for worker, indices in done_by.items():
        runs = 1 + sum(1 for a, b in zip(indices, indices[1:], strict=False) if b != a + 1)
        # its own band, and at most the far end of the other band once its own was done
        assert runs <= 2, f"{worker} read tiles {indices}: not a band of neighbours"
    assert _same(gpd.read_parquet(out / "detections.parquet"), reference)


def test_a_worker_killed_mid_run_loses_nothing_and_doubles_nothing(
    cluster: LoopbackCluster,
    small_scene: Path,
    quick_bundle: Path,
    reference: gpd.GeoDataFrame,
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    victim = cluster.workers[0]

    def kill_after_first_tile() -> None:
        _wait_for(
            lambda: (out / "tiles").exists() and any((out / "tiles").glob("*.json")), what="a first tile"
        )
        victim.send_signal(signal.SIGKILL)

    killer = threading.Thread(target=kill_after_first_tile)
    killer.start()
    summary = scan(_config(small_scene, quick_bundle, out, scheduler=cluster.address))
    killer.join()
    assert victim.poll() is not None, "the worker must have died during the scan"
    assert summary.done == 25 and not summary.failed
    assert len(list((out / "tiles").glob("*.json"))) == 25
    assert _same(gpd.read_parquet(out / "detections.parquet"), reference)


def test_a_killed_scan_resumes_without_redoing_finished_tiles(
    small_scene: Path, quick_bundle: Path, reference: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    command = [
        str(BIN / "fieldtruth"),
        "-q",
        "scan",
        "--imagery",
        str(small_scene),
        "--detector",
        str(quick_bundle),
        "--out",
        str(out),
        "--tile-size",
        "128",
        "--workers",
        "1",
    ]
    process = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for(
            lambda: len(list((out / "tiles").glob("*.json"))) >= 5 if (out / "tiles").exists() else False,
            timeout=120,
            what="five finished tiles",
        )
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in (out / "tiles").glob("*.json")}
    assert 5 <= len(finished) < 25, "the scan must have been killed mid-run"
    before = len((out / "tiles" / "manifest.jsonl").read_text().splitlines())
    assert not (out / "detections.parquet").exists()
    result = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{len(finished)} skipped" in result.stdout
    assert {n: (out / "tiles" / n).stat().st_mtime_ns for n in finished} == finished
    assert len(list((out / "tiles").glob("*.json"))) == 25
    assert not list((out / "tiles").glob(".*.tmp")), "no temporary file may be left behind"
    lines = [json.loads(x) for x in (out / "tiles" / "manifest.jsonl").read_text().splitlines()]
    redone = {line["tile_id"] + ".json" for line in lines[before:]}
    assert not redone & set(finished), "the manifest must show no finished tile written again"
    all_tiles = {p.stem for p in (out / "tiles").glob("*.json")}
    assert len(all_tiles) == 25 and {line["tile_id"] for line in lines} == all_tiles
    assert _same(gpd.read_parquet(out / "detections.parquet"), reference)
