"""Engines side by side: batch-1 latency (p50/p99), batch throughput and top-1 agreement on real windows.

    python benchmarks/engines.py --data ../shared/data/ntu60 [--bundle DIR | --checkpoint CKPT | --preset s-tr]
        [--window 64] [--batch 8] [--rounds 40] [--threads N] [--out engines.json]

The eager network skips an empty second person slot exactly (its features are a cached constant) while the
exported graphs always compute both slots, so batch-1 latency is reported for a one-person and a two-person window.
Every backend and precision available here (ONNX Runtime fp32/fp16/int8, torch, TensorRT on a GPU) is timed in
interleaved rounds together with eager PyTorch FP32 (the baseline, `model(x)` under `no_grad`), so a machine shared
with other work slows all of them alike; the table quotes ratios to the baseline. Agreement is the fraction of real
windows whose top-1 class equals eager PyTorch's. Without `--bundle` a bundle is made in a temporary folder from
`--checkpoint`, or from `--preset` (untrained weights, batch-norm statistics set on the real windows), exported and
calibrated (INT8 + FP16) on the real windows.
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("benchmarks.engines")


def _preset_checkpoint(name: str, windows: np.ndarray, path: Path, num_classes: int, window: int) -> Path:
    import torch

    from sttr.model.checkpoint import save_checkpoint
    from sttr.model.config import preset
    from sttr.model.preprocess import PreprocessSpec
    from sttr.model.sttr import STTR

    torch.manual_seed(0)
    model = STTR(preset(name, num_classes=num_classes))
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None
    model.train()
    with torch.no_grad():
        for i in range(0, len(windows), 8):
            model(torch.from_numpy(windows[i:i + 8]))
    model.eval()
    spec = PreprocessSpec(layout="ntu25", window=window)
    return save_checkpoint(path, model, preprocess=spec.to_dict(), meta={"benchmark": f"{name}, untrained"})


def _make_bundle(args, work: Path) -> Path:
    from sttr.calibration.bundle_writer import ExportOptions, export_bundle
    from sttr.calibration.calibrate_bundle import CalibrateOptions, calibrate_bundle
    from sttr.calibration.calibration_data import load_windows
    from sttr.model.preprocess import PreprocessSpec

    ckpt = args.checkpoint
    if ckpt is None:
        pre = PreprocessSpec(layout="ntu25", window=args.window).to_dict()
        ws = load_windows(args.data, T=args.window, M=2, preprocess=pre, stride=args.window // 4)
        ckpt = _preset_checkpoint(args.preset, ws.windows, work / "model.pt", 60, args.window)
    bundle = work / "bundle"
    export_bundle(ckpt, bundle, ExportOptions(window=args.window, exporter=args.exporter, data=args.data,
                                              samples=16))
    calibrate_bundle(bundle, CalibrateOptions(data=args.data, samples=256, fp16=True, method=args.method))
    return bundle


def _engines(bundle: Path, args) -> dict:
    from sttr.realtime.engines import available_backends, open_engine

    out = {}
    for backend in available_backends():
        for precision in ("fp32", "fp16", "int8"):
            opts = {"threads": args.threads} if backend in ("onnxruntime", "torch") else {}
            if backend == "onnxruntime":
                opts["device"] = "cpu" if args.cpu else "auto"
            try:
                engine = open_engine(bundle, backend=backend, precision=precision, **opts)
                engine.warmup(1)
                engine.warmup(args.batch, 1)
            except (ImportError, ValueError, RuntimeError) as err:
                log.info("skipping %s/%s: %s", backend, precision, err)
                continue
            out[f"{backend}-{precision}"] = engine
    return out


def _model_name(entry: dict) -> str:
    """The attention placement of the network (`both`, `spatial`, ...), or of each stream of a fused bundle."""
    if entry.get("streams"):
        return "fusion of " + " + ".join(str(s["config"].get("attention")) for s in entry["streams"])
    return str(entry["config"].get("attention"))


def _eager_network(bundle: Path):
    """The bundle's network in PyTorch (a fused bundle: its streams, summed as the graph does)."""
    from sttr.model.bundle import read_bundle
    from sttr.model.fusion import load_bundle_network

    try:
        return load_bundle_network(read_bundle(bundle))
    except ValueError as err:
        raise SystemExit(f"no eager baseline: {err}") from None


def _eager(bundle: Path, threads: int | None):
    import torch

    if threads:
        torch.set_num_threads(threads)
    model = _eager_network(bundle)

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()
    return run


def _interleaved(fns: dict, x: np.ndarray, rounds: int) -> dict[str, list[float]]:
    times = {name: [] for name in fns}
    for _ in range(2):
        for fn in fns.values():
            fn(x)
    for r in range(rounds):
        order = list(fns.items())
        if r % 2:
            order.reverse()
        for name, fn in order:
            start = time.perf_counter()
            fn(x)
            times[name].append((time.perf_counter() - start) * 1000.0)
    return times


def run(args) -> dict:
    from sttr.calibration.calibration_data import load_windows
    from sttr.calibration.parity import compare_logits
    from sttr.model.bundle import read_bundle

    with tempfile.TemporaryDirectory(prefix="sttr-bench-") as tmp:
        bundle = Path(args.bundle) if args.bundle else _make_bundle(args, Path(tmp))
        info = read_bundle(bundle)
        spec = info.input
        ws = load_windows(args.data, T=spec.T, M=spec.M, preprocess=spec.preprocess, stride=spec.T // 4)
        engines = _engines(bundle, args)
        fns = {"torch-eager-fp32": _eager(bundle, args.threads)}
        fns.update({name: e.run for name, e in engines.items()})
        others = np.abs(ws.windows[..., 1:]).reshape(len(ws), -1)  # person slots 1.. (none when M = 1)
        two = np.flatnonzero(others.max(1) > 0) if others.shape[1] else np.array([], dtype=np.int64)
        one = np.setdiff1d(np.arange(len(ws)), two)
        single = ws.windows[one[:1]] if len(one) else ws.windows[:1]
        pair = ws.windows[two[:1]] if len(two) else ws.windows[:1]
        batch = np.ascontiguousarray(np.resize(ws.windows, (args.batch, *ws.windows.shape[1:])))
        repeats = [_measure(fns, single, pair, batch, args) for _ in range(args.repeats)]
        reference = fns["torch-eager-fp32"](ws.windows)
        rows = {}
        for name, fn in fns.items():
            agree = compare_logits(reference, fn(ws.windows))
            # each figure is the median over the repeats (ratios from the repeats' own ratios: one repeat's
            # engines ran side by side, different repeats may not have had the machine to themselves)
            rows[name] = {key: float(np.median([r[name][key] for r in repeats])) for key in repeats[0][name]}
            rows[name].update(top1_agreement=agree["top1_agreement"], max_abs_logit_diff=agree["max_abs_logit_diff"])
        floor = _fp32_floor(bundle, pair, args.threads)
        return {"bundle": str(bundle) if args.bundle else f"temporary, from {args.checkpoint or args.preset}",
                "model": _model_name(info.data["model"]), "input": spec.to_dict(),
                "real_windows": len(ws), "batch": args.batch, "rounds": args.rounds, "repeats": repeats,
                "calibration": {k: v.get("held_out") for k, v in info.data["calibration"].items()
                                if isinstance(v, dict) and "held_out" in v},
                "machine": {"python": platform.python_version(), "processor": platform.processor(),
                            "cpus": __import__("os").cpu_count()},
                "fp32_floor": floor, "results": rows}


def _measure(fns: dict, single: np.ndarray, pair: np.ndarray, batch: np.ndarray, args) -> dict[str, dict]:
    """One interleaved measurement of every engine: batch-1 latency on a one- and a two-person window, batch
    throughput, and each engine's ratios to eager PyTorch in this same run."""
    lat = _interleaved(fns, single, args.rounds)
    lat2 = _interleaved(fns, pair, max(4, args.rounds // 2))
    thr = _interleaved(fns, batch, max(4, args.rounds // 4))
    rows = {name: {"p50_ms": float(np.percentile(lat[name], 50)), "p99_ms": float(np.percentile(lat[name], 99)),
                   "p50_ms_two_persons": float(np.median(lat2[name])),
                   "throughput_windows_s": float(args.batch / (np.median(thr[name]) / 1000.0))} for name in fns}
    base = rows["torch-eager-fp32"]
    for row in rows.values():
        row["latency_speedup"] = base["p50_ms"] / row["p50_ms"]
        row["latency_speedup_two_persons"] = base["p50_ms_two_persons"] / row["p50_ms_two_persons"]
        row["throughput_speedup"] = row["throughput_windows_s"] / base["throughput_windows_s"]
    return rows


def _fp32_floor(bundle: Path, window: np.ndarray, threads: int | None) -> dict:
    """The two-person window's FLOPs at the rate of the network's heaviest op on this CPU (model_speed.py's floor)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from model_speed import attainable_gflops  # beside this script

    if threads:
        torch.set_num_threads(threads)
    model = _eager_network(bundle)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.from_numpy(window))
    rate = attainable_gflops(torch.device("cpu"))
    return {"gflop": counter.get_total_flops() / 1e9, "gflops_per_s": rate,
            "floor_ms": counter.get_total_flops() / 1e9 / rate * 1e3}


def _table(report: dict) -> str:
    lines = ["batch 1: p50/p99 on a one-person window, p50 on a two-person window; throughput at batch B",
             f"{'engine':<22}{'p50 ms':>9}{'p99 ms':>9}{'x eager':>9}{'2p p50':>9}{'x eager':>9}{'win/s @B':>10}"
             f"{'x eager':>9}{'top-1 agr':>10}"]
    for name, r in report["results"].items():
        lines.append(f"{name:<22}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['latency_speedup']:>9.2f}"
                     f"{r['p50_ms_two_persons']:>9.2f}{r['latency_speedup_two_persons']:>9.2f}"
                     f"{r['throughput_windows_s']:>10.1f}{r['throughput_speedup']:>9.2f}{r['top1_agreement']:>10.4f}")
    if len(report["repeats"]) > 1:
        lines.append(f"medians of {len(report['repeats'])} repeats; each engine's ratios (1p / 2p / batch) ranged:")
        for name in report["results"]:
            spans = [(min(r[name][k] for r in report["repeats"]), max(r[name][k] for r in report["repeats"]))
                     for k in ("latency_speedup", "latency_speedup_two_persons", "throughput_speedup")]
            lines.append(f"  {name:<20}" + " / ".join(f"{lo:.2f}-{hi:.2f}" for lo, hi in spans))
    f, eager = report["fp32_floor"], report["results"]["torch-eager-fp32"]["p50_ms_two_persons"]
    lines.append(f"FP32 floor of the two-person window: {f['gflop']:.2f} GFLOP at {f['gflops_per_s']:.0f} GFLOP/s "
                 f"(the heaviest op alone) = {f['floor_ms']:.1f} ms; eager runs at {100 * f['floor_ms'] / eager:.0f} % "
                 f"of it, so no FP32 engine can be more than {eager / f['floor_ms']:.2f}x faster than eager here")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="real windows: NTU .skeleton folder or generated split")
    p.add_argument("--bundle", default=None, help="an existing bundle (else one is made)")
    p.add_argument("--checkpoint", default=None, help="checkpoint to export when no --bundle")
    p.add_argument("--preset", default="s-tr", help="untrained preset when neither --bundle nor --checkpoint")
    p.add_argument("--window", type=int, default=64, help="T of a made bundle (default 64)")
    p.add_argument("--exporter", default="legacy", choices=("auto", "dynamo", "legacy"))
    p.add_argument("--method", default="minmax", choices=("minmax", "entropy", "percentile"))
    p.add_argument("--batch", type=int, default=8, help="batch of the throughput measurement")
    p.add_argument("--rounds", type=int, default=40, help="interleaved batch-1 rounds")
    p.add_argument("--repeats", type=int, default=1,
                   help="repeat the whole measurement and report medians (shared machines: use 5)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads of every engine")
    p.add_argument("--cpu", action="store_true", help="ONNX Runtime on CPU even when CUDA is available")
    p.add_argument("--out", default=None, help="write the report as JSON here")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.rounds < 1:
        p.error(f"--repeats and --rounds must be >= 1, got {args.repeats} and {args.rounds}")
    logging.basicConfig(level=logging.WARNING)
    report = run(args)
    print(_table(report))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
