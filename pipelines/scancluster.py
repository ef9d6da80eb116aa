"""The scan's Dask cluster: a local one (or a running scheduler's), and the blocks a scan sends it.

Blocks go out in a sliding window of at most ``limit`` futures, so the scheduler's graph stays small
whatever the region's size; each worker reads a band of neighbouring blocks (see
:mod:`fieldtruth.pipelines.placement`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import dask.config
from distributed import Client, LocalCluster, as_completed

from fieldtruth.imagery.grid import TileBlock
from fieldtruth.ingest.scene import Scene
from fieldtruth.pipelines.errors import ClusterError
from fieldtruth.pipelines.placement import WorkerBands
from fieldtruth.pipelines.tileresult import TileResult
from fieldtruth.pipelines.tilework import allocator_environ, process_block, worker_threads_for

if TYPE_CHECKING:
    from fieldtruth.pipelines.scan import ScanConfig

log = logging.getLogger(__name__)


#: Dask settings of the scan's own local cluster. Dask samples every task thread's stack 100 times a
#: second (for the dashboard's Profile page), checks each worker's memory 10 times a second, and its
#: event loops tick 50 times a second: together about 7 % of two cores in a two-worker scan, taken from the
#: model where every core runs one (benchmarks/README.md). The profiler is off; the rest runs less often
#: (memory limits are still enforced, within a second).
QUIET_CLUSTER = {
    "distributed.worker.profile.enabled": False,
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.tick.interval": "200ms",
    "distributed.admin.system-monitor.interval": "2s",
}


@contextmanager
def cluster_client(config: ScanConfig, say: Callable[[str], None], gpu: bool = False) -> Iterator[Client]:
    """A client of the scan's cluster: the scheduler at ``config.scheduler``, or a local cluster of
    ``config.workers`` processes whose allocator is set from their start (:func:`allocator_environ`).
    Local GPU workers share the cores: each thread reads, one at a time drives the GPU.

    Raises:
        ClusterError: the scheduler could not be reached.
    """
    if config.scheduler:
        try:
            client = Client(config.scheduler, timeout="15s")
        except OSError as exc:
            raise ClusterError(
                f"could not reach the Dask scheduler at {config.scheduler!r}: {exc}; "
                "check the address and that "
                "`dask scheduler` is running"
            ) from exc
        say(f"scan: using scheduler {config.scheduler} (dashboard {client.dashboard_link})")
        with client:
            yield client
        return
    task_threads = worker_threads_for(config.threads_per_worker, config.workers, gpu=gpu)
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **allocator_environ()}
    settings = {"distributed.nanny.pre-spawn-environ": environ, **QUIET_CLUSTER}
    with dask.config.set(settings), LocalCluster(
        n_workers=config.workers, threads_per_worker=task_threads, processes=True, dashboard_address=":0",
        host="127.0.0.1",
    ) as cluster, Client(cluster) as client:
        if gpu:
            layout = (f"{config.workers} worker(s) sharing the GPU, each with {task_threads} thread(s) "
                      "reading while one of them drives it")
        else:
            reading = ("each reading between model passes (no core to spare)"
                       if task_threads <= config.threads_per_worker else "each reading ahead on one more")
            layout = f"{config.workers} worker(s) x {config.threads_per_worker} model thread(s), {reading}"
        say(f"scan: local cluster of {layout}; dashboard {client.dashboard_link}")
        yield client


def worker_threads(client: Client) -> int:
    """Task threads of every worker of the cluster together."""
    return max(1, sum(client.nthreads().values()))


def block_pixels(block: TileBlock) -> int:
    """The pixels a block's tiles pass through the model, halos included: its share of a scan's work."""
    return sum(rows * cols for rows, cols in (tile.shape for tile in block.tiles))


def run_blocks(
    client: Client, scenes: list[Scene], blocks: list[TileBlock], limit: int, worker_bands: bool = True,
) -> Iterator[TileResult]:
    """Submit blocks in a sliding window of at most ``limit`` futures; yield tile results as blocks finish.

    With ``worker_bands``, each worker is asked to read one band of neighbouring blocks (bands of equal
    pixels), and a worker that finishes a block is given the next of its band (see
    :mod:`fieldtruth.pipelines.placement`); otherwise blocks go out in grid order to whichever worker the
    scheduler picks.
    """
    bands = WorkerBands(blocks, list(client.nthreads()) if worker_bands else [], work=block_pixels)
    scene_future = client.scatter(scenes, broadcast=True)
    window = as_completed()

    def submit(placed: tuple[TileBlock, str | None]) -> None:
        block, worker = placed
        where = {"workers": worker, "allow_other_workers": True} if worker else {}
        window.add(client.submit(process_block, scene_future, block, key=f"block-{block.window.id}",
                                 pure=False, **where))

    for placed in bands.first(limit):
        submit(placed)
    for future in window:
        results = future.result()
        future.release()
        worker = results[0].worker if results and worker_bands else None
        if (placed := bands.next_for(worker)) is not None:
            submit(placed)
        yield from results
