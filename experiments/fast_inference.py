"""Inference speed-ups of the vessels preset's network on one CPU thread, side by side (issue 21).

Builds the preset's architecture (an ensemble of CentreNets, untrained weights with randomised batch-norm
statistics: the cost of a forward pass does not depend on the weights), or loads a trained bundle's runner
(``--bundle``), and times one forward pass of a scan tile (core + halo) for each variant, interleaved,
median of ``--repeats``; prints the speed-up against the reference path and the largest difference of the
heatmap probabilities. The reference is the old ``torch.no_grad`` + channels-last path, or with
``--scan-only`` the path the scan runs today (``inference_mode``, batch norm folded, channels-last), which
is then the only eager variant timed.

``--onnx`` exports the folded network with :func:`torch.onnx.export` (the dynamo exporter and the
TorchScript one, dynamic height and width, opset 18) and runs it in ONNX Runtime on one thread
(``CPUExecutionProvider``, sequential, all graph optimisations), the NHWC to NCHW copy of the input
counted in its time; ``--torchscript`` traces, freezes and ``optimize_for_inference``s it. Both need
packages the project does not depend on (``onnx``, ``onnxscript``, ``onnxruntime``), imported only then:

    PYTHONPATH=/tmp/ortsite .venv/bin/python experiments/fast_inference.py --repeats 7 --core 1024 \
        --bundle fold0.safetensors --scan-only --onnx --torchscript

    .venv/bin/python experiments/fast_inference.py --repeats 7 [--core 512] [--compile]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch

from fieldtruth.detectors.config import PRESETS
from fieldtruth.detectors.model import Heads
from fieldtruth.detectors.registry import build_model
from fieldtruth.pipelines.tilework import tune_allocator


def preset_model(name: str = "vessels") -> torch.nn.Module:
    """The preset's network as a bundle would hold it (4 bands, its classes), batch-norm statistics random."""
    config = PRESETS[name]
    classes = len(config.classes or ("a", "b"))
    args = {**config.architecture_args, "in_channels": len(config.bands), "num_classes": classes}
    if args.get("indices"):
        args.update(norm_mean=[1200.0] * 4, norm_std=[600.0] * 4)
    if config.ensemble > 1:
        member = {"architecture": config.architecture, "args": args}
        args = {"in_channels": args["in_channels"], "num_classes": args["num_classes"],
                "members": [member] * config.ensemble}
        model = build_model("ensemble", args)
    else:
        model = build_model(config.architecture, args)
    torch.manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


class StackedEnsemble(torch.nn.Module):
    """An ensemble's members run as one vmapped forward pass (convolutions become grouped ones)."""

    def __init__(self, ensemble: torch.nn.Module) -> None:
        super().__init__()
        members = list(ensemble.members)
        self.params, self.buffers = torch.func.stack_module_state(members)
        self.base = [copy.deepcopy(members[0]).to("meta")]

    def forward(self, x: torch.Tensor) -> Heads:
        def call(params: dict, buffers: dict, x: torch.Tensor) -> Heads:
            return torch.func.functional_call(self.base[0], (params, buffers), (x,))

        out = torch.vmap(call, in_dims=(0, 0, None))(self.params, self.buffers, x)
        p = torch.sigmoid(out.heatmap).mean(dim=0).clamp(1e-6, 1 - 1e-6)
        size = None if out.size is None else out.size.mean(dim=0)
        return Heads(torch.log(p) - torch.log1p(-p), size)


def stack_ensemble(model: torch.nn.Module) -> torch.nn.Module:
    return StackedEnsemble(model) if hasattr(model, "members") else model


def export_onnx(model: torch.nn.Module, x: torch.Tensor, path: str, dynamo: bool) -> None:
    """Export a network returning :class:`Heads` (both heads) with dynamic height and width, opset 18."""
    model = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    example = (x.contiguous(),)
    names = ["heatmap", "size"]
    if dynamo:
        dim = torch.export.Dim.AUTO
        torch.onnx.export(model, example, path, dynamo=True, opset_version=18, input_names=["x"],
                          output_names=names, dynamic_shapes={"x": {2: dim, 3: dim}})
    else:
        axes = {name: {2: "h", 3: "w"} for name in ["x", *names]}
        torch.onnx.export(model, example, path, dynamo=False, opset_version=18, input_names=["x"],
                          output_names=names, dynamic_axes=axes)


def onnx_runner(path: str, x: torch.Tensor, arena: bool = True, denormal_zero: bool = False,
                level: str = "ORT_ENABLE_ALL") -> Callable[[torch.Tensor], torch.Tensor]:
    """Heatmap probabilities from an ONNX Runtime session on one thread (input copied to NCHW float32)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    options.enable_cpu_mem_arena = arena
    if denormal_zero:
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def run(inp: torch.Tensor = x) -> torch.Tensor:
        nchw = inp.contiguous().numpy()
        heat = session.run(["heatmap"], {"x": nchw})[0]
        return torch.sigmoid(torch.from_numpy(heat))
    return run


def onnx_variants(model: torch.nn.Module, x: torch.Tensor, quick_options: bool
                  ) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """ONNX Runtime variants of the folded network, one per exporter that works (failures printed)."""
    import tempfile

    variants: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
    folder = tempfile.mkdtemp(prefix="fast_inference_")
    for dynamo in (True, False):
        label = "dynamo" if dynamo else "TorchScript"
        path = f"{folder}/{label}.onnx"
        started = time.perf_counter()
        try:
            export_onnx(model, x, path, dynamo)
        except Exception as exc:  # noqa: BLE001 - an experiment reports every exporter failure and goes on
            print(f"ONNX export ({label} exporter) failed: {type(exc).__name__}: {str(exc)[:400]}")
            continue
        print(f"ONNX export ({label} exporter): {time.perf_counter() - started:.1f} s")
        variants[f"ORT ({label} export)"] = onnx_runner(path, x)
        if quick_options and dynamo:
            variants[f"ORT ({label} export), no memory arena"] = onnx_runner(path, x, arena=False)
            variants[f"ORT ({label} export), denormals as zero"] = onnx_runner(path, x, denormal_zero=True)
            variants[f"ORT ({label} export), EXTENDED: no NCHWc layout"] = onnx_runner(
                path, x, level="ORT_ENABLE_EXTENDED")
    return variants


def torchscript_runner(model: torch.nn.Module, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """Traced, frozen and ``optimize_for_inference``d network (oneDNN layouts, conv + ReLU fused)."""
    with torch.no_grad():
        traced = torch.jit.trace(copy.deepcopy(model).eval(), x, strict=False)
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))

    def run(inp: torch.Tensor = x) -> torch.Tensor:
        with torch.no_grad():
            return torch.sigmoid(frozen(inp)[0])
    return run


def timed(run: Callable[[], torch.Tensor]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--core", type=int, default=512)
    parser.add_argument("--preset", default="vessels")
    parser.add_argument("--bundle", help="a trained bundle whose runner is timed instead of the preset")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--scan-only", action="store_true",
                        help="time only today's scan path among the eager variants, and compare against it")
    parser.add_argument("--onnx", action="store_true", help="add ONNX Runtime variants (needs onnxruntime)")
    parser.add_argument("--ort-options", action="store_true",
                        help="with --onnx: also without the memory arena, with denormals as zero and "
                             "with graph optimisations up to EXTENDED only (no NCHWc layout)")
    parser.add_argument("--torchscript", action="store_true", help="add a frozen, optimised TorchScript")
    return parser.parse_args()


TODAY, SCAN = "today (no_grad, NHWC)", "inference_mode + fused BN"


def eager_variants(model: torch.nn.Module, fused: torch.nn.Module, scan_only: bool
                   ) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The eager variants, each a function of the input tile; only today's scan path when ``scan_only``."""

    def no_grad(m: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        def run(inp: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return torch.sigmoid(m(inp).heatmap)
        return run

    def inference(m: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        def run(inp: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return torch.sigmoid(m(inp).heatmap)
        return run

    if scan_only:
        return {SCAN: inference(fused)}
    base = copy.deepcopy(model).to(memory_format=torch.channels_last)
    variants = {TODAY: no_grad(base), "inference_mode": inference(base),
                "inference_mode + NCHW": inference(copy.deepcopy(model)), SCAN: inference(fused)}
    stacked = stack_ensemble(fused)
    if stacked is not fused:
        variants["inference_mode + fused BN + grouped members"] = inference(stacked)
    return variants


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    tune_allocator()  # as every scan worker: without it eager PyTorch mmaps its activations, 1.35x slower
    from fieldtruth.detectors.inference import fuse_batchnorm

    if args.bundle:
        from fieldtruth.detectors.bundle import load_bundle

        bundle = load_bundle(args.bundle)
        model, fused = bundle.model, bundle.network
    else:
        model = preset_model(args.preset)
        fused = fuse_batchnorm(copy.deepcopy(model)).to(memory_format=torch.channels_last)
    halo = max(32, int(model.receptive_field_px) // 2 + 1)
    side = args.core + 2 * halo
    x = torch.randn(1, 4, side, side).contiguous(memory_format=torch.channels_last)
    variants = eager_variants(model, fused, args.scan_only)
    if args.compile:
        compiled = torch.compile(fused)
        started = time.perf_counter()
        with torch.inference_mode():
            compiled(x)
        print(f"compile (first call): {time.perf_counter() - started:.1f} s")

        def run_compiled(inp: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return torch.sigmoid(compiled(inp).heatmap)
        variants["inference_mode + fused BN + torch.compile"] = run_compiled
    if args.onnx:
        variants.update(onnx_variants(fused, x, args.ort_options))
    if args.torchscript:
        try:
            variants["TorchScript (trace, freeze, optimize_for_inference)"] = torchscript_runner(fused, x)
        except Exception as exc:  # noqa: BLE001 - an experiment reports the failure and goes on
            print(f"TorchScript failed: {type(exc).__name__}: {str(exc)[:400]}")
    report(args, variants, x, halo)


def report(args: argparse.Namespace, variants: dict[str, Callable[[torch.Tensor], torch.Tensor]],
           x: torch.Tensor, halo: int) -> None:
    """Time the variants interleaved and print the table (and an edge tile's parity for exported ones)."""
    reference_name = SCAN if args.scan_only else TODAY
    reference = variants[reference_name](x)
    diffs = {name: float((run(x) - reference).abs().max()) for name, run in variants.items()}
    edge = torch.randn(1, 4, x.shape[2] - 203, x.shape[3] - 331).contiguous(memory_format=torch.channels_last)
    edge_reference = variants[SCAN](edge)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, run in variants.items():
            times[name].append(timed(lambda run=run: run(x)))
    today = statistics.median(times[reference_name])
    core_mpx = args.core**2 / 1e6
    source = args.bundle or f"{args.preset} preset (random weights)"
    print(f"{source}: input {x.shape[2]} px ({args.core} px core + {halo} px halo), 1 thread, "
          f"median of {args.repeats}; reference: {reference_name}")
    print(f"| variant | s / tile | core Mpx/s | speed-up | max |p - p_ref| | "
          f"max diff, {tuple(edge.shape[2:])} edge tile |")
    print("|---|---|---|---|---|---|")
    for name, runs in times.items():
        median = statistics.median(runs)
        exported = name.startswith("ORT")
        edge_text = f"{float((variants[name](edge) - edge_reference).abs().max()):.1e}" if exported else ""
        print(f"| {name} | {median:.3f} | {core_mpx / median:.3f} | {today / median:.2f} | "
              f"{diffs[name]:.1e} | {edge_text} |")


if __name__ == "__main__":
    main()
