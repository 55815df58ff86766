"""Speed of the ST-TR network: parameters, FLOPs, batch-1 latency, throughput and a training step.

    python benchmarks/model_speed.py [--variants s-tr,t-tr] [--frames 64,300] [--iters 10] [--out speed.json]

Latency is measured in eval mode on windows with both persons present and with the second person slot empty
(skipped exactly, see `STTR`), batch 1, M = 2. The unmodified reference's CPU timings on the same 2-core
machine (torch 2.13, batch 1, M = 2) are the baseline. FLOPs count conv/matmul multiply-adds x 2 over one
window with both persons (spec §2). Parameter counts are compared with the spec's table minus the reference's
unused `person_bn` (which STTR does not build).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from sttr.model.config import PRESETS
from sttr.model.sttr import STTR

# unmodified reference, CPU, batch 1, M = 2, ms (the measurements on this machine)
REFERENCE_MS = {("s-tr", 64): 28.7, ("s-tr", 300): 183.0}
# spec §2, counted the reference's way (includes person_bn: 2 x C_last parameters)
REFERENCE_PARAMS = {"s-tr": 3_075_338, "t-tr": 1_768_870, "s-tr-agcn": 3_094_826, "t-tr-agcn": 2_140_358,
                    "s-tr-bones": 12_126_348, "t-tr-bones": 6_840_914, "s-tr-agcn-bones": 12_203_148,
                    "t-tr-agcn-bones": 8_319_954, "st-gcn": 3_101_030}


def _times(fn, iters: int, warmup: int, sync) -> list[float]:
    for _ in range(warmup):
        fn()
    sync()
    out = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        sync()
        out.append((time.perf_counter() - start) * 1e3)
    return out


def _paired(fn_a, fn_b, iters: int, warmup: int, sync) -> tuple[list[float], list[float]]:
    """Alternate two measurements so that both see the same machine load."""
    a, b = [], []
    for i in range(iters):
        a += _times(fn_a, 1, warmup if i == 0 else 0, sync)
        b += _times(fn_b, 1, warmup if i == 0 else 0, sync)
    return a, b


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _flops(model: STTR, x: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops()


def bench_one(name: str, frames: int, args, device: torch.device) -> dict:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    cfg = PRESETS[name]
    torch.manual_seed(0)
    model = STTR(cfg).to(device).eval()
    c, v, m = cfg.in_channels, cfg.num_joints, cfg.num_persons
    x = torch.randn(1, c, frames, v, m, device=device)
    x_empty = x.clone()
    x_empty[..., 1] = 0
    params = sum(p.numel() for p in model.parameters())
    row = {"variant": name, "T": frames, "device": str(device), "params": params,
           "params_reference_minus_person_bn": REFERENCE_PARAMS.get(name, 0) - 2 * model.out_channels,
           "gflops": _flops(model, x) / 1e9}
    with torch.inference_mode():
        full, empty = _paired(lambda: model(x), lambda: model(x_empty), args.iters, args.warmup, sync)
        xb = torch.randn(args.batch, c, frames, v, m, device=device)
        tput = _times(lambda: model(xb), max(2, args.iters // 4), 1, sync)
    row.update(latency_ms_p50=statistics.median(full), latency_ms_p99=_pct(full, 0.99),
               empty_slot_ms_p50=statistics.median(empty), empty_slot_ms_p99=_pct(empty, 0.99),
               throughput_windows_per_s=args.batch * 1e3 / statistics.median(tput), batch=args.batch)
    if not args.no_train:
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        xt = torch.randn(args.train_batch, c, frames, v, m, device=device)
        yt = torch.randint(0, cfg.num_classes, (args.train_batch,), device=device)

        def step():
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(xt), yt).backward()
            opt.step()
        train = _times(step, max(2, args.iters // 4), 1, sync)
        row.update(train_step_ms_p50=statistics.median(train), train_batch=args.train_batch)
    ref = REFERENCE_MS.get((name, frames)) if device.type == "cpu" else None
    row["reference_ms"] = ref
    row["speedup_vs_reference"] = ref / row["latency_ms_p50"] if ref else None
    row["speedup_empty_vs_full"] = row["latency_ms_p50"] / row["empty_slot_ms_p50"]
    return row


def _table(rows: list[dict]) -> str:
    head = (f"{'variant':8} {'T':>4} {'dev':>5} {'params':>10} {'ref-pbn':>10} {'GFLOP':>7} {'p50 ms':>8} "
            f"{'p99 ms':>8} {'empty p50':>9} {'x empty':>7} {'win/s':>7} {'train ms':>9} {'ref ms':>7} {'x ref':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        ref = f"{r['reference_ms']:.1f}" if r["reference_ms"] else "-"
        up = f"{r['speedup_vs_reference']:.2f}" if r["speedup_vs_reference"] else "-"
        train = f"{r['train_step_ms_p50']:.1f}" if "train_step_ms_p50" in r else "-"
        lines.append(f"{r['variant']:8} {r['T']:>4} {r['device'][:5]:>5} {r['params']:>10,} "
                     f"{r['params_reference_minus_person_bn']:>10,} {r['gflops']:>7.2f} {r['latency_ms_p50']:>8.2f} "
                     f"{r['latency_ms_p99']:>8.2f} {r['empty_slot_ms_p50']:>9.2f} {r['speedup_empty_vs_full']:>7.2f} "
                     f"{r['throughput_windows_per_s']:>7.1f} {train:>9} {ref:>7} {up:>6}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default="s-tr,t-tr", help="comma-separated preset names")
    p.add_argument("--frames", default="64,300", help="comma-separated window lengths T")
    p.add_argument("--iters", type=int, default=10, help="timed iterations per measurement (default 10)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=8, help="batch for the throughput measurement")
    p.add_argument("--train-batch", type=int, default=4, help="batch of the training step")
    p.add_argument("--no-train", action="store_true", help="skip the training-step measurement")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (CPU, plus CUDA when available)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    if args.device != "auto":
        devices = [torch.device(args.device)]
    rows = [bench_one(name.strip(), int(t), args, dev) for dev in devices
            for name in args.variants.split(",") for t in args.frames.split(",")]
    print(_table(rows))
    print("ref-pbn: the spec's parameter count minus the unused person_bn; x ref: reference p50 / ours p50; "
          "x empty: full / empty-second-slot latency")
    if args.out:
        info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
                "processor": platform.processor(), "cuda": torch.cuda.get_device_name() if torch.cuda.is_available()
                else None}
        args.out.write_text(json.dumps({"env": info, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
