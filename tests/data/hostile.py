"""Hostile inputs for the tests of the input guard: VRTs that read what they should not, OGR VRTs,
GeoJSON that fetches, looping STAC catalogues, and scenes whose pixels are not numbers.

Each builder writes what an attacker would hand an analyst; the tests assert the guard refuses it (and
that loopback servers they start received no request).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio

_GEO = '<SRS>EPSG:32645</SRS><GeoTransform>500000, 10, 0, 2800000, 0, -10</GeoTransform>'


def vrt(path: Path, source: str, *, relative: bool = False, size: int = 64, band_kind: str | None = None,
        dataset_kind: str | None = None, inner: str = "") -> Path:
    """A one-band VRT reading ``source`` (a SimpleSource), with optional band/dataset ``subClass``."""
    band = f' subClass="{band_kind}"' if band_kind else ""
    dataset = f' subClass="{dataset_kind}"' if dataset_kind else ""
    path.write_text(
        f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}"{dataset}>{_GEO}'
        f'<VRTRasterBand dataType="UInt16" band="1"{band}>{inner}<SimpleSource>'
        f'<SourceFilename relativeToVRT="{int(relative)}">{source}</SourceFilename><SourceBand>1</SourceBand>'
        "</SimpleSource></VRTRasterBand></VRTDataset>"
    )
    return path


def warped_vrt(path: Path, source_dataset: str) -> Path:
    """A warped VRT whose ``<SourceDataset>`` is ``source_dataset`` (a URL, say)."""
    path.write_text(
        f'<VRTDataset rasterXSize="64" rasterYSize="64" subClass="VRTWarpedDataset">{_GEO}'
        '<VRTRasterBand dataType="UInt16" band="1" subClass="VRTWarpedRasterBand"/>'
        "<GDALWarpOptions><WarpMemoryLimit>6e7</WarpMemoryLimit><ResampleAlg>NearestNeighbour</ResampleAlg>"
        "<WorkingDataType>UInt16</WorkingDataType>"
        f'<SourceDataset relativeToVRT="0">{source_dataset}</SourceDataset>'
        "<Transformer><ApproxTransformer><MaxError>0.125</MaxError><BaseTransformer><GenImgProjTransformer>"
        "<SrcGeoTransform>500000,10,0,2800000,0,-10</SrcGeoTransform>"
        "<SrcInvGeoTransform>-50000,0.1,0,280000,0,-0.1</SrcInvGeoTransform>"
        "<DstGeoTransform>500000,10,0,2800000,0,-10</DstGeoTransform>"
        "<DstInvGeoTransform>-50000,0.1,0,280000,0,-0.1</DstInvGeoTransform>"
        "</GenImgProjTransformer></BaseTransformer></ApproxTransformer></Transformer>"
        "<BandList><BandMapping src=\"1\" dst=\"1\"/></BandList></GDALWarpOptions></VRTDataset>"
    )
    return path


def raw_band_vrt(path: Path, target: Path) -> Path:
    """A VRT whose raw band reads the bytes of any file (``target``) as pixels."""
    path.write_text(
        f'<VRTDataset rasterXSize="8" rasterYSize="1">{_GEO}'
        '<VRTRasterBand dataType="Byte" band="1" subClass="VRTRawRasterBand">'
        f'<SourceFilename relativeToVRT="0">{target}</SourceFilename><ImageOffset>0</ImageOffset>'
        "<PixelOffset>1</PixelOffset><LineOffset>8</LineOffset></VRTRasterBand></VRTDataset>"
    )
    return path


def ogr_vrt(path: Path, datasource: str) -> Path:
    """An OGR VRT (whatever ``path`` is named) reading the CSV ``datasource`` (a URL, say)."""
    path.write_text(
        f'<OGRVRTDataSource><OGRVRTLayer name="sites"><SrcDataSource>{datasource}</SrcDataSource>'
        '<GeometryType>wkbPoint</GeometryType><LayerSRS>EPSG:4326</LayerSRS>'
        '<GeometryField encoding="PointFromColumns" x="lon" y="lat"/></OGRVRTLayer></OGRVRTDataSource>'
    )
    return path


def geojson_with_crs_link(path: Path, url: str) -> Path:
    """GeoJSON whose (pre-RFC 7946) ``crs`` is a link: GDAL fetches it while opening the file."""
    path.write_text(json.dumps({
        "type": "FeatureCollection",
        "crs": {"type": "link", "properties": {"href": url, "type": "ogcwkt"}},
        "features": [{"type": "Feature", "properties": {"kiln_type": "FCBK"},
                      "geometry": {"type": "Polygon", "coordinates": [[
                          [87.0, 25.5], [87.01, 25.5], [87.01, 25.51], [87.0, 25.5]]]}}],
    }))
    return path


def stac_catalog(path: Path, links: list[tuple[str, str]], kind: str = "Catalog") -> Path:
    """A STAC catalogue document with the given ``(rel, href)`` links."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"type": kind, "stac_version": "1.0.0", "id": path.stem, "description": "hostile",
                "links": [{"rel": rel, "href": href} for rel, href in links]}
    if kind == "Collection":
        document |= {"license": "CC0-1.0", "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                                                       "temporal": {"interval": [[None, None]]}}}
    path.write_text(json.dumps(document))
    return path


def invalid_pixels_copy(source: Path, target: Path, *, nan_block: tuple[slice, slice] | None = None,
                        inf_block: tuple[slice, slice] | None = None, huge_band: str | None = None,
                        nodata: float | None = None) -> Path:
    """A float32 copy of a scene folder's bands with NaN / infinite blocks, or one band all ``1e38``."""
    target.mkdir(parents=True, exist_ok=True)
    for band in sorted(source.glob("B*.tif")):
        with rasterio.open(band) as src:
            data, profile = src.read(1).astype(np.float32), src.profile
        if nan_block is not None:
            data[nan_block] = np.nan
        if inf_block is not None:
            data[inf_block] = np.inf
        if huge_band is not None and band.stem == huge_band:
            data[:] = 1e38
        profile.update(dtype="float32", nodata=nodata, predictor=1)
        with rasterio.open(target / band.name, "w", **profile) as dst:
            dst.write(data, 1)
    for extra in ("scene.json", "labels.geojson"):
        if (source / extra).exists():
            (target / extra).write_bytes((source / extra).read_bytes())
    return target
