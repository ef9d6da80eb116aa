"""Risk scoring of cells: documented, configurable weights, a band, and a per-cell explanation.

Each cell gets terms in 0..1, and ``score = sum(weight_t * term_t) / sum(weight_t)`` over the terms:

``leads``
    ``1 - exp(-n / scale)`` of the detections that are not rejected in review (``scales.leads``, default 3).
``confirmed``
    ``1 - exp(-n / scale)`` of the detections confirmed in review or sent to a field visit (default 1).
``lead_score``
    the mean detector score of the detections that are not rejected (0 when there are none).
``sector_sites``
    ``1 - exp(-s / scale)`` where ``s = sum(sector_weights[sector] * sites)`` (unlisted sectors weigh 1).
``<stat>``
    one term per declared area statistic: ``clip((value - min) / (max - min), 0, 1)``, 0 where unknown.

The band is ``low`` below ``bands.medium``, ``medium`` below ``bands.high``, else ``high``; a cell whose
imagery coverage is below ``min_coverage`` gets the band ``not covered`` whatever its score: no data is
not low risk. The explanation lists each term's contribution to the score (``weight * term / total``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from fieldtruth.maps.errors import RiskConfigError

log = logging.getLogger(__name__)

NOT_COVERED = "not covered"
BANDS = ("low", "medium", "high", NOT_COVERED)


class AreaStat(BaseModel):
    """One numeric column of the area-statistics table, scaled to 0..1 between ``min`` and ``max``."""

    model_config = ConfigDict(extra="forbid")
    column: str
    weight: float = Field(ge=0)
    min: float = 0.0
    max: float

    @model_validator(mode="after")
    def _range(self) -> AreaStat:
        if not self.max > self.min:
            raise ValueError(f"expected max > min for {self.column!r}; got {self.min!r}..{self.max!r}")
        return self


class AreaStats(BaseModel):
    """Area statistics joined by admin code: boundaries (polygons with a code) and a CSV table.

    Named in a config file (:func:`load_risk_config`), both files must lie in that file's folder or in a
    folder allowed explicitly (``--allow-dir``, ``FIELDTRUTH_ALLOW_DIRS``), as the files of a sector
    declaration must.
    """

    model_config = ConfigDict(extra="forbid")
    boundaries: Path
    boundary_code: str
    table: Path
    table_code: str
    terms: dict[str, AreaStat]
    _folder: Path | None = PrivateAttr(default=None)

    @property
    def within(self) -> tuple[Path, ...] | None:
        """The folder its files must lie in (the config file's); None when the config was built in code."""
        return None if self._folder is None else (self._folder,)


class Bands(BaseModel):
    model_config = ConfigDict(extra="forbid")
    medium: float = Field(default=0.33, gt=0, lt=1)
    high: float = Field(default=0.66, gt=0, lt=1)

    @model_validator(mode="after")
    def _order(self) -> Bands:
        if not self.medium < self.high:
            raise ValueError(f"expected bands.medium < bands.high; got {self.medium!r} and {self.high!r}")
        return self


class RiskConfig(BaseModel):
    """Weights and thresholds of the scoring; every field has a default, so an empty config is valid."""

    model_config = ConfigDict(extra="forbid")
    weights: dict[str, float] = Field(
        default_factory=lambda: {"leads": 0.3, "confirmed": 0.2, "lead_score": 0.1, "sector_sites": 0.4}
    )
    scales: dict[str, float] = Field(
        default_factory=lambda: {"leads": 3.0, "confirmed": 1.0, "sector_sites": 10.0})
    sector_weights: dict[str, float] = Field(default_factory=dict)
    bands: Bands = Field(default_factory=Bands)
    min_coverage: float = Field(default=0.5, ge=0, le=1)
    area_stats: AreaStats | None = None

    @model_validator(mode="after")
    def _check(self) -> RiskConfig:
        unknown = set(self.weights) - {"leads", "confirmed", "lead_score", "sector_sites"}
        if unknown:
            raise ValueError(
                f"unknown weight(s) {sorted(unknown)}; area statistics take weights under area_stats")
        if any(w < 0 for w in self.weights.values()) or any(s <= 0 for s in self.scales.values()):
            raise ValueError("expected weights >= 0 and scales > 0")
        return self

    def term_weights(self) -> dict[str, float]:
        """All term weights, area statistics included."""
        stats = {name: t.weight for name, t in (self.area_stats.terms.items() if self.area_stats else [])}
        return {**self.weights, **stats}


def load_risk_config(path: Path | str | None) -> RiskConfig:
    """Parse a risk config YAML (``None``: the defaults). Relative area-statistics paths follow the file.

    Raises:
        RiskConfigError: If the file is missing, not YAML, or does not match :class:`RiskConfig`.
    """
    if path is None:
        return RiskConfig()
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        config = RiskConfig(**document)
    except (OSError, yaml.YAMLError, ValidationError, TypeError) as exc:
        raise RiskConfigError(
            f"expected a valid risk config at {str(path)!r}: {exc}. See docs/risk.md.") from exc
    if config.area_stats is not None:
        base = path.resolve().parent
        stats = config.area_stats
        stats.boundaries, stats.table = base / stats.boundaries, base / stats.table
        stats._folder = base
    return config


def _saturate(n: np.ndarray, scale: float) -> np.ndarray:
    return 1.0 - np.exp(-np.asarray(n, dtype=float) / scale)


def score_cells(cells: pd.DataFrame, config: RiskConfig, sectors: list[str]) -> pd.DataFrame:
    """Add ``score``, ``band`` and ``explanation`` to a table of cell counts.

    Args:
        cells: Columns ``det_open``, ``det_confirmed``, ``det_mean_score``, ``coverage``,
            ``sites_<sector>`` for each of ``sectors``, and ``stat_<name>`` for each area statistic.
        config: The weights.
        sectors: Sector names with a ``sites_<sector>`` column.

    Returns:
        A copy with the three columns added.
    """
    out = cells.copy()
    scales = {"leads": 3.0, "confirmed": 1.0, "sector_sites": 10.0, **config.scales}
    weighted_sites = sum(
        (config.sector_weights.get(s, 1.0) * out[f"sites_{s}"].to_numpy(dtype=float) for s in sectors),
        np.zeros(len(out)),
    )
    terms = {
        "leads": _saturate(out["det_open"], scales["leads"]),
        "confirmed": _saturate(out["det_confirmed"], scales["confirmed"]),
        "lead_score": np.nan_to_num(out["det_mean_score"].to_numpy(dtype=float)),
        "sector_sites": _saturate(weighted_sites, scales["sector_sites"]),
    }
    for name, stat in (config.area_stats.terms.items() if config.area_stats else []):
        value = out[f"stat_{name}"].to_numpy(dtype=float)
        terms[name] = np.nan_to_num(np.clip((value - stat.min) / (stat.max - stat.min), 0, 1))
    weights = config.term_weights()
    total = sum(weights.values()) or 1.0
    contributions = {t: weights.get(t, 0.0) * terms[t] / total for t in terms}
    score = np.clip(sum(contributions.values(), np.zeros(len(out))), 0.0, 1.0)
    band = np.where(score >= config.bands.high, "high",
                    np.where(score >= config.bands.medium, "medium", "low"))
    band = np.where(out["coverage"].to_numpy(dtype=float) < config.min_coverage, NOT_COVERED, band)
    out["score"] = score
    out["band"] = band
    names = list(contributions)
    matrix = (np.column_stack([np.round(contributions[t], 4) for t in names]) if names
              else np.zeros((len(out), 0)))
    out["explanation"] = [json.dumps(dict(zip(names, row.tolist(), strict=True))) for row in matrix]
    return out
