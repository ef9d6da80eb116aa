"""Benchmark: seconds of every sector check against the length of one hostile value (issue 20, class 7).

Run ``.venv/bin/python benchmarks/bench_checks.py [--repeats 3] [--sizes 1000 10000 ...]``. Each check
gets one value of n characters that made the old e-mail pattern backtrack (a run without ``@`` or white
space) in a column of three rows; the best of ``--repeats`` runs is reported. The last column is the old
pattern, timed up to 40,000 characters only (it is quadratic: 80,000 took 44 s). Linear time shows as
seconds that grow tenfold when n does.
"""

from __future__ import annotations

import argparse
import re
import timeit
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

OLD_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
OLD_LIMIT = 40_000


def checks() -> dict[str, Callable[[str], object]]:
    """Each sector check as a function of one long value."""
    from fieldtruth.ingest._sector_checks import (
        FileReport,
        csv_geometry,
        duplicate_positions,
        looks_personal,
        overlong_values,
        personal_content_rows,
        select_columns,
        to_lonlat,
    )
    from fieldtruth.ingest.sectors import SectorDeclaration

    decl = SectorDeclaration.model_validate({
        "name": "b", "source": "s", "licence": "l", "purpose": "p", "sector": "kilns", "files": ["x.csv"],
        "geometry": {"x": "lon", "y": "lat", "crs": "EPSG:4326"}, "keep": ["note"],
    })
    path = Path("x.csv")

    def frame(v: str) -> pd.DataFrame:
        return pd.DataFrame({"note": [v, "FCBK", v[: len(v) // 2]], "lon": [v, "87.0", "87.1"],
                             "lat": ["25.5", v, "25.6"]})

    return {
        "looks_personal": looks_personal,
        "personal_content_rows": lambda v: personal_content_rows(frame(v)["note"]),
        "select_columns": lambda v: select_columns(decl, path, frame(v), FileReport("x"), {"lon", "lat"}),
        "overlong_values": lambda v: overlong_values(frame(v), ["note"]),
        "csv_geometry": lambda v: csv_geometry(decl, path, frame(v)),
        "duplicate_positions": lambda v: duplicate_positions(
            pd.DataFrame({"note": [v, v], "geometry": [None, None]}), ["note"], set()),
        "to_lonlat": lambda v: to_lonlat(decl, path, np.full(max(len(v) // 8, 1), 87.0),
                                         np.full(max(len(v) // 8, 1), 25.5), {}, "csv"),
    }


def best_of(check: Callable[[str], object], value: str, repeats: int) -> float:
    """Fewest seconds of ``repeats`` calls."""
    return min(timeit.repeat(lambda: check(value), number=1, repeat=repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 40_000, 100_000, 1_000_000,
                                                                  10_000_000])
    args = parser.parse_args()
    table = checks()
    names = [*table, "old e-mail pattern"]
    print("| characters | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for size in args.sizes:
        value = "a" * size
        row = [best_of(check, value, args.repeats) for check in table.values()]
        old = best_of(lambda v: OLD_EMAIL.search(v), value, 1) if size <= OLD_LIMIT else None
        cells = [f"{s:.4f}" for s in row] + [f"{old:.2f}" if old is not None else "-"]
        print(f"| {size:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
