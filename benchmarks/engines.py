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
calibrated (INT8 + FP16) on the real windows (this needs onnxruntime).

On a machine with CUDA, eager PyTorch (the baseline) and the torch engine run on the GPU, ONNX Runtime on its CUDA
provider and TensorRT is timed too; `--cpu` keeps everything on the CPU (TensorRT is then left out). Each engine's
device is in the JSON (`engines`), and so is why an engine was left out (`skipped`, also printed).
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:  # _common and model_speed sit beside this script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import USER_ERRORS, at_least, check_out, environment, fail, write_report  # noqa: E402

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
        ws = load_windows(args.data, T=args.window, M=2, preprocess=pre, stride=max(1, args.window // 4))
        ckpt = _preset_checkpoint(args.preset, ws.windows, work / "model.pt", 60, args.window)
    bundle = work / "bundle"
    export_bundle(ckpt, bundle, ExportOptions(window=args.window, exporter=args.exporter, data=args.data,
                                              samples=16))
    calibrate_bundle(bundle, CalibrateOptions(data=args.data, samples=256, fp16=True, method=args.method))
    return bundle


def _engine_options(backend: str, args) -> dict:
    """open_engine options of a backend: threads on the CPU runtimes, the device (--cpu: the CPU), and for TensorRT an
    optimization profile that takes the throughput batch in one call (its default stops at 8, larger ones ran in
    chunks)."""
    if backend == "tensorrt":
        return {"max_batch": max(8, args.batch)}
    opts = {"threads": args.threads or None}
    opts["device"] = "cpu" if args.cpu else "auto"
    return opts


def _engines(bundle: Path, args) -> tuple[dict, dict[str, str]]:
    """The engines this machine can run, warmed up, and {name: why not} for the ones it cannot."""
    from sttr.model.bundle import BundleError
    from sttr.realtime.engines import available_backends, open_engine

    out, skipped = {}, {}
    for backend in available_backends():
        if backend == "tensorrt" and args.cpu:
            skipped.update({f"tensorrt-{p}": "--cpu" for p in ("fp32", "fp16", "int8")})
            continue
        for precision in ("fp32", "fp16", "int8"):
            try:
                engine = open_engine(bundle, backend=backend, precision=precision, **_engine_options(backend, args))
                engine.warmup(1)
                engine.warmup(args.batch, 1)
            except (ImportError, ValueError, RuntimeError, OSError, BundleError) as err:
                log.info("skipping %s/%s: %s", backend, precision, err)
                skipped[f"{backend}-{precision}"] = (str(err) or repr(err)).splitlines()[0]
                continue
            out[f"{backend}-{precision}"] = engine
    return out, skipped


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


def _eager_device(cpu_only: bool) -> str:
    """Where eager PyTorch (the baseline) runs: the GPU when torch sees one, unless --cpu."""
    import torch

    return "cuda" if torch.cuda.is_available() and not cpu_only else "cpu"


def _eager(bundle: Path, threads: int | None, device: str = "cpu"):
    """Eager PyTorch on `device`; each call returns the logits on the host, so a CUDA call is complete (copied
    back, synchronised) when its time is taken."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    model = _eager_network(bundle).to(device)

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x).to(device)).cpu().numpy()
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
        T = spec.T or int(spec.preprocess.get("window") or args.window)  # a bundle with a dynamic T: its window
        ws = load_windows(args.data, T=T, M=spec.M, preprocess=spec.preprocess, stride=max(1, T // 4))
        engines, skipped = _engines(bundle, args)
        eager_device = _eager_device(args.cpu)
        fns = {"torch-eager-fp32": _eager(bundle, args.threads, eager_device)}
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
        floor = _fp32_floor(bundle, pair, args.threads, eager_device)
        devices = {"torch-eager-fp32": eager_device, **{name: e.info.device for name, e in engines.items()}}
        return {"bundle": str(bundle) if args.bundle else f"temporary, from {args.checkpoint or args.preset}",
                "model": _model_name(info.data["model"]), "input": spec.to_dict(),
                "real_windows": len(ws), "batch": args.batch, "rounds": args.rounds, "threads": args.threads,
                "repeats": repeats,
                "calibration": {k: v.get("held_out") for k, v in info.data.get("calibration", {}).items()
                                if isinstance(v, dict) and "held_out" in v},
                "machine": environment(vars(args)),
                "engines": {name: {"device": dev} for name, dev in devices.items()}, "skipped": skipped,
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


def _fp32_floor(bundle: Path, window: np.ndarray, threads: int | None, device: str = "cpu") -> dict:
    """The two-person window's FLOPs at the rate of the network's heaviest op on the baseline's device (model_speed.py's
    floor)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from model_speed import attainable_gflops  # beside this script

    if threads:
        torch.set_num_threads(threads)
    model = _eager_network(bundle).to(device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.from_numpy(window).to(device))
    rate = attainable_gflops(torch.device(device))
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
        lines.append("(x eager is the median of each repeat's own ratio, so it can differ slightly from the ratio of "
                     "the median times)")
    devices = {name: e["device"] for name, e in report.get("engines", {}).items()}
    if any(not str(d).startswith("cpu") for d in devices.values()):
        lines.append("devices: " + ", ".join(f"{name} {d}" for name, d in devices.items()))
    for name, why in report.get("skipped", {}).items():
        lines.append(f"not timed: {name}: {why}")
    f, eager = report["fp32_floor"], report["results"]["torch-eager-fp32"]["p50_ms_two_persons"]
    lines.append(f"FP32 floor of the two-person window: {f['gflop']:.2f} GFLOP at {f['gflops_per_s']:.0f} GFLOP/s "
                 f"(the heaviest op alone) = {f['floor_ms']:.1f} ms; eager runs at {100 * f['floor_ms'] / eager:.0f} % "
                 f"of it, so no FP32 engine can be more than {eager / f['floor_ms']:.2f}x faster than eager here")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="real windows: NTU .skeleton folder or generated split")
    p.add_argument("--bundle", default=None, help="an existing bundle (else one is made)")
    p.add_argument("--checkpoint", default=None, help="checkpoint to export when no --bundle")
    p.add_argument("--preset", default="s-tr", help="untrained preset when neither --bundle nor --checkpoint")
    p.add_argument("--window", type=at_least(1), default=64, help="T of a made bundle (default 64)")
    p.add_argument("--exporter", default="legacy", choices=("auto", "dynamo", "legacy"))
    p.add_argument("--method", default="minmax", choices=("minmax", "entropy", "percentile"))
    p.add_argument("--batch", type=at_least(1), default=8, help="batch of the throughput measurement (default 8)")
    p.add_argument("--rounds", type=at_least(1), default=40, help="interleaved batch-1 rounds (default 40)")
    p.add_argument("--repeats", type=at_least(1), default=1,
                   help="repeat the whole measurement and report medians (shared machines: use 5)")
    p.add_argument("--threads", type=at_least(0), default=None,
                   help="intra-op threads of every engine (0 or none: each runtime's default)")
    p.add_argument("--cpu", action="store_true",
                   help="everything on the CPU even when CUDA is available (ONNX Runtime, torch; no TensorRT)")
    p.add_argument("--out", default=None, help="write the report as JSON here")
    return p


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _check(args: argparse.Namespace) -> None:
    """What can be checked before minutes of export and calibration: ValueError naming the flag."""
    from sttr.model.config import PRESETS

    if not Path(args.data).exists():
        raise ValueError(f"--data {args.data} does not exist (an NTU .skeleton folder or a generated split)")
    if args.bundle is None and args.checkpoint is None and args.preset not in PRESETS:
        raise ValueError(f"--preset: unknown preset {args.preset!r}; known: {', '.join(sorted(PRESETS))}")
    for flag, path in (("--bundle", args.bundle), ("--checkpoint", args.checkpoint)):
        if path is not None and not Path(path).exists():
            raise ValueError(f"{flag} {path} does not exist")
    if args.bundle is None and not _installed("onnxruntime"):
        raise ValueError("making a bundle (export, INT8/FP16 calibration) needs onnxruntime: pip install "
                         "'sttr[live]' (or give an existing --bundle)")
    check_out(args.out)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from sttr.calibration.bundle_writer import ParityError
    from sttr.calibration.calibrate_bundle import AgreementFloorError
    from sttr.model.bundle import BundleError

    try:
        _check(args)
        report = run(args)
    except (*USER_ERRORS, BundleError, ParityError, AgreementFloorError) as exc:
        return fail("engines.py", exc)
    print(_table(report))
    if args.out:
        try:
            write_report(args.out, report)
        except OSError as exc:
            return fail("engines.py", f"--out: could not write {args.out}: {exc.strerror or exc}")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
