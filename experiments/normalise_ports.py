"""Write radiometrically normalised copies of the sen2ships ports, to test per-scene normalisation.

An experiment for issue 4 (results in experiments/README.md): each port's bands are rewritten (uint16, same
grid) and its label and scene files copied, so ``bench_detectors.py --data OUT --set '{"scene_offset": {}}'``
trains, validates and tests on the copies exactly as on the originals. ``wateroffset`` has since become a
pipeline step (``scene_offset`` in the vessels preset, :mod:`fieldtruth.detectors.sceneoffset`: the same
reference, in floating point, without this script's clipping to 1..65535). Per band, per scene:

- ``stretch``:     1000 + 500 (x - p1) / (p10 - p1 + 1), percentiles of the whole scene;
- ``wateroffset``: x - w + 1000, w the band's median over the scene's 5 % darkest pixels in nir (water);
- ``watercfar``:   1000 + 100 (x - w) / s, s = 1.4826 x the median absolute deviation over those pixels.

Usage::

    .venv/bin/python experiments/normalise_ports.py wateroffset --out experiments/out/sen2ships-wateroffset
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import rasterio

from fieldtruth.tests.data.shared import data_folder_or_exit, shared_data_root

BANDS = ("B02", "B03", "B04", "B08")


def normalise(bands: dict[str, np.ndarray], mode: str) -> dict[str, np.ndarray]:
    """The normalised bands of one scene (a band's 0, no data, stays 0)."""
    nir, green = bands["B08"], bands["B03"]
    both = (green > 0) & (nir > 0)
    water = both & (nir <= np.percentile(nir[both], 5))
    out = {}
    for name, x in bands.items():
        valid = x > 0
        if mode == "stretch":
            p1, p10 = np.percentile(x[valid], [1, 10])
            y = 1000 + 500 * (x - p1) / (p10 - p1 + 1)
        else:
            level = np.median(x[water])
            spread = 1.4826 * np.median(np.abs(x[water] - level)) + 1
            y = x - level + 1000 if mode == "wateroffset" else 1000 + 100 * (x - level) / spread
        out[name] = np.where(valid, np.clip(y, 1, 65535), 0).astype(np.uint16)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["stretch", "wateroffset", "watercfar"])
    parser.add_argument("--data", type=Path, default=shared_data_root() / "sen2ships",
                        help="the sen2ships ports")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    for port in sorted(p for p in data_folder_or_exit(args.data).iterdir() if p.is_dir()):
        target = args.out / port.name
        target.mkdir(parents=True, exist_ok=True)
        for f in port.iterdir():
            if f.suffix != ".tif":
                shutil.copy(f, target / f.name)
        bands, profiles = {}, {}
        for name in BANDS:
            with rasterio.open(port / f"{name}.tif") as src:
                bands[name], profiles[name] = src.read(1).astype(np.float32), src.profile
        for name, values in normalise(bands, args.mode).items():
            with rasterio.open(target / f"{name}.tif", "w", **profiles[name]) as dst:
                dst.write(values, 1)
        print(port.name, "written")


if __name__ == "__main__":
    main()
