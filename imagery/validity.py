"""Which pixels are imagery: numbers a sensor product could hold, not nodata.

A NaN, an infinity, or a value no optical product stores (``1e38``, the float32 maximum, ...) is not a
dark or bright pixel: it is missing or broken data. Such pixels are invalid, exactly like nodata: the
tile's coverage counts them as not covered, and the detector sees zeros there, never the values.

The plausible range is one bound on the magnitude, :data:`PLAUSIBLE_MAX`, whatever the file's data type
or scale: reflectance is stored in [0, 1] as floats, or scaled by 10,000 in 16-bit integers (Sentinel-2
L2A, whose offset of -1,000 since processing baseline 04.00 makes small negative values valid), and a
16-bit product cannot exceed 65,535. A value beyond 100,000 is none of these.
"""

from __future__ import annotations

import numpy as np

#: Largest magnitude of a plausible pixel value (see the module docstring).
PLAUSIBLE_MAX = 100_000.0


def plausible(data: np.ndarray, nodata: float | None = None) -> np.ndarray:
    """Where every band of ``data`` (``(bands, h, w)``) holds a plausible value that is not ``nodata``.

    Args:
        data: pixel values as read.
        nodata: the file's nodata value (NaN allowed), or None.

    Returns:
        bool ``(h, w)``: finite, within :data:`PLAUSIBLE_MAX` in magnitude, and not nodata, in every band.
    """
    ok = (data >= -PLAUSIBLE_MAX) & (data <= PLAUSIBLE_MAX)  # False for NaN and infinities
    if nodata is not None and not np.isnan(nodata):
        ok &= data != nodata
    return ok.all(axis=0)


def has_data(pixels: np.ndarray, nodata: float) -> np.ndarray:
    """Where ``pixels`` differ from ``nodata`` (NaN included): GDAL's nodata mask, from pixels read."""
    return ~np.isnan(pixels) if np.isnan(nodata) else pixels != nodata


def blank_invalid(data: np.ndarray, valid: np.ndarray) -> None:
    """Set every band of the invalid pixels to 0, in place (an assignment: never NaN, as ``NaN * 0`` is)."""
    if not valid.all():
        data[:, ~valid] = 0
