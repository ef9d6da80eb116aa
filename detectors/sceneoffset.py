"""Per-scene water-level offsets: bring every scene's open water to the same level before the model.

Ports differ by far more than any augmentation covers: haze and sun glint add hundreds to thousands of
counts to every pixel of a scene (the darkest 1 % of nir is 131 at durban and 6,501 at cartagena). A
model card with a ``scene_offset`` asks for this correction: per band, the median over the scene's
darkest ``dark_fraction`` of valid pixels in ``reference_band`` (open water, in scenes that hold some)
is subtracted and ``level`` added. The offsets depend on the scene alone (an overview read of the whole
scene, see :func:`~fieldtruth.imagery.read.read_overview`), so training, ``fieldtruth evaluate`` and
``fieldtruth scan`` add the same offsets to the same scene, whatever grid or tiles they read it on. They
are kept on the scene (``Scene.band_offsets``), so a mosaic corrects each scene before merging, and they
are written to run.json.

It assumes each scene holds open water; it is meant for vessel detectors (see benchmarks/README.md).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fieldtruth.imagery.read import read_overview
from fieldtruth.ingest.scene import Scene

log = logging.getLogger(__name__)

#: The only method so far: subtract the level of the scene's darkest pixels in a reference band.
DARK_WATER = "dark_water"

#: The vessel preset's setting (the sen2ships experiments: 5 % darkest nir, water brought to 1000).
WATER_OFFSET = {"method": DARK_WATER, "reference_band": "nir", "dark_fraction": 0.05, "level": 1000.0}


def check_scene_offset(spec: Mapping[str, Any], bands: Sequence[str]) -> None:
    """Refuse a ``scene_offset`` setting that cannot be applied to a model reading ``bands``.

    Raises:
        ValueError: an unknown method or key, a reference band the model does not read, a fraction outside
            (0, 1), or a level that is not a number.
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"scene_offset must be a mapping ({{}} for none), got {spec!r}")
    if not spec:
        return
    unknown = sorted(set(spec) - set(WATER_OFFSET))
    if unknown or spec.get("method") != DARK_WATER:
        raise ValueError(
            f"scene_offset must be empty or {WATER_OFFSET!r}-like (method {DARK_WATER!r}); got {dict(spec)!r}"
        )
    if spec.get("reference_band") not in bands:
        raise ValueError(
            f"scene_offset reference_band {spec.get('reference_band')!r} is not one of the bands "
            f"{tuple(bands)!r}"
        )
    fraction, level = spec.get("dark_fraction"), spec.get("level")
    if not isinstance(fraction, int | float) or not 0 < fraction < 1:
        raise ValueError(f"scene_offset dark_fraction must be within (0, 1), got {fraction!r}")
    if not isinstance(level, int | float) or not np.isfinite(level):
        raise ValueError(f"scene_offset level must be a number, got {level!r}")


def water_offsets(
    scene: Scene, bands: Sequence[str], spec: Mapping[str, Any], *, warn_dry: bool = True
) -> dict[str, float]:
    """Each band's offset for ``scene``: ``level`` minus the band's median over the water pixels; a log
    warning when those pixels do not look like water, unless ``warn_dry`` is False (a caller that reports
    such scenes itself).

    Pixels with a zero in any of ``bands`` are not counted. A scene without a pixel to count gets no
    offsets (nothing will be detected on it anyway).

    Raises:
        KeyError: the scene lacks one of ``bands``.
        ImageryReadError: a band file could not be read.
    """
    data, valid = read_overview(scene, tuple(bands))
    valid &= np.all(data != 0, axis=0)  # a zero in one band is missing data there, not the darkest water
    if not valid.any():
        log.warning("scene %s has no valid pixel: no water-level offsets", scene.id)
        return {}
    reference = data[list(bands).index(spec["reference_band"])]
    cut = np.quantile(reference[valid], spec["dark_fraction"])
    water = valid & (reference <= cut)
    levels = np.median(data[:, water], axis=1)
    offsets = {band: round(float(spec["level"] - v), 3) for band, v in zip(bands, levels, strict=True)}
    if warn_dry and looks_like_water(offsets, spec) is False:
        log.warning(
            "scene %s: its darkest %g %% in %s are not water (green below nir); the detector's offsets "
            "assume a scene with open water, so its detections there are not to be trusted",
            scene.id,
            100 * spec["dark_fraction"],
            spec["reference_band"],
        )
    return offsets


def looks_like_water(offsets: Mapping[str, float], spec: Mapping[str, Any]) -> bool | None:
    """Whether the pixels the offsets were taken from look like water (brighter in green than in nir, NDWI
    > 0), from the offsets alone; None without both a green and a nir band."""
    if "green" not in offsets or "nir" not in offsets:
        return None
    green, nir = spec["level"] - offsets["green"], spec["level"] - offsets["nir"]
    return bool(green > nir)


def prepare_scenes(
    scenes: Sequence[Scene],
    bands: Sequence[str],
    spec: Mapping[str, Any],
    *,
    warn_dry: bool = True,
) -> list[Scene]:
    """The scenes as a detector with this ``scene_offset`` reads them: each with its own offsets
    (``warn_dry``: see :func:`water_offsets`)."""
    if not spec:
        return list(scenes)
    prepared = []
    for scene in scenes:
        offsets = water_offsets(scene, bands, spec, warn_dry=warn_dry)
        log.info("scene %s: water-level offsets %s", scene.id, offsets)
        prepared.append(dataclasses.replace(scene, band_offsets=offsets))
    return prepared
