"""Side-by-side speed and memory benchmark of SRE convolutions (dense vs band path) and SRE networks.

Every comparison in a row is timed in one process, interleaved round-robin (so load spikes on a shared
machine hit all candidates alike), after warm-up, and reported as the median. Figures:

- ``train_ms``: one forward + backward (sum of outputs as the loss; parameter and input gradients).
- ``infer_ms``: one forward under ``torch.inference_mode`` (SREConv "dense" uses its cached kernel).
- ``gflops``: forward multiply-adds x 2 counted by ``torch.utils.flop_counter.FlopCounterMode`` on what
  actually runs (so the band path counts its depthwise filter and 1x1 mix, not the dense kernel).
- ``peak_mb``: peak memory of one training step. CUDA: ``torch.cuda.max_memory_allocated`` minus the
  memory held before the step. CPU (Linux): in a fresh subprocess per model, the peak resident set
  size is reset (``/proc/self/clear_refs``), one training step runs, and the figure is ``VmHWM``
  (peak RSS) minus the RSS before the step: activations, gradients and workspaces, with allocator
  slack included, so differences of a few MiB are noise. Layers are not measured on CPU.

Use :func:`run_benchmark` and :func:`format_tables`; ``scripts/benchmark.py`` is the command line.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn

from monai_sre.blocks import SREConv, set_algorithm, time_calls
from monai_sre.data import dataset_info, get_dataset
from monai_sre.handlers import ClassificationOutput, classification_postprocessing
from monai_sre.nets import get_model, get_segmentation_model, list_models
from monai_sre.workflows import ClassificationLoss

__all__ = [
    "SECTIONS",
    "format_tables",
    "interleaved_medians",
    "layer_rows",
    "model_rows",
    "run_benchmark",
    "timed_training",
    "twin_rows",
    "part_rows",
    "growth_exponent",
]

logger = logging.getLogger(__name__)

SECTIONS = ("layers", "models", "twins", "parts")

# full / quick layer grids: (spatial_dims, channels, kernel sizes, spatial size, batch)
_LAYER_GRID = {
    False: [(3, c, (3, 5, 7, 9), 16, 2) for c in (32, 64, 128)] + [(2, c, (3, 5, 7, 9), 64, 8) for c in (32, 64, 128)],
    True: [(3, 32, (3, 7), 12, 2), (3, 64, (5, 7), 12, 2), (2, 32, (3, 9), 32, 4)],
}
# model rows: (label, registry name, algorithm or None for a baseline, spatial_dims)
_MODELS = [
    ("R3D-18", "r3d_18", None, 3),
    ("SRE-R3D-18 dense", "sre_r3d_18", "dense", 3),
    ("SRE-R3D-18 bands", "sre_r3d_18", "bands", 3),
    ("SRE-R3D-18 auto", "sre_r3d_18", "auto", 3),
    ("SRE-R3D-18 full-res auto", "sre_r3d_18_fullres", "auto", 3),
    ("SRE-R3D-18-k5 dense", "sre_r3d_18_k5", "dense", 3),
    ("SRE-R3D-18-k5 bands", "sre_r3d_18_k5", "bands", 3),
    ("SRE-R3D-18-k5 auto", "sre_r3d_18_k5", "auto", 3),
    ("ResNet-18", "plain_resnet18", None, 2),
    ("SRE-R18 dense", "sre_resnet18", "dense", 2),
    ("SRE-R18 bands", "sre_resnet18", "bands", 2),
    ("SRE-R18 auto", "sre_resnet18", "auto", 2),
]


# SRE networks against their plain twins at equal widths: (label, SRE name, plain name, kind, widths, inputs);
# inputs are (batch, size) pairs, and the classification widths are those the bundles train with
_TWINS = {
    False: [
        ("SRE-R3D-18", "sre_r3d_18", "r3d_18", "classification", (16, 32, 64, 128), [(16, 28), (4, 64), (1, 128)]),
        ("SRE-R3D-18 strided stem", "sre_r3d_18_strided", "r3d_18", "classification", (16, 32, 64, 128),
         [(16, 28), (4, 64), (1, 128)]),
        ("SRE-UNet", "sre_unet", "plain_unet", "segmentation", None, [(1, 48), (1, 96), (1, 128)]),
    ],
    True: [
        ("SRE-R3D-18", "sre_r3d_18", "r3d_18", "classification", (4, 4, 8, 8), [(2, 12), (2, 16)]),
        ("SRE-UNet", "sre_unet", "plain_unet", "segmentation", (4, 4, 8, 4), [(1, 12), (1, 16)]),
    ],
}
# where the time goes: (networks, widths, batch, size) timed part by part (stem, each stage)
_PARTS = {
    False: (("r3d_18", "sre_r3d_18", "sre_r3d_18_strided"), (16, 32, 64, 128), 4, 64),
    True: (("r3d_18", "sre_r3d_18", "sre_r3d_18_strided"), (4, 4, 8, 8), 2, 16),
}
# whole-volume segmentation: (volume size, window size, UNet features or None for the defaults)
_WINDOWS = {False: (256, 96, None), True: (24, 16, (4, 4, 8, 4))}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


_CLOCK = {"clock": "wall"}


def interleaved_medians(
    fns: dict[str, Callable[[], object]], device: torch.device, warmup: int = 2, repeats: int = 5
) -> dict[str, float]:
    """Median seconds of each callable, timed round-robin after ``warmup`` untimed rounds
    (:func:`monai_sre.blocks.time_calls`).

    The clock is wall time, or process CPU time when :func:`run_benchmark` got ``clock="cpu"``
    (on a CPU shared with other jobs, CPU time is far steadier; with one thread it equals busy time).
    """
    times = time_calls(fns, device, warmup, repeats, clock=_CLOCK["clock"])
    return {k: statistics.median(v) for k, v in times.items()}


def _train_fn(module: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run():
        module.zero_grad(set_to_none=True)
        module(x).float().sum().backward()

    return run


def _infer_fn(module: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run():
        with torch.inference_mode():
            module(x)

    return run


def _gflops(module: nn.Module, x: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops() / 1e9


def _cuda_peak_mb(module: nn.Module, x: torch.Tensor) -> float:
    device = x.device
    module.zero_grad(set_to_none=True)
    _sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    module(x).float().sum().backward()
    _sync(device)
    peak = torch.cuda.max_memory_allocated(device) - base
    module.zero_grad(set_to_none=True)
    return peak / 2**20


def layer_rows(device: torch.device, quick: bool = False, dtype: torch.dtype = torch.float32) -> list[dict]:
    """One row per (spatial_dims, channels, kernel size): nn.ConvNd vs SREConv dense / bands / auto."""
    rows = []
    warmup, repeats = (1, 3) if quick else (2, 5)
    for spatial_dims, channels, kernels, size, batch in _LAYER_GRID[quick]:
        for k in kernels:
            torch.manual_seed(0)
            x = torch.randn(batch, channels, *([size] * spatial_dims), device=device, dtype=dtype, requires_grad=True)
            conv = getattr(nn, f"Conv{spatial_dims}d")(channels, channels, k, padding=k // 2).to(device, dtype)
            mods = {"conv": conv}
            for alg in ("dense", "bands", "auto"):
                m = SREConv(spatial_dims, channels, channels, k, padding=k // 2, algorithm=alg, device=device, dtype=dtype)
                mods[alg] = m
            row = {
                "spatial_dims": spatial_dims, "channels": channels, "kernel_size": k, "input": list(x.shape),
                "device": str(device), "params": {n: sum(p.numel() for p in m.parameters()) for n, m in mods.items()},
            }
            row["train_ms"] = {n: 1e3 * t for n, t in interleaved_medians(
                {n: _train_fn(m, x) for n, m in mods.items()}, device, warmup, repeats).items()}
            row["auto_path_train"] = mods["auto"].path_for(x)
            xi = x.detach()
            row["infer_ms"] = {n: 1e3 * t for n, t in interleaved_medians(
                {n: _infer_fn(m, xi) for n, m in mods.items()}, device, warmup, repeats).items()}
            with torch.no_grad():
                row["auto_path_infer"] = mods["auto"].path_for(xi)
                row["band_order"] = mods["bands"].path_for(xi)
            row["gflops"] = {n: _gflops(m, xi) for n, m in mods.items()}
            if device.type == "cuda":
                row["peak_mb"] = {n: _cuda_peak_mb(m, x) for n, m in mods.items()}
            rows.append(row)
            logger.info("layer %s", row)
    return rows


def _build_model(name: str, algorithm: str | None, spatial_dims: int, widths: Sequence[int] | None,
                 kind: str = "classification"):
    if kind == "segmentation":
        kwargs = {"spatial_dims": spatial_dims, "in_channels": 1, "out_channels": 2}
        if widths is not None:
            kwargs["features"] = tuple(widths)
        model = get_segmentation_model(name, **kwargs)
    else:
        kwargs = {"in_channels": 1, "num_classes": 2}
        if widths is not None:
            kwargs["widths"] = tuple(widths)
        model = get_model(name, **kwargs)
    if algorithm is not None:
        set_algorithm(model, algorithm)
    return model


def _model_input(spatial_dims: int, quick: bool, batch: int | None, size: int | None) -> tuple[int, ...]:
    if spatial_dims == 3:
        return (batch or (2 if quick else 4), 1) + (size or (16 if quick else 32),) * 3
    return (batch or (4 if quick else 16), 1) + (size or (28 if quick else 64),) * 2


def _cpu_peak_mb_subprocess(name: str, algorithm: str | None, spatial_dims: int, shape, widths,
                            kind: str = "classification", window: int | None = None,
                            threads: int | None = None) -> float | None:
    """Peak-RSS rise in a fresh interpreter (see the module docstring) of one training step, or with ``window`` of
    one ``sliding_window_inference`` over an input of ``shape``."""
    spec = json.dumps({"name": name, "algorithm": algorithm, "spatial_dims": spatial_dims, "shape": list(shape),
                       "widths": None if widths is None else list(widths), "kind": kind, "window": window,
                       "threads": threads})
    cmd = [sys.executable, "-c", "import sys, monai_sre.experiments.benchmark as b; b._memory_probe(sys.argv[1])", spec]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=True, env=dict(os.environ))
        return float(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as e:
        logger.warning("memory probe for %s/%s failed: %s", name, algorithm, e)
        return None


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise ValueError(f"{field} not in /proc/self/status")


def _memory_probe(spec: str) -> None:
    cfg = json.loads(spec)
    if cfg.get("threads"):
        torch.set_num_threads(cfg["threads"])
    torch.manual_seed(0)
    model = _build_model(cfg["name"], cfg["algorithm"], cfg["spatial_dims"], cfg["widths"],
                         cfg.get("kind", "classification"))
    x = torch.randn(*cfg["shape"])
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak RSS (VmHWM) to the current RSS
        f.write("5")
    before = _status_kib("VmRSS")
    if cfg.get("window"):
        _window_fn(model.eval(), x, cfg["window"])()
    else:
        model(x).sum().backward()
    after = _status_kib("VmHWM")
    sys.stdout.write(f"{(after - before) / 1024:.1f}\n")


def model_rows(
    device: torch.device,
    quick: bool = False,
    batch: int | None = None,
    size: int | None = None,
    widths: Sequence[int] | None = None,
    memory: bool = True,
) -> list[dict]:
    """Whole networks: SRE-R3D-18 (3^3 and 5^3 kernels, each algorithm) vs R3D-18, SRE-R18 vs ResNet-18."""
    available = set(list_models())
    warmup, repeats = (1, 2) if quick else (1, 3)
    if quick and widths is None:
        widths = (16, 32, 64, 128)
    rows = []
    for spatial_dims in (3, 2):
        entries = [e for e in _MODELS if e[3] == spatial_dims and e[1] in available]
        if not entries:
            continue
        shape = _model_input(spatial_dims, quick, batch, size)
        torch.manual_seed(0)
        x = torch.randn(*shape, device=device)
        models = {}
        for label, name, alg, _ in entries:
            torch.manual_seed(0)
            models[label] = _build_model(name, alg, spatial_dims, widths).to(device).train()
        train = interleaved_medians({k: _train_fn(m, x) for k, m in models.items()}, device, warmup, repeats)
        models_eval = {k: m.eval() for k, m in models.items()}
        infer = interleaved_medians({k: _infer_fn(m, x) for k, m in models_eval.items()}, device, warmup, repeats)
        for label, name, alg, _ in entries:
            m = models[label]
            row = {
                "model": label, "name": name, "algorithm": alg, "input": list(shape), "device": str(device),
                "widths": None if widths is None else list(widths),
                "params": sum(p.numel() for p in m.parameters()),
                "train_ms": 1e3 * train[label], "infer_ms": 1e3 * infer[label], "gflops": _gflops(m, x),
            }
            if memory:
                if device.type == "cuda":
                    row["peak_mb"] = _cuda_peak_mb(m.train(), x)
                else:
                    row["peak_mb"] = _cpu_peak_mb_subprocess(name, alg, spatial_dims, shape, widths)
            rows.append(row)
            logger.info("model %s", row)
    return rows


def growth_exponent(voxels: Sequence[float], seconds: Sequence[float]) -> float:
    """Least-squares slope of ``log(seconds)`` against ``log(voxels)``: 1.0 when time grows as the voxel count."""
    import numpy as np

    return float(np.polyfit(np.log(np.asarray(voxels, float)), np.log(np.asarray(seconds, float)), 1)[0])


def _window_fn(module: nn.Module, x: torch.Tensor, window: int) -> Callable[[], None]:
    from monai.inferers import sliding_window_inference

    def run():
        with torch.inference_mode():
            sliding_window_inference(x, (window,) * (x.dim() - 2), 1, module, overlap=0.25)

    return run


def twin_rows(device: torch.device, quick: bool = False, memory: bool = True) -> dict:
    """SRE networks against their plain twins at equal widths, interleaved in one process per input.

    Returns:
        ``{"rows": [...], "growth": [...], "windows": [...]}``: per (network, input) the train-step and inference
        medians of both and their ratios (and the peak memory of a training step when ``memory``); per network
        the growth exponent of the per-volume time against the voxel count (:func:`growth_exponent`); and the
        time (and peak memory) of ``sliding_window_inference`` (one window at a time, overlap 0.25) over a
        whole volume, SRE-UNet against UNet.
    """
    warmup, repeats = (1, 2) if quick else (1, 3)
    rows, growth = [], []
    threads = torch.get_num_threads()
    for label, sre_name, plain_name, kind, widths, inputs in _TWINS[quick]:
        per_volume: dict[str, list[float]] = {"sre_train": [], "sre_infer": [], "plain_train": [], "plain_infer": []}
        voxels = []
        for batch, size in inputs:
            shape = (batch, 1, size, size, size)
            torch.manual_seed(0)
            x = torch.randn(*shape, device=device)
            models = {}
            for role, name in (("sre", sre_name), ("plain", plain_name)):
                torch.manual_seed(0)
                models[role] = _build_model(name, None, 3, widths, kind).to(device).train()
            big = size >= 96 and not quick  # seconds per step: fewer repeats
            train = interleaved_medians({k: _train_fn(m, x) for k, m in models.items()}, device, warmup,
                                        2 if big else repeats)
            infer = interleaved_medians({k: _infer_fn(m.eval(), x) for k, m in models.items()}, device, warmup,
                                        2 if big else repeats)
            row = {
                "network": label, "sre": sre_name, "plain": plain_name, "kind": kind, "input": list(shape),
                "widths": None if widths is None else list(widths), "device": str(device),
                "params": {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()},
                "train_ms": {k: 1e3 * v for k, v in train.items()}, "infer_ms": {k: 1e3 * v for k, v in infer.items()},
                "train_ratio": train["sre"] / train["plain"], "infer_ratio": infer["sre"] / infer["plain"],
            }
            if memory:
                if device.type == "cuda":
                    row["peak_mb"] = {k: _cuda_peak_mb(m.train(), x) for k, m in models.items()}
                else:
                    row["peak_mb"] = {k: _cpu_peak_mb_subprocess(n, None, 3, shape, widths, kind, threads=threads)
                                      for k, n in (("sre", sre_name), ("plain", plain_name))}
                sre_mb, plain_mb = row["peak_mb"]["sre"], row["peak_mb"]["plain"]
                row["peak_ratio"] = sre_mb / plain_mb if sre_mb and plain_mb else None
            rows.append(row)
            logger.info("twin %s", row)
            voxels.append(size**3)
            for k in ("sre", "plain"):
                per_volume[f"{k}_train"].append(train[k] / batch)
                per_volume[f"{k}_infer"].append(infer[k] / batch)
        growth.append({"network": label, "sizes": [s for _, s in inputs],
                       **{k: growth_exponent(voxels, v) for k, v in per_volume.items()}})
    volume, window, features = _WINDOWS[quick]
    shape = (1, 1, volume, volume, volume)
    x = torch.randn(*shape, device=device)
    nets = {}
    for role, name in (("sre", "sre_unet"), ("plain", "plain_unet")):
        torch.manual_seed(0)
        nets[role] = _build_model(name, None, 3, features, "segmentation")
        nets[role] = nets[role].to(device).eval()
    times = interleaved_medians({k: _window_fn(m, x, window) for k, m in nets.items()}, device, 0, 1)
    win = {"input": list(shape), "window": window, "seconds": dict(times), "ratio": times["sre"] / times["plain"]}
    if memory and device.type == "cpu":
        win["peak_mb"] = {k: _cpu_peak_mb_subprocess(n, None, 3, shape, features,
                                                     "segmentation", window, threads)
                          for k, n in (("sre", "sre_unet"), ("plain", "plain_unet"))}
    return {"rows": rows, "growth": growth, "windows": [win]}


def part_rows(device: torch.device, quick: bool = False) -> list[dict]:
    """Where a ResNet's time goes: the stem and each stage timed on its own (train step with input gradients,
    inference), beside the multiply-adds each runs, for every network of the ``_PARTS`` grid.

    Returns:
        One row per (network, part): ``train_ms``, ``infer_ms``, ``gflops`` (forward), ``input`` of the part.
    """
    names, widths, batch, size = _PARTS[quick]
    warmup, repeats = (1, 2) if quick else (1, 3)
    rows = []
    for name in names:
        torch.manual_seed(0)
        net = _build_model(name, None, 3, widths).to(device)
        h = torch.randn(batch, 1, size, size, size, device=device)
        parts = [("stem", net.stem)] + [(f"stage {i + 1}", stage) for i, stage in enumerate(net.stages)]
        for label, part in parts:
            x = h.detach().requires_grad_(label != "stem")
            train = interleaved_medians({label: _train_fn(part.train(), x)}, device, warmup, repeats)[label]
            infer = interleaved_medians({label: _infer_fn(part.eval(), x)}, device, warmup, repeats)[label]
            rows.append({"network": name, "part": label, "input": list(x.shape), "train_ms": 1e3 * train,
                         "infer_ms": 1e3 * infer, "gflops": _gflops(part, x.detach())})
            with torch.no_grad():
                h = part(x.detach())
    return rows


def run_benchmark(
    device: str | torch.device = "cpu",
    quick: bool = False,
    sections: Sequence[str] = SECTIONS,
    batch: int | None = None,
    size: int | None = None,
    widths: Sequence[int] | None = None,
    memory: bool = True,
    clock: str = "wall",
) -> dict:
    """Run the selected sections and return a JSON-serialisable dict (``meta``, ``layers``, ``models``).

    ``clock="cpu"`` times CPU runs by process CPU time instead of wall time (see :func:`interleaved_medians`).

    Raises:
        ValueError: for an unknown section or an unavailable CUDA device.
    """
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock must be 'wall' or 'cpu', got {clock!r}.")
    _CLOCK["clock"] = clock
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        raise ValueError(f"sections must be among {SECTIONS}, got {bad}.")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} asked for, but CUDA is not available.")
    meta = {
        "torch": torch.__version__, "device": str(device), "threads": torch.get_num_threads(), "quick": quick, "clock": clock,
        "cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if device.type == "cuda":
        meta["gpu"] = torch.cuda.get_device_name(device)
    out: dict = {"meta": meta}
    if "layers" in sections:
        out["layers"] = layer_rows(device, quick)
    if "models" in sections:
        out["models"] = model_rows(device, quick, batch, size, widths, memory)
    if "twins" in sections:
        out["twins"] = twin_rows(device, quick, memory)
    if "parts" in sections:
        out["parts"] = part_rows(device, quick)
    if hasattr(os, "getloadavg"):
        meta["loadavg_end"] = os.getloadavg()
    return out


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}"


def format_tables(result: dict) -> str:
    """Markdown tables of a :func:`run_benchmark` result."""
    lines = []
    meta = result.get("meta", {})
    lines.append(f"device {meta.get('device')} ({meta.get('gpu', 'cpu')}), torch {meta.get('torch')}, "
                 f"threads {meta.get('threads')}, clock {meta.get('clock')}, load {meta.get('loadavg_start')} -> {meta.get('loadavg_end')}")
    if result.get("layers"):
        lines += [
            "",
            "### Layers (C -> C, padding k//2; ms = median; speed-up = dense / bands; auto/best = auto / min(dense, bands))",
            "",
            "| d | C | k | input | train conv | train dense | train bands | train auto | speed-up | auto/best |"
            " auto path | infer conv | infer dense | infer bands | infer auto | dense/conv | auto/best | GFLOP dense | GFLOP bands |",
            "|" + "---|" * 19,
        ]
        for r in result["layers"]:
            t, i, g = r["train_ms"], r["infer_ms"], r["gflops"]
            lines.append(
                f"| {r['spatial_dims']} | {r['channels']} | {r['kernel_size']} | {'x'.join(map(str, r['input']))} "
                f"| {t['conv']:.1f} | {t['dense']:.1f} | {t['bands']:.1f} | {t['auto']:.1f} "
                f"| {_ratio(t['dense'], t['bands'])} | {_ratio(t['auto'], min(t['dense'], t['bands']))} "
                f"| {r['auto_path_train']}/{r['auto_path_infer']} "
                f"| {i['conv']:.1f} | {i['dense']:.1f} | {i['bands']:.1f} | {i['auto']:.1f} "
                f"| {_ratio(i['dense'], i['conv'])} | {_ratio(i['auto'], min(i['dense'], i['bands']))} "
                f"| {g['dense']:.2f} | {g['bands']:.2f} |"
            )
    if result.get("models"):
        lines += [
            "",
            "### Models (train = forward+backward, ms median; peak = one training step, MiB)",
            "",
            "| model | input | params (M) | GFLOP fwd | train ms | infer ms | peak MiB |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in result["models"]:
            peak = r.get("peak_mb")
            lines.append(
                f"| {r['model']} | {'x'.join(map(str, r['input']))} | {r['params'] / 1e6:.2f} | {r['gflops']:.2f} "
                f"| {r['train_ms']:.0f} | {r['infer_ms']:.0f} | {'-' if peak is None else f'{peak:.0f}'} |"
            )
    if result.get("twins"):
        lines += _twin_tables(result["twins"])
    if result.get("parts"):
        lines += [
            "",
            "### Where the time goes (each part timed on its own; ms = median; GFLOP = forward, 2 per multiply-add)",
            "",
            "| network | part | input | train ms | infer ms | GFLOP |",
            "|---|---|---|---|---|---|",
        ]
        for r in result["parts"]:
            lines.append(f"| {r['network']} | {r['part']} | {'x'.join(map(str, r['input']))} | {r['train_ms']:.0f} "
                         f"| {r['infer_ms']:.0f} | {r['gflops']:.2f} |")
    return "\n".join(lines) + "\n"


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _twin_tables(twins: dict) -> list[str]:
    lines = [
        "",
        "### SRE networks against their plain twins (equal widths; ms = median; ratio = SRE / plain)",
        "",
        "| network | plain twin | input | train SRE | train plain | ratio | infer SRE | infer plain | ratio "
        "| peak MiB SRE | peak MiB plain | ratio |",
        "|" + "---|" * 12,
    ]
    for r in twins["rows"]:
        t, i, m = r["train_ms"], r["infer_ms"], r.get("peak_mb") or {}
        peak_ratio = r.get("peak_ratio")
        lines.append(
            f"| {r['network']} | {r['plain']} | {'x'.join(map(str, r['input']))} | {t['sre']:.0f} | {t['plain']:.0f} "
            f"| {r['train_ratio']:.2f} | {i['sre']:.0f} | {i['plain']:.0f} | {r['infer_ratio']:.2f} "
            f"| {_mb(m.get('sre'))} | {_mb(m.get('plain'))} | {'-' if peak_ratio is None else f'{peak_ratio:.2f}'} |"
        )
    lines += [
        "",
        "Growth exponent of the time per volume against the voxel count (1.0: proportional):",
        "",
        "| network | sizes | train SRE | train plain | infer SRE | infer plain |",
        "|---|---|---|---|---|---|",
    ]
    for g in twins["growth"]:
        lines.append(
            f"| {g['network']} | {', '.join(f'{s}^3' for s in g['sizes'])} | {g['sre_train']:.2f} "
            f"| {g['plain_train']:.2f} | {g['sre_infer']:.2f} | {g['plain_infer']:.2f} |"
        )
    lines += [
        "",
        "Whole-volume segmentation, `sliding_window_inference` (one window at a time, overlap 0.25):",
        "",
        "| input | window | SRE-UNet s | UNet s | ratio | peak MiB SRE-UNet | peak MiB UNet |",
        "|---|---|---|---|---|---|---|",
    ]
    for w in twins["windows"]:
        m = w.get("peak_mb") or {}
        lines.append(
            f"| {'x'.join(map(str, w['input']))} | {w['window']}^3 | {w['seconds']['sre']:.1f} "
            f"| {w['seconds']['plain']:.1f} | {w['ratio']:.2f} | {_mb(m.get('sre'))} | {_mb(m.get('plain'))} |"
        )
    return lines


def timed_training(
    dataset: str = "adrenalmnist3d",
    root: str | None = None,
    model: str = "sre_r3d_18",
    device: str | torch.device = "cpu",
    seconds: float = 90.0,
    batch_size: int = 16,
    size: int = 28,
    lr: float = 1e-3,
    widths: Sequence[int] | None = None,
    algorithm: str = "auto",
) -> dict:
    """Train ``model`` on ``dataset`` for about ``seconds`` with MONAI's ``SupervisedTrainer`` (stopped by
    Ignite's ``TimeLimit``), then report test accuracy (``SupervisedEvaluator``, the bundles' post-processing and
    Ignite ``Accuracy``): a quick real-data check for a new machine.

    Returns:
        ``{"iterations", "samples_per_s", "train_loss", "test_accuracy", "seconds", ...}``.
    """
    from ignite.engine import Events
    from ignite.handlers import TimeLimit
    from ignite.metrics import Accuracy
    from monai.data import DataLoader
    from monai.engines import SupervisedEvaluator, SupervisedTrainer

    device = torch.device(device)
    info = dataset_info(dataset, root=root, size=size)
    train_ds = get_dataset(dataset, "train", root=root, size=size)
    test_ds = get_dataset(dataset, "test", root=root, size=size)
    kwargs = {"in_channels": info["in_channels"], "num_classes": info["num_classes"]}
    if widths is not None:
        kwargs["widths"] = tuple(widths)
    torch.manual_seed(0)
    net = get_model(model, **kwargs).to(device)
    set_algorithm(net, algorithm)
    loader = DataLoader(train_ds, batch_size=batch_size, shuffle=True, num_workers=0)
    trainer = SupervisedTrainer(
        device=device, max_epochs=1000, train_data_loader=loader, network=net,
        optimizer=torch.optim.Adam(net.parameters(), lr=lr), loss_function=ClassificationLoss(info["task"]),
    )
    trainer.add_event_handler(Events.ITERATION_COMPLETED, TimeLimit(limit_sec=int(seconds)))
    t0 = time.perf_counter()
    trainer.run()
    elapsed = time.perf_counter() - t0
    evaluator = SupervisedEvaluator(
        device=device, val_data_loader=DataLoader(test_ds, batch_size=64, num_workers=0), network=net,
        postprocessing=classification_postprocessing(info["task"]),
        key_val_metric={"test_accuracy": Accuracy(output_transform=ClassificationOutput(info["task"], "acc"))},
    )
    evaluator.run()
    iterations = trainer.state.iteration
    out = trainer.state.output
    last = out[0] if isinstance(out, list) else out
    return {
        "dataset": dataset, "model": model, "device": str(device), "algorithm": algorithm,
        "iterations": iterations, "epochs": iterations / max(len(loader), 1), "seconds": elapsed,
        "samples_per_s": iterations * batch_size / elapsed, "train_loss": float(last["loss"]),
        "test_accuracy": float(evaluator.state.metrics["test_accuracy"]),
    }
