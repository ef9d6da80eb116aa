"""A point detector run by ONNX Runtime on the CPU: the same network, about 1.5x as fast as eager PyTorch.

ONNX Runtime's CPU kernels (its blocked NCHWc convolutions and memory arena) ran the vessels preset's
network 1.44-1.54x faster than eager PyTorch with oneDNN on one thread, heatmap probabilities within 2e-7
(experiments/README.md, "ONNX Runtime"). :class:`OnnxNetwork` wraps the inference copy a bundle runs (batch
norm already folded): on its first call it exports that copy with :func:`torch.onnx.export` (height, width
and batch dynamic, so edge tiles and batches of any shape run) into memory, and opens an
``InferenceSession`` with as many threads as torch has in that process; then every call runs the session.
The export takes a few seconds (6 s for the vessels ensemble), once per process and never at load, so a
bundle loaded only for its card costs nothing; a scan exports once in its client and hands the model to its
workers (:meth:`OnnxNetwork.adopt`). Nothing is written to disk and nothing is downloaded.
"""

from __future__ import annotations

import copy
import logging
import threading
import time

import numpy as np
import torch
from torch import nn

from fieldtruth.detectors.model import Heads, output_stride

log = logging.getLogger(__name__)

#: ONNX operator set of the export (the dynamo exporter's own).
OPSET = 18
#: Side of the example input the network is traced with (any size works afterwards).
EXAMPLE_SIDE = 128


class OnnxNetwork(nn.Module):
    """``network`` (a point detector's inference copy, on the CPU, float32) run by ONNX Runtime.

    Called like the network: a batch ``(n, bands, h, w)`` of normalised chips in, :class:`Heads` out (the
    box-size head None where the network has none). It holds no parameters, so its device is the CPU.
    """

    def __init__(self, network: nn.Module, bands: int) -> None:
        super().__init__()
        self.output_stride = output_stride(network)
        self.receptive_field_px = getattr(network, "receptive_field_px", None)
        self._source = [network]  # a list, so that it is not a submodule (no parameters here)
        self._bands = bands
        self._model: bytes | None = None
        self._session = None
        self._lock = threading.Lock()

    def exported(self) -> bytes:
        """The ONNX model this network runs (exported on the first call of this or of the network)."""
        with self._lock:
            if self._model is None:
                self._model = _export(self._source[0], self._bands)
            return self._model

    def adopt(self, model: bytes) -> None:
        """Run ``model``, exported from the same bundle elsewhere (a scan's client), instead of exporting
        it again here."""
        with self._lock:
            self._model, self._session = model, None

    def forward(self, x: torch.Tensor) -> Heads:
        """Heads of a batch of normalised chips (any memory format), computed by ONNX Runtime."""
        session = self._session or self._start()
        batch = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        outputs = session.run(None, {"x": batch})
        size = torch.from_numpy(outputs[1]) if len(outputs) > 1 else None
        return Heads(torch.from_numpy(outputs[0]), size)

    def _start(self):  # noqa: ANN202 - onnxruntime is imported lazily
        model = self.exported()
        with self._lock:
            if self._session is None:
                self._session = _session(model)
        return self._session


class _Tensors(nn.Module):
    """The network with its heads as a tuple of tensors (a None head would be an empty graph output)."""

    def __init__(self, network: nn.Module, with_size: bool) -> None:
        super().__init__()
        self.network, self.with_size = network, with_size

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.network(x)
        if not isinstance(out, Heads):
            return (out,)
        return (out.heatmap, out.size) if self.with_size else (out.heatmap,)


def _export(network: nn.Module, bands: int) -> bytes:
    """The network as an ONNX model (bytes), batch, height and width dynamic."""
    started = time.perf_counter()
    plain = copy.deepcopy(network).to(memory_format=torch.contiguous_format)
    example = torch.zeros(2, bands, EXAMPLE_SIDE, EXAMPLE_SIDE)  # batch 2: a batch of 1 would be fixed at 1
    with torch.no_grad():
        heads = plain(example)
    with_size = isinstance(heads, Heads) and heads.size is not None
    auto = torch.export.Dim.AUTO
    program = torch.onnx.export(
        _Tensors(plain, with_size).eval(), (example,), dynamo=True, opset_version=OPSET, input_names=["x"],
        output_names=["heatmap", "size"] if with_size else ["heatmap"],
        dynamic_shapes={"x": {0: auto, 2: auto, 3: auto}}, verbose=False,
    )
    model = program.model_proto.SerializeToString()
    log.info("exported the detector to ONNX (%d bytes) in %.1f s", len(model), time.perf_counter() - started)
    return model


def _session(model: bytes):  # noqa: ANN202 - onnxruntime is imported lazily
    """An ONNX Runtime session on the CPU with this process's torch thread count."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: its warnings are about graph rewrites, not the user's input
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
