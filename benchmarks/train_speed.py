"""Training throughput: samples/s of one training step (forward + backward + SGD) of S-TR and T-TR, and of the
data loader (memory-mapped feeder with augmentation), on CPU here or on a GPU when available.

    python benchmarks/train_speed.py --out train_speed.json                       # CPU defaults (small, quick)
    python benchmarks/train_speed.py --device cuda --frames 300 --batch 32 --out train_speed_gpu.json

The reference on one H100 trains S-TR (T = 300, M = 2, batch 32, fp32) at ~276 samples/s and T-TR at ~180; they are
printed as the GPU baseline, and the ratio to them (`x ref`, ours / reference) only for a GPU run of that shape.
The data loader's rate is that of its second pass over the samples (the first starts the worker processes).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:  # _common sits beside this script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import USER_ERRORS, at_least, check_out, environment, fail, write_report  # noqa: E402

GPU_BASELINE = {"s-tr": 276.0, "t-tr": 180.0}  # samples/s, reference, one H100, T=300, M=2, batch 32, fp32
BASELINE_SHAPE = {"batch": 32, "frames": 300, "persons": 2, "precision": "fp32"}  # what GPU_BASELINE was measured at


def comparable_to_baseline(gpu: bool, **shape) -> bool:
    """Whether a run compares with GPU_BASELINE: on a GPU, at its batch, T, M and precision."""
    return gpu and all(shape.get(k) == v for k, v in BASELINE_SHAPE.items())


def _step_speed(preset_name: str, device, *, batch: int, frames: int, persons: int, precision: str, steps: int,
                warmup: int, compile_model: bool, channels_override: dict) -> float:
    import torch

    from sttr.model.config import preset
    from sttr.model.sttr import STTR
    from sttr.training.evaluate import autocast

    cfg = preset(preset_name, num_classes=60, num_persons=persons, **channels_override)
    model = STTR(cfg).to(device).train()
    net = torch.compile(model) if compile_model else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    x = torch.randn(batch, cfg.in_channels, frames, cfg.num_joints, persons, device=device)
    y = torch.randint(0, 60, (batch,), device=device)

    def step():
        with autocast(device, precision):
            loss = torch.nn.functional.cross_entropy(net(x).float(), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # the timed device, not the current one (cuda:0)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # the timed device, not the current one (cuda:0)
    return batch * steps / (time.perf_counter() - start)


def _loader_speed(*, samples: int, frames: int, persons: int, batch: int, workers: int, augment: bool) -> float:
    import pickle

    from torch.utils.data import DataLoader

    from sttr.training.config import AugmentConfig
    from sttr.training.feeder import SkeletonFeeder

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = np.lib.format.open_memmap(root / "train_data.npy", mode="w+", dtype=np.float32,
                                         shape=(samples, 3, frames, 25, persons))
        data[:] = np.random.default_rng(0).normal(size=data.shape).astype(np.float32)
        data.flush()
        del data
        with open(root / "train_label.pkl", "wb") as f:
            pickle.dump(([f"s{i}" for i in range(samples)], [i % 60 for i in range(samples)]), f)
        (root / "train_meta.json").write_text(json.dumps({"layout": "ntu25"}))
        aug = AugmentConfig(rotate=15, scale=0.1, shift=0.1, mirror=0.5, crop=[0.5, 1.0]) if augment else None
        feeder = SkeletonFeeder(root, "train", augment=aug, window=frames)
        loader = DataLoader(feeder, batch_size=batch, num_workers=workers, shuffle=True,
                            persistent_workers=workers > 0)
        for _ in loader:  # untimed: starts the workers (seconds of process start-up, not the loader's rate)
            pass
        start, n = time.perf_counter(), 0
        for x, _, _ in loader:
            n += len(x)
        return n / (time.perf_counter() - start)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.add_argument("--presets", nargs="+", default=["s-tr", "t-tr"])
    p.add_argument("--batch", type=at_least(1), help="default: 32 on GPU, 4 on CPU")
    p.add_argument("--frames", type=at_least(1), help="default: 300 on GPU, 64 on CPU")
    p.add_argument("--persons", type=at_least(1), default=2)
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"), help="fp16: CUDA only")
    p.add_argument("--steps", type=at_least(1), help="timed steps (default: 20 on GPU, 3 on CPU)")
    p.add_argument("--threads", type=at_least(0), default=0, help="torch CPU threads (0: default)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--loader-samples", type=at_least(1), default=128)
    p.add_argument("--workers", nargs="+", type=at_least(0), default=[0, 2], help="DataLoader worker counts to time")
    p.add_argument("--out", help="write the results as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _main(args)
    except USER_ERRORS as exc:  # an unknown preset, a device torch cannot see, an unwritable --out
        return fail("train_speed.py", exc)


def _main(args: argparse.Namespace) -> int:
    import torch

    from sttr.model.config import PRESETS
    from sttr.training.distributed import resolve_device

    unknown = [n for n in args.presets if n not in PRESETS]
    if unknown:
        raise ValueError(f"--presets: unknown {', '.join(map(repr, unknown))}; known: {', '.join(sorted(PRESETS))}")
    check_out(args.out)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    if args.precision == "fp16" and not gpu:
        raise ValueError("--precision fp16 needs a CUDA device (GradScaler, as in training); use bf16 or fp32 on CPU")
    batch, frames = args.batch or (32 if gpu else 4), args.frames or (300 if gpu else 64)
    steps = args.steps or (20 if gpu else 3)
    name = torch.cuda.get_device_name(device) if gpu else f"CPU ({torch.get_num_threads()} threads)"
    comparable = comparable_to_baseline(gpu, batch=batch, frames=frames, persons=args.persons,
                                        precision=args.precision)
    print(f"device: {name}; batch {batch}, T = {frames}, M = {args.persons}, {args.precision}")
    rows = []
    for preset_name in args.presets:
        sps = _step_speed(preset_name, device, batch=batch, frames=frames, persons=args.persons,
                          precision=args.precision, steps=steps, warmup=2 if gpu else 1,
                          compile_model=args.compile, channels_override={})
        ref = GPU_BASELINE.get(preset_name)
        rows.append({"what": f"train step {preset_name}", "samples_per_s": sps,
                     "reference_h100_samples_per_s": ref,
                     "ratio_to_reference": sps / ref if comparable and ref else None})
    for workers in args.workers:
        sps = _loader_speed(samples=args.loader_samples, frames=frames, persons=args.persons, batch=batch,
                            workers=workers, augment=True)
        rows.append({"what": f"data loader ({workers} workers, augmented)", "samples_per_s": sps,
                     "reference_h100_samples_per_s": None, "ratio_to_reference": None})
    print(f"{'measurement':40s} {'samples/s':>10s} {'reference (H100, T=300, b=32)':>30s} {'x ref':>6s}")
    for r in rows:
        ref, ratio = r["reference_h100_samples_per_s"], r["ratio_to_reference"]
        print(f"{r['what']:40s} {r['samples_per_s']:10.1f} {'-' if ref is None else f'{ref:.0f}':>30s} "
              f"{'-' if ratio is None else f'{ratio:.2f}':>6s}")
    if not comparable:
        print("x ref: ours / the reference's samples/s, given only for a GPU run at batch 32, T = 300, M = 2, fp32 "
              "(the reference's shape)")
    if args.out:
        write_report(args.out, {"device": name, "batch": batch, "frames": frames, "persons": args.persons,
                                "precision": args.precision, "compile": args.compile, "steps": steps,
                                "comparable_to_reference": comparable, "reference_shape": BASELINE_SHAPE,
                                "machine": environment(vars(args)), "results": rows})
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
