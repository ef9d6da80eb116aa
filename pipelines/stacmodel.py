"""A detector bundle described for people (its card) and as a STAC Item of the Machine Learning Model
extension (MLM).

``fieldtruth bundle describe BUNDLE`` prints :func:`card_text`; with ``--stac`` it prints
:func:`model_item`: ``mlm:name``, ``mlm:architecture``, ``mlm:tasks``, ``mlm:framework`` (PyTorch and its
version), ``mlm:input`` (the card's bands, in order, the input shape and the z-score scaling of each
band), ``mlm:output`` (the class heatmap and its classes), the accelerator it runs on, and the bundle
itself as the ``mlm:model`` asset with its size and checksum (``file:checksum``, a sha2-256 multihash).
A scan writes the same Item into its run folder (``model.stac.json``), which the run's Item links to.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pystac
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.file import FileExtension
from pystac.extensions.mlm import (
    AcceleratorType,
    AssetDetailedMLMExtension,
    Hyperparameters,
    InputStructure,
    MLMExtension,
    ModelInput,
    ModelOutput,
    ResultStructure,
    TaskType,
    ValueScaling,
    ValueScalingType,
)
from pystac.extensions.raster import DataType

from fieldtruth.atomicfile import write_json
from fieldtruth.detectors.bundle import LoadedBundle
from fieldtruth.detectors.metrics import Figures
from fieldtruth.detectors.model import output_stride

#: Media type of a bundle: a safetensors file.
BUNDLE_MEDIA_TYPE = "application/octet-stream; application=safetensors"
#: Multihash prefix of a sha2-256 digest (code 0x12, 32 bytes), as ``file:checksum`` wants it.
SHA256_MULTIHASH = "1220"


def model_item_id(sha256: str) -> str:
    """The STAC id of a bundle's Item: stable for the same file."""
    return f"fieldtruth-model-{sha256[:16]}"


def mlm_name(name: str) -> str:
    """A card's name as ``mlm:name`` allows it (letters, digits, ``_ . -``; a letter first)."""
    cleaned = re.sub(r"[^a-zA-Z0-9_.-]+", "-", name).strip("-_.") or "model"
    return cleaned if cleaned[0].isalpha() else f"m-{cleaned}"


def model_item(bundle: LoadedBundle, href: str) -> pystac.Item:
    """The bundle as a STAC Item of the MLM extension, its model asset at ``href``.

    Args:
        bundle: the loaded bundle (its card, its model for the parameter count, its file's sha256).
        href: where the Item says the bundle file is (as given, a path or a URL).
    """
    card = bundle.card.to_dict()
    item = pystac.Item(
        id=model_item_id(bundle.sha256), geometry=None, bbox=None, datetime=_created(card.get("created")),
        properties={
            "title": f"{card['name']} ({card['architecture']})",
            "description": f"{card['intended_use']} Known limits: {card['limits']}",
            "license": card.get("licence") or "other",
            "gsd": float(card["gsd_m"]),
            "fieldtruth:threshold": float(card["threshold"]),
            "fieldtruth:min_distance_px": int(card["min_distance_px"]),
            "fieldtruth:metrics": card.get("metrics") or {},
            "fieldtruth:split": card.get("split") or {},
            "fieldtruth:training_scenes": len(card.get("training_data") or ()),
        },
    )
    classes = [Classification.create(value=i, name=_class_name(c), description=c)
               for i, c in enumerate(card["classes"])]
    mlm = MLMExtension.ext(item, add_if_missing=True)
    mlm.apply(
        name=mlm_name(card["name"]), architecture=card["architecture"], tasks=[TaskType.OBJECT_DETECTION],
        input=[_model_input(card)], output=[_model_output(card, classes, output_stride(bundle.model))],
        framework="PyTorch", framework_version=metadata.version("torch").split("+")[0],
        total_parameters=sum(p.numel() for p in bundle.model.parameters()),
        pretrained=False, pretrained_source=None, accelerator=AcceleratorType.AMD64,
        accelerator_constrained=False,
        accelerator_summary="CPU (x86-64, any number of cores); no GPU needed",
        hyperparameters=Hyperparameters.create(**args) if (args := card["architecture_args"]) else None,
    )
    item.properties["mlm:pretrained_source"] = None  # trained from scratch: null, as the extension asks
    item.stac_extensions.append(ClassificationExtension.get_schema_uri())  # the output's classes
    asset = pystac.Asset(href, title="detector bundle (weights and model card)", media_type=BUNDLE_MEDIA_TYPE,
                         roles=["mlm:model", "mlm:weights", "data"],
                         extra_fields={"bands": [{"name": band} for band in card["bands"]]})
    item.add_asset("model", asset)
    AssetDetailedMLMExtension.ext(asset, add_if_missing=True).artifact_type = "safetensors"
    file_ext = FileExtension.ext(asset, add_if_missing=True)
    file_ext.checksum = SHA256_MULTIHASH + bundle.sha256
    if bundle.path.is_file():
        file_ext.size = bundle.path.stat().st_size
    return item


def write_model_item(path: Path, bundle: LoadedBundle, href: str) -> Path:
    """Write the bundle's MLM Item (:func:`model_item`) to ``path`` (a run folder's ``model.stac.json``)."""
    write_json(path, model_item(bundle, href).to_dict(include_self_link=False, transform_hrefs=False))
    return path


def _created(text: object) -> datetime:
    try:
        return datetime.fromisoformat(str(text)).astimezone(UTC)
    except ValueError:
        return datetime.now(UTC)


def _class_name(label: str) -> str:
    """A class label as the classification extension's ``name`` allows it."""
    return re.sub(r"[^0-9A-Za-z_-]+", "-", label) or "class"


def _model_input(card: dict[str, Any]) -> ModelInput:
    bands = list(card["bands"])
    scaling = [ValueScaling.create(ValueScalingType.Z_SCORE, mean=float(m), stddev=float(s))
               for m, s in zip(card["norm_mean"], card["norm_std"], strict=True)]
    model_input = ModelInput.create(
        name="bands", bands=bands,
        input=InputStructure.create(
            shape=[-1, len(bands), -1, -1], dim_order=["batch", "channel", "height", "width"],
            data_type=DataType.FLOAT32),
        description=(f"Reflectance of the bands {', '.join(bands)} in this order at {card['gsd_m']:g} m; "
                     "invalid pixels are filled with the band's mean before scaling"),
        resize_type=None,
    )
    # one scaling per band, in band order, as the extension defines value_scaling (pystac takes only one)
    model_input.properties["value_scaling"] = [s.to_dict() for s in scaling]
    return model_input


def _model_output(card: dict[str, Any], classes: list[Classification], stride: int) -> ModelOutput:
    n_classes = len(card["classes"])
    return ModelOutput.create(
        name="heatmap", tasks=[TaskType.OBJECT_DETECTION],
        result=ResultStructure.create(
            shape=[-1, n_classes, -1, -1], dim_order=["batch", "class", "height", "width"],
            data_type=DataType.FLOAT32),
        description=(f"Logits of each class's centre heatmap, one cell per {stride} x {stride} input pixels; "
                     f"after a sigmoid, local peaks above {card['threshold']:g} are the leads"),
        classes=classes,
    )


def card_text(bundle: LoadedBundle) -> str:
    """The model card as people read it: what the detector is, how well it did, and its limits."""
    card = bundle.card.to_dict()
    overall = bundle.card.metrics.overall
    parameters = sum(p.numel() for p in bundle.model.parameters())
    lines = [
        f"{card['name']}  ({card['architecture']}, {parameters:,} parameters)",
        f"  file       {bundle.path}  sha256 {bundle.sha256}",
        f"  input      bands {', '.join(card['bands'])} at {card['gsd_m']:g} m",
        f"  classes    {', '.join(card['classes'])}; operating threshold {card['threshold']:g}",
        f"  trained    {card.get('created', '?')} on {len(card.get('training_data') or ())} scene(s); "
        f"split {card.get('split') or 'not recorded'}",
        f"  measured   {_figures(overall) if overall is not None else 'no held-out figures recorded'}",
        f"  licence    {card.get('licence')}",
        f"  use        {card['intended_use']}",
        f"  limits     {card['limits']}",
    ]
    return "\n".join(lines)


def _figures(overall: Figures) -> str:
    return f"precision {overall.precision}, recall {overall.recall}, f1 {overall.f1}, ap {overall.ap}"
