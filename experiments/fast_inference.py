"""Inference speed-ups of the vessels preset's network on one CPU thread, side by side (issue 21).

Builds the preset's architecture (an ensemble of CentreNets, untrained weights with randomised batch-norm
statistics: the cost of a forward pass does not depend on the weights) and times one forward pass of a
scan tile (core + halo) for each variant, interleaved, median of ``--repeats``; prints the speed-up against
today's path (``torch.no_grad``, channels-last) and the largest difference of the heatmap probabilities.

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


def timed(run: Callable[[], torch.Tensor]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--core", type=int, default=512)
    parser.add_argument("--preset", default="vessels")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from fieldtruth.detectors.inference import fuse_batchnorm

    model = preset_model(args.preset)
    halo = max(32, int(model.receptive_field_px) // 2 + 1)
    side = args.core + 2 * halo
    x = torch.randn(1, 4, side, side).contiguous(memory_format=torch.channels_last)
    base = copy.deepcopy(model).to(memory_format=torch.channels_last)
    fused = fuse_batchnorm(copy.deepcopy(model)).to(memory_format=torch.channels_last)
    variants: dict[str, Callable[[], torch.Tensor]] = {}

    def no_grad(m: torch.nn.Module) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            with torch.no_grad():
                return torch.sigmoid(m(x).heatmap)
        return run

    def inference(m: torch.nn.Module) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            with torch.inference_mode():
                return torch.sigmoid(m(x).heatmap)
        return run

    variants["today (no_grad, NHWC)"] = no_grad(base)
    variants["inference_mode"] = inference(base)
    variants["inference_mode + NCHW"] = inference(copy.deepcopy(model))
    variants["inference_mode + fused BN"] = inference(fused)
    stacked = stack_ensemble(fused)
    if stacked is not fused:
        variants["inference_mode + fused BN + grouped members"] = inference(stacked)
    if args.compile:
        compiled = torch.compile(fused)
        started = time.perf_counter()
        inference(compiled)()
        print(f"compile (first call): {time.perf_counter() - started:.1f} s")
        variants["inference_mode + fused BN + torch.compile"] = inference(compiled)
    reference = variants["today (no_grad, NHWC)"]()
    diffs = {name: float((run() - reference).abs().max()) for name, run in variants.items()}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, run in variants.items():
            times[name].append(timed(run))
    today = statistics.median(times["today (no_grad, NHWC)"])
    core_mpx = args.core**2 / 1e6
    print(f"{args.preset}: input {side} px ({args.core} px core + {halo} px halo), 1 thread, "
          f"median of {args.repeats}")
    print("| variant | s / tile | core Mpx/s | speed-up | max |p - p_today| |")
    print("|---|---|---|---|---|")
    for name, runs in times.items():
        median = statistics.median(runs)
        print(f"| {name} | {median:.3f} | {core_mpx / median:.3f} | {today / median:.2f} | "
              f"{diffs[name]:.1e} |")


if __name__ == "__main__":
    main()
