"""Open raster handles kept per process, so that neighbouring tiles reuse GDAL's decoded blocks.

GDAL caches decoded blocks per open dataset and drops them when the dataset is closed. Tiles overlap
by their halo and neighbours share blocks (a 578 px window touches 9 blocks of 256 px), so opening each
band anew for every tile decoded most blocks two to four times; reads of a row of tiles ran about 3x
faster with the handles kept open (see benchmarks/README.md). Handles are kept in a small LRU pool keyed
by href and, for local files, size and modification time (a file rewritten in place is reopened; for a
member of a zip, the archive's). A GDAL dataset must not be read by two threads at once, so a handle is
lent to one thread at a time: a thread takes the most recently returned handle of its file, or opens
another one when every handle of that file is lent. Threads reading one file at once therefore read in
parallel (a GPU scan reads on every core: with one handle per file, its readers had waited on each other).
The decoded blocks stay bounded by ``GDAL_CACHEMAX``.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import rasterio

from fieldtruth.ingest.guard import zip_member_parts
from fieldtruth.ingest.rasters import open_raster
from fieldtruth.ingest.remote import is_remote

#: Most idle raster handles kept open per process (a few scenes of a handful of bands, for each of the
#: threads that read them at once).
MAX_OPEN = 64

_lock = threading.Lock()
#: Handles not lent to a thread, least recently returned first: id -> (key, dataset).
_idle: OrderedDict[int, tuple[tuple, rasterio.DatasetReader]] = OrderedDict()
_lent = 0
#: Raised by :func:`close_all`: a handle lent before it is closed when returned, not kept.
_generation = 0


def _key(href: str) -> tuple:
    if is_remote(href):
        return (href,)
    member = zip_member_parts(href)
    try:
        stat = os.stat(member[0] if member else href)  # a zip member changes with its archive
    except OSError:
        return (href, None)  # open_raster raises its own error naming the file
    return (href, stat.st_size, stat.st_mtime_ns)


@contextmanager
def shared_raster(href: str, allow_hosts: Iterable[str] = ()) -> Iterator[rasterio.DatasetReader]:
    """An open raster for ``href``, lent to this thread for the ``with`` block (opened with
    :func:`open_raster` when no kept handle of the file is free).

    Args:
        href: the raster's path or URL.
        allow_hosts: hosts allowed although not public or not https (the scene's).

    Raises:
        the errors of :func:`open_raster` (missing file, refused suffix or size, not a raster).
    """
    global _lent
    href = str(href)
    key = _key(href)
    with _lock:
        dataset, generation = _take_idle(key), _generation
        _lent += 1
    try:
        if dataset is None:  # opened outside the lock: other threads go on meanwhile (a remote open is slow)
            dataset = open_raster(href, allow_hosts=allow_hosts)
        yield dataset
    finally:
        with _lock:
            _lent -= 1
            if dataset is not None and not dataset.closed:
                if generation == _generation:
                    _idle[id(dataset)] = (key, dataset)
                    _evict(MAX_OPEN)
                else:
                    dataset.close()


def close_all() -> None:
    """Close every kept handle (tests, and long-lived processes that are done with a region); handles
    lent at the time are closed when returned."""
    global _generation
    with _lock:
        _generation += 1
        _evict(0)


def open_count() -> int:
    """How many handles are open: kept, or lent to a thread."""
    with _lock:
        return len(_idle) + _lent


def _take_idle(key: tuple) -> rasterio.DatasetReader | None:
    """Remove and return the most recently returned idle handle of ``key``; the caller holds ``_lock``."""
    for handle_id in reversed(_idle):
        if _idle[handle_id][0] == key:
            return _idle.pop(handle_id)[1]
    return None


def _evict(keep: int) -> None:
    """Close the least recently returned idle handles beyond ``keep``; the caller holds ``_lock``."""
    while len(_idle) > keep:
        _, (_, dataset) = _idle.popitem(last=False)
        dataset.close()
