"""Honest splits of a point inventory: whole regions go to train, validation or test.

A region is a value of one of the inventory's columns (a state, a district) or a square block of the
ground (``block_m`` a side, in the equal-area EPSG:6933 grid, the same wherever the scenes are). Regions
are assigned to sets whole: by name (``train: [bihar]``, ``test: [west_bengal]``; regions named nowhere
are left out) or, when no name is given, at random by a seed with the given fractions. The builder then
keeps a window only when its ground belongs to one set, and no site of another set lies within the
buffer of it (:func:`window_set`), so a detector is never evaluated on ground it trained on, or next to it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from pyproj import Transformer
from rasterio.warp import transform_bounds

from fieldtruth.pipelines.errors import DatasetError

log = logging.getLogger(__name__)

#: The sets, in the order fractions are given.
SETS = ("train", "validation", "test")
#: The equal-area CRS whose grid blocks are laid in (metres; the same blocks whatever the scenes' CRS).
BLOCK_CRS = "EPSG:6933"


@dataclass(frozen=True)
class SplitPlan:
    """How regions are made and assigned.

    Attributes:
        column: the inventory column naming each site's region; None for grid blocks.
        block_m: side of a grid block (metres), when ``column`` is None.
        buffer_m: least distance between a window and a site of another set (metres).
        named: set -> the regions given to it by name (empty: random assignment).
        fractions: share of regions per set (train, validation, test) for a random assignment.
        seed: seed of the random assignment.
    """

    column: str | None = None
    block_m: float | None = None
    buffer_m: float = 2000.0
    named: Mapping[str, Sequence[str]] = field(default_factory=dict)
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.column is None) == (self.block_m is None):
            raise DatasetError("a split needs exactly one of a region column (--split-by COLUMN) and a block "
                               f"size (--block-km); got column={self.column!r}, block_m={self.block_m!r}")
        if self.block_m is not None and not self.block_m > 0:
            raise DatasetError(f"block size must be positive metres; got {self.block_m!r}")
        if self.buffer_m < 0:
            raise DatasetError(f"buffer must be 0 or more metres; got {self.buffer_m!r}")
        unknown = sorted(set(self.named) - set(SETS))
        if unknown:
            raise DatasetError(f"sets are {SETS!r}; got {unknown!r}")
        if any(f < 0 for f in self.fractions) or not math.isclose(sum(self.fractions), 1.0, abs_tol=1e-6):
            raise DatasetError(f"split fractions (train, validation, test) must be >= 0 and add up to 1; got "
                               f"{self.fractions!r}")

    def describe(self) -> dict:
        """JSON-ready description (recorded in every scene's split.json and in dataset.json)."""
        return {"by": f"column {self.column}" if self.column else f"blocks of {self.block_m:g} m",
                "buffer_m": self.buffer_m, "named": {k: list(v) for k, v in self.named.items() if v},
                "fractions": None if self.is_named else list(self.fractions),
                "seed": None if self.is_named else self.seed}

    @property
    def is_named(self) -> bool:
        """Whether regions are assigned by name."""
        return any(self.named.values())


def site_regions(plan: SplitPlan, frame, source: str) -> np.ndarray:  # noqa: ANN001 - a GeoDataFrame
    """The region of every site (text): its column value, or its block (``b<col>_<row>``).

    Raises:
        DatasetError: the column is not in the inventory (kept columns only), or holds empty values.
    """
    if plan.column is not None:
        if plan.column not in frame.columns:
            kept = [c for c in frame.columns if c not in ("geometry", "sector")]
            raise DatasetError(f"--split-by {plan.column!r}: inventory {source!r} has no such column; its "
                               f"kept columns are {kept!r} (add it to the declaration's `keep:`)")
        values = frame[plan.column]
        if values.isna().any():
            raise DatasetError(f"inventory {source!r} column {plan.column!r} is empty on "
                               f"{int(values.isna().sum())} row(s); every site needs a region to be split by")
        return values.astype(str).to_numpy()
    return block_names(*block_xy(frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()), plan.block_m)


def block_names(x: np.ndarray, y: np.ndarray, block_m: float) -> np.ndarray:
    """The name (``b<col>_<row>``) of the block holding each point of the block grid's CRS."""
    cols, rows = np.floor(x / block_m).astype(int), np.floor(y / block_m).astype(int)
    return np.array([f"b{c}_{r}" for c, r in zip(cols, rows, strict=True)], dtype=object)


def block_xy(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes and latitudes in the block grid's CRS (metres)."""
    return Transformer.from_crs("EPSG:4326", BLOCK_CRS, always_xy=True).transform(lon, lat)


def assign_regions(plan: SplitPlan, regions: Sequence[str], source: str) -> dict[str, str]:
    """Region -> set. Named: each named region to its set (the others left out); else at random.

    Raises:
        DatasetError: a region named for two sets, a named region the inventory does not hold, or fewer
            regions than sets to fill at random.
    """
    present = sorted(set(regions))
    if plan.is_named:
        return _named(plan, present, source)
    wanted = [s for s, f in zip(SETS, plan.fractions, strict=True) if f > 0]
    if len(present) < len(wanted):
        raise DatasetError(
            f"inventory {source!r} holds {len(present)} region(s) ({present[:5]!r}) for {len(wanted)} sets "
            f"{wanted!r}: one region would be in two sets; split by a finer column or smaller blocks")
    order = np.random.default_rng(plan.seed).permutation(len(present))
    counts = _counts(len(present), plan.fractions)
    sets = [s for s, n in zip(SETS, counts, strict=True) for _ in range(n)]
    return {present[i]: sets[k] for k, i in enumerate(order)}


def _named(plan: SplitPlan, present: list[str], source: str) -> dict[str, str]:
    assigned: dict[str, str] = {}
    for name in SETS:
        for region in plan.named.get(name, ()):
            if region in assigned and assigned[region] != name:
                raise DatasetError(f"region {region!r} is given to both {assigned[region]!r} and {name!r}; "
                                   "a region belongs to one set: give it once")
            assigned[region] = name
    missing = sorted(set(assigned) - set(present))
    if missing:
        raise DatasetError(f"region(s) {missing!r} are not in inventory {source!r}; its regions are "
                           f"{present[:20]!r}{' ...' if len(present) > 20 else ''}")
    return assigned


def _counts(n: int, fractions: tuple[float, float, float]) -> list[int]:
    """Regions per set: at least one for every set with a share, the rest by largest remainder."""
    raw = [n * f for f in fractions]
    counts = [max(1, math.floor(r)) if f > 0 else 0 for r, f in zip(raw, fractions, strict=True)]
    while sum(counts) > n:
        counts[int(np.argmax(counts))] -= 1
    order = np.argsort([-(r - c) for r, c in zip(raw, counts, strict=True)], kind="stable")
    for i in order:
        if sum(counts) >= n:
            break
        if fractions[i] > 0:
            counts[i] += 1
    counts[0] += n - sum(counts)
    return counts


def in_one_block(bounds: Sequence[float], crs: object, plan: SplitPlan) -> bool:
    """Whether a window (``bounds`` in ``crs``), grown by half the buffer, lies in one grid block (its corners
    in one block)."""
    west, south, east, north = transform_bounds(crs, "EPSG:4326", *bounds, densify_pts=5)
    bx, by = block_xy(np.array([west, east, west, east]), np.array([south, south, north, north]))
    grow = plan.buffer_m / 2
    cols = np.floor((bx + np.array([-grow, grow, -grow, grow])) / plan.block_m)
    rows = np.floor((by + np.array([-grow, -grow, grow, grow])) / plan.block_m)
    return len(set(cols)) == 1 and len(set(rows)) == 1


def block_of(bounds: Sequence[float], crs: object, plan: SplitPlan) -> str:
    """The block (region name, as :func:`site_regions` names it) of a window's centre."""
    west, south, east, north = transform_bounds(crs, "EPSG:4326", *bounds, densify_pts=5)
    return str(block_names(*block_xy(np.array([(west + east) / 2]), np.array([(south + north) / 2])),
                           plan.block_m)[0])


def window_set(sets_inside: Sequence[str | None], sets_near: Sequence[str | None]) -> str | None:
    """The set a window belongs to, or None when it must be dropped.

    Args:
        sets_inside: the set of each site in the window (None: its region is left out of every set).
        sets_near: the set of each site within the buffer around the window (those inside included).

    Returns:
        The one set of the sites inside; None when they belong to two sets, to none, or a site of
        another set lies within the buffer.
    """
    inside = {s for s in sets_inside if s is not None}
    if len(inside) != 1:
        return None
    (chosen,) = inside
    return chosen if all(s in (None, chosen) for s in sets_near) else None
