"""Open raster handles kept per process, so that neighbouring tiles reuse GDAL's decoded blocks.

GDAL caches decoded blocks per open dataset and drops them when the dataset is closed. Tiles overlap
by their halo and neighbours share blocks (a 578 px window touches 9 blocks of 256 px), so opening each
band anew for every tile decoded most blocks two to four times; reads of a row of tiles ran about 3x
faster with the handles kept open (see benchmarks/README.md). Handles live in a small LRU keyed by href
and, for local files, size and modification time (a file rewritten in place is reopened; for a member of
a zip, the archive's). Each handle has its own lock: a GDAL dataset must not be read by two threads at
once. The decoded blocks stay bounded by ``GDAL_CACHEMAX``.
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

#: Most raster handles kept open per process (a few scenes of a handful of bands each).
MAX_OPEN = 32

_lock = threading.Lock()
_handles: OrderedDict[tuple, tuple[rasterio.DatasetReader, threading.Lock]] = OrderedDict()


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
    """The open raster for ``href`` (opened with :func:`open_raster` on first use), held for this thread.

    Args:
        href: the raster's path or URL.
        allow_hosts: hosts allowed although not public or not https (the scene's).

    Raises:
        the errors of :func:`open_raster` (missing file, refused suffix or size, not a raster).
    """
    href = str(href)
    key = _key(href)
    with _lock:
        entry = _handles.get(key)
        if entry is None:
            entry = (open_raster(href, allow_hosts=allow_hosts), threading.Lock())
            _handles[key] = entry
            _evict(MAX_OPEN)
        else:
            _handles.move_to_end(key)
    with entry[1]:
        if entry[0].closed:  # evicted by another thread between the two locks: read from a fresh handle
            with open_raster(href, allow_hosts=allow_hosts) as dataset:
                yield dataset
            return
        yield entry[0]


def close_all() -> None:
    """Close every kept handle (tests, and long-lived processes that are done with a region)."""
    with _lock:
        _evict(0)


def open_count() -> int:
    """How many handles are kept open."""
    with _lock:
        return len(_handles)


def _evict(keep: int) -> None:
    """Close the least recently used handles beyond ``keep``; the caller holds ``_lock``."""
    while len(_handles) > keep:
        _, (dataset, handle_lock) = _handles.popitem(last=False)
        with handle_lock:  # waits for a thread still reading it
            dataset.close()
