"""No input makes a sector check slow: every check runs in time linear in the length of its input.

Hypothesis builds long, odd values (runs of ``@``, dots, digits, spaces, signs, letters and other
characters, as an attacker would, to make a pattern backtrack) and each check is timed on the value
at 4,000 and 64,000 characters. Linear time grows 16-fold; the quadratic e-mail pattern grew 256-fold
(80,000 characters took 44 s). The bound allows 4 times linear plus 50 ms, so a noisy shared machine
does not fail it; each time is the best of three.
"""

from __future__ import annotations

import time
import timeit
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fieldtruth.ingest import _sector_checks as checks
from fieldtruth.ingest._sector_decl import SectorDeclaration
from fieldtruth.ingest.errors import SectorDataError
from fieldtruth.ingest.sectors import read_sectors
from fieldtruth.tests.data.sectors import sites_frame, write_declaration

SMALL, FACTOR = 4_000, 16
ODD = "@@..  1234567890+-()_aZé\t\n:/\\\"'<>,;"


def _decl() -> SectorDeclaration:
    return SectorDeclaration.model_validate({
        "name": "t", "source": "s", "licence": "l", "purpose": "p", "sector": "kilns", "files": ["x.csv"],
        "geometry": {"x": "lon", "y": "lat", "crs": "EPSG:4326"}, "keep": ["note"],
    })


def _frame(value: str) -> pd.DataFrame:
    return pd.DataFrame({"note": [value, "FCBK", value[: len(value) // 2]], "lon": [value, "87.0", "87.1"],
                         "lat": ["25.5", value, "25.6"]})


def _checks() -> dict[str, Callable[[str], object]]:
    decl, path = _decl(), Path("x.csv")

    def select(value: str) -> object:
        try:
            return checks.select_columns(decl, path, _frame(value), checks.FileReport("x"), {"lon", "lat"})
        except checks.PersonalDataError:
            return None

    return {
        "looks_personal (a column name)": checks.looks_personal,
        "personal_content_rows": lambda v: checks.personal_content_rows(_frame(v)["note"]),
        "select_columns": select,
        "overlong_values": lambda v: checks.overlong_values(_frame(v), ["note"]),
        "csv_geometry": lambda v: checks.csv_geometry(decl, path, _frame(v)),
        "duplicate_positions": lambda v: checks.duplicate_positions(
            pd.DataFrame({"note": [v, v], "geometry": [None, None]}), ["note"], set()),
        "to_lonlat": lambda v: checks.to_lonlat(decl, path, np.full(len(v) // 8, 87.0),
                                                np.full(len(v) // 8, 25.5), {}, "csv"),
    }


def _best_of(check: Callable[[str], object], value: str, repeats: int = 3) -> float:
    return min(timeit.repeat(lambda: check(value), number=1, repeat=repeats))


@pytest.mark.parametrize("name", list(_checks()))
@settings(max_examples=8, deadline=None, phases=(Phase.explicit, Phase.generate),
          suppress_health_check=[HealthCheck.too_slow])
@given(unit=st.text(alphabet=ODD, min_size=1, max_size=6), tail=st.text(alphabet=ODD, max_size=3))
def test_every_sector_check_runs_in_linear_time(name: str, unit: str, tail: str) -> None:
    check = _checks()[name]
    small = (unit * (SMALL // len(unit) + 1))[:SMALL] + tail
    large = (unit * (SMALL * FACTOR // len(unit) + 1))[: SMALL * FACTOR] + tail
    check(small)  # warm up (imports, caches)
    t_small, t_large = _best_of(check, small), _best_of(check, large)
    assert t_large <= 4 * FACTOR * t_small + 0.05, f"{name}: {t_small:.4f} s -> {t_large:.4f} s"


@pytest.mark.parametrize("value", ["a" * 80_000, "a@" * 40_000, "@" + "a" * 80_000, "x@" + "a." * 40_000,
                                   "1 " * 40_000])
def test_the_values_that_were_quadratic_take_milliseconds(value: str) -> None:
    assert _best_of(lambda v: checks.personal_content_rows(pd.Series([v])), value) < 0.1


def test_the_e_mail_check_still_finds_addresses_in_text() -> None:
    values = pd.Series(["write to owner1.zq@example.org today", "a@b", "x @ y.org", "mail:ravi@kiln.co.in",
                        "a@b@c.org", "no address", "+91 98765 43210"])
    assert list(checks.personal_content_rows(values)) == [0, 3, 4, 6]


def test_a_huge_value_in_a_kept_column_is_a_malformed_row_not_a_hang(tmp_path: Path) -> None:
    frame = sites_frame(5)
    frame["kiln_type"] = frame["kiln_type"].astype(object)
    frame.loc[2, "kiln_type"] = "x@" * 2_500_000  # 5 MB in one cell
    frame.to_csv(tmp_path / "sites.csv", index=False)
    start = time.perf_counter()
    with pytest.raises(SectorDataError, match=r"line 4: 'kiln_type' holds over 10000 characters"):
        read_sectors(write_declaration(tmp_path / "d.yaml", ["sites.csv"]))
    reported = read_sectors(write_declaration(tmp_path / "r.yaml", ["sites.csv"], on_bad_rows="report"))
    assert len(reported.frame) == 4
    assert time.perf_counter() - start < 20
