"""Speed of the ST-TR network: parameters, FLOPs, batch-1 latency, throughput and a training step.

    python benchmarks/model_speed.py [--variants s-tr,t-tr] [--frames 64,300] [--iters 10] [--threads 1,2]
                                     [--reference-dir /tmp/stref] [--out speed.json]

Latency is measured in eval mode on windows with both persons present and with the second person slot empty
(skipped exactly, see `STTR`), batch 1, M = 2. FLOPs count conv/matmul multiply-adds x 2 over one window with
both persons (spec §2). Parameter counts are compared with the spec's table minus the reference's unused
`person_bn` (which STTR does not build).

With `--reference-dir DIR` (a folder holding the unmodified reference's `st_gcn/` package, see
`reference_harness.py`) the reference is timed side by side with ours in the same loops: both get the same
weights (ours converted from the reference's state dict), every measurement alternates between the two (order
reversed every round) so both see the same machine load, and the table gives the speedup ref ms / ours ms
(> 1: ours faster). Before timing, both are checked against the golden files (`--golden`, default
`../shared/reference/golden` when present): the run stops when their logits differ by more than 1e-4.
Without `--reference-dir` the quoted reference timings below (another machine's run, not reproducible here)
are printed for orientation only (marked `q`, with no ratio: a ratio to another machine measures the machines).

`--compile-train` adds our training step under torch.compile (the trainer's `compile` option) to the same
interleaved loop. On this 2-core CPU it is no reliable gain (S-TR T=64, two threads: 0.90-1.06x eager in two runs,
T-TR 1.02x): inductor fuses the elementwise work around the convolutions, which stay the same oneDNN calls.

The compute floor: the heaviest operation of the network (a 256->256 9x1 temporal convolution, oneDNN,
channels-last) is timed on its own at a batch large enough to keep the cores busy; its GFLOP/s is the rate this CPU
reaches on this network's arithmetic. A window's FLOPs at that rate give a floor no implementation of the same
network can beat by much, and `ref / floor` is the speedup over the reference a perfect implementation would get
(printed as "x ref at floor"). On this 2-core AMD EPYC (AVX-512 on 256-bit units, MKL's GEMM at ~76 GFLOP/s,
oneDNN's convolutions at ~110-120) that bound, not our code, caps the eval speedup.

On a shared machine multi-thread timings are very sensitive to other processes (OpenMP barriers): medians of
interleaved runs are reported, with the load average before and after every row.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from sttr.model.config import PRESETS
from sttr.model.sttr import STTR

if str(Path(__file__).resolve().parent) not in sys.path:  # _common and reference_harness sit beside this script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (USER_ERRORS, at_least, check_out, environment, fail, int_list,  # noqa: E402
                     positive_float, write_report)

log = logging.getLogger(__name__)
_REPO = Path(__file__).resolve().parent.parent
PARITY_TOL = 1e-4

# unmodified reference, CPU, batch 1, M = 2, ms: quoted from another run (used only without --reference-dir)
REFERENCE_MS = {("s-tr", 64): 28.7, ("s-tr", 300): 183.0}
# spec §2, counted the reference's way (includes person_bn: 2 x C_last parameters)
REFERENCE_PARAMS = {"s-tr": 3_075_338, "t-tr": 1_768_870, "s-tr-agcn": 3_094_826, "t-tr-agcn": 2_140_358,
                    "s-tr-bones": 12_126_348, "t-tr-bones": 6_840_914, "s-tr-agcn-bones": 12_203_148,
                    "t-tr-agcn-bones": 8_319_954, "st-gcn": 3_101_030}


def _interleaved(fns: dict[str, Callable[[], object]], iters: int, warmup: int, sync: Callable[[], None],
                 budget_s: float | None = None) -> dict[str, list[float]]:
    """Time every fn `iters` times (ms), one call each per round, the order reversed every other round.

    `warmup` untimed rounds come first. With `budget_s`, the number of timed rounds is cut to what fits the budget
    at the speed of the last warm-up round (at least one).
    """
    names = list(fns)
    round_s = 0.0
    for _ in range(warmup):
        start = time.perf_counter()
        for name in names:
            fns[name]()
        sync()
        round_s = time.perf_counter() - start
    if budget_s is not None and round_s > 0:
        iters = max(1, min(iters, int(budget_s // round_s)))
    out: dict[str, list[float]] = {name: [] for name in names}
    for i in range(iters):
        for name in (names if i % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            fns[name]()
            sync()
            out[name].append((time.perf_counter() - start) * 1e3)
    return out


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _flops(model: STTR, x: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops()


def attainable_gflops(device: torch.device, rounds: int = 12) -> float:
    """GFLOP/s of the network's heaviest op (256->256 9x1 conv, channels-last, batch 8 x 64 frames) on `device`.

    The best of `rounds` calls: on a shared machine a slower call measures the neighbours, not the CPU.
    """
    x = torch.randn(8, 256, 64, 25, device=device).contiguous(memory_format=torch.channels_last)
    w = torch.randn(256, 256, 9, 1, device=device).contiguous(memory_format=torch.channels_last)
    flops = 2.0 * 8 * 256 * 256 * 9 * 64 * 25
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    best = float("inf")
    with torch.inference_mode():
        for i in range(rounds + 1):
            start = time.perf_counter()
            torch.nn.functional.conv2d(x, w, padding=(4, 0))
            sync()
            if i:  # the first call builds oneDNN's kernel
                best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def _train_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
        model.train()
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return step


def _compiled_train_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """A training step of a torch.compile'd copy of `model`; compiled (and warmed twice: forward and backward
    graphs, then the optimizer state) here, so that no timed round includes compilation."""
    compiled = torch.compile(copy.deepcopy(model))
    step = _train_step(compiled, x, y)
    start = time.perf_counter()
    step()
    step()
    log.info("torch.compile of the training step: %.0f s", time.perf_counter() - start)
    return step


def _models(name: str, ref_dir: Path | None, device: torch.device) -> tuple[STTR, torch.nn.Module | None]:
    """Ours (the preset), and with `ref_dir` the reference, both holding the reference's initial weights.

    Ours is built from the preset and loaded through the converter's key mapping rather than through
    `load_reference_checkpoint`, whose inference would read the untrained SSA data BNs of a fresh reference as
    "unused" (attention_input_norm=False) and so time a different network.
    """
    torch.manual_seed(0)
    model = STTR(PRESETS[name])
    if ref_dir is None:
        return model.to(device).eval(), None
    from reference_harness import build_reference, reference_args

    from sttr.model.convert import map_reference_state_dict

    try:
        args = reference_args(name)
    except ValueError:
        log.warning("no reference configuration for %s; timing ours only", name)
        return model.to(device).eval(), None
    ref = build_reference(ref_dir, args)
    model.load_state_dict(map_reference_state_dict(ref.net.state_dict(), model), strict=True)
    return model.to(device).eval(), ref.to(device).eval()


def bench_one(name: str, frames: int, args, device: torch.device) -> dict:
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    load_before = os.getloadavg()
    model, ref = _models(name, args.reference_dir, device)
    cfg = model.config
    c, v, m = cfg.in_channels, cfg.num_joints, cfg.num_persons
    gen = torch.Generator().manual_seed(frames)
    x = torch.randn(1, c, frames, v, m, generator=gen).to(device)
    x_empty = x.clone()
    x_empty[..., 1] = 0
    params = sum(p.numel() for p in model.parameters())
    row = {"variant": name, "T": frames, "device": str(device), "threads": torch.get_num_threads(), "params": params,
           "params_reference_minus_person_bn": REFERENCE_PARAMS.get(name, 0) - 2 * model.out_channels,
           "gflops": _flops(model, x) / 1e9, "load_before": load_before}
    sides = {"ours": model} if ref is None else {"ours": model, "ref": ref}
    if ref is not None:
        with torch.no_grad():  # untrained weights give logits in the 100s-1000s: compare relative to their size
            pairs = [(ref(a), model(a)) for a in (x, x_empty)]
        row["max_abs_ref_vs_ours"] = max(float((a - b).abs().max()) for a, b in pairs)
        row["max_rel_ref_vs_ours"] = max(float((a - b).abs().max() / a.abs().max().clamp(min=1)) for a, b in pairs)
        if not row["max_rel_ref_vs_ours"] <= PARITY_TOL:
            raise SystemExit(f"{name} T={frames}: reference and ours differ by {row['max_abs_ref_vs_ours']:.3g} "
                             f"(relative {row['max_rel_ref_vs_ours']:.3g} > {PARITY_TOL})")
    with torch.inference_mode():
        fns = {}
        for side, net in sides.items():
            fns[f"{side}_full"] = lambda net=net: net(x)
            fns[f"{side}_empty"] = lambda net=net: net(x_empty)
        lat = _interleaved(fns, args.iters, args.warmup, sync)
        xb = torch.randn(args.batch, c, frames, v, m, generator=gen).to(device)
        tput = _interleaved({s: (lambda net=net: net(xb)) for s, net in sides.items()},
                            max(2, args.iters // 4), 1, sync, args.phase_budget)
    row["attainable_gflops_per_s"] = attainable_gflops(device)
    row["floor_ms"] = row["gflops"] / row["attainable_gflops_per_s"] * 1e3
    row.update(latency_ms_p50=statistics.median(lat["ours_full"]), latency_ms_p99=_pct(lat["ours_full"], 0.99),
               empty_slot_ms_p50=statistics.median(lat["ours_empty"]),
               empty_slot_ms_p99=_pct(lat["ours_empty"], 0.99),
               throughput_windows_per_s=args.batch * 1e3 / statistics.median(tput["ours"]), batch=args.batch,
               iters={"latency": len(lat["ours_full"]), "throughput": len(tput["ours"])})
    if ref is not None:
        row.update(ref_latency_ms_p50=statistics.median(lat["ref_full"]),
                   ref_empty_slot_ms_p50=statistics.median(lat["ref_empty"]),
                   ref_throughput_windows_per_s=args.batch * 1e3 / statistics.median(tput["ref"]))
    if not args.no_train:
        xt = torch.randn(args.train_batch, c, frames, v, m, generator=gen).to(device)
        yt = torch.randint(0, cfg.num_classes, (args.train_batch,), generator=gen).to(device)
        steps = {side: _train_step(net, xt, yt) for side, net in sides.items()}
        if args.compile_train:
            steps["ours_compiled"] = _compiled_train_step(model, xt, yt)
        train = _interleaved(steps, args.train_iters, 1, sync, args.phase_budget)
        for net in sides.values():
            net.eval()
        row.update(train_step_ms_p50=statistics.median(train["ours"]), train_batch=args.train_batch)
        if "ours_compiled" in train:
            row["train_step_compiled_ms_p50"] = statistics.median(train["ours_compiled"])
        row["iters"]["train"] = len(train["ours"])
        if ref is not None:
            row["ref_train_step_ms_p50"] = statistics.median(train["ref"])
    if ref is not None:
        row["reference_ms"], row["reference_source"] = row["ref_latency_ms_p50"], "measured"
        row["speedup"] = {"eval": row["ref_latency_ms_p50"] / row["latency_ms_p50"],
                          "empty_slot": row["ref_empty_slot_ms_p50"] / row["empty_slot_ms_p50"],
                          "throughput": row["throughput_windows_per_s"] / row["ref_throughput_windows_per_s"]}
        if "ref_train_step_ms_p50" in row:
            row["speedup"]["train"] = row["ref_train_step_ms_p50"] / row["train_step_ms_p50"]
            if "train_step_compiled_ms_p50" in row:
                row["speedup"]["train_compiled"] = row["ref_train_step_ms_p50"] / row["train_step_compiled_ms_p50"]
    else:
        row["reference_ms"] = REFERENCE_MS.get((name, frames)) if device.type == "cpu" else None
        row["reference_source"] = "quoted" if row["reference_ms"] else None
    # a ratio only to the reference timed here, in the same loop: one to another machine's figure would measure the
    # machines, not the code (it gave "x ref 0.21" on this 2-core CPU against a quoted 28.7 ms)
    measured = row["reference_source"] == "measured"
    row["speedup_vs_reference"] = row["reference_ms"] / row["latency_ms_p50"] if measured else None
    row["speedup_empty_vs_full"] = row["latency_ms_p50"] / row["empty_slot_ms_p50"]
    row["load_after"] = os.getloadavg()
    return row


def _table(rows: list[dict]) -> str:
    head = (f"{'variant':8} {'T':>4} {'thr':>3} {'dev':>5} {'params':>10} {'ref-pbn':>10} {'GFLOP':>7} {'p50 ms':>8} "
            f"{'p99 ms':>8} {'empty p50':>9} {'x empty':>7} {'win/s':>7} {'train ms':>9} {'ref ms':>7} {'x ref':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        ref = f"{r['reference_ms']:.1f}" + ("q" if r.get("reference_source") == "quoted" else "") \
            if r["reference_ms"] else "-"
        up = f"{r['speedup_vs_reference']:.2f}" if r["speedup_vs_reference"] else "-"
        train = f"{r['train_step_ms_p50']:.1f}" if "train_step_ms_p50" in r else "-"
        lines.append(f"{r['variant']:8} {r['T']:>4} {r['threads']:>3} {r['device'][:5]:>5} {r['params']:>10,} "
                     f"{r['params_reference_minus_person_bn']:>10,} {r['gflops']:>7.2f} {r['latency_ms_p50']:>8.2f} "
                     f"{r['latency_ms_p99']:>8.2f} {r['empty_slot_ms_p50']:>9.2f} {r['speedup_empty_vs_full']:>7.2f} "
                     f"{r['throughput_windows_per_s']:>7.1f} {train:>9} {ref:>7} {up:>6}")
    return "\n".join(lines)


def _side_by_side(rows: list[dict]) -> str:
    """Ours vs the reference, ms (median) and ref/ours speedups, for rows measured with --reference-dir."""
    head = (f"{'variant':8} {'T':>4} {'thr':>3} | {'eval ours':>9} {'ref':>8} {'x':>5} | {'empty ours':>10} {'ref':>8} "
            f"{'x':>5} | {'win/s ours':>10} {'ref':>7} {'x':>5} | {'train ours':>10} {'ref':>8} {'x':>5} | load")
    lines = [head, "-" * len(head)]
    for r in rows:
        if "speedup" not in r:
            continue
        s = r["speedup"]
        train = (f"{r['train_step_ms_p50']:>10.1f} {r['ref_train_step_ms_p50']:>8.1f} {s['train']:>5.2f}"
                 if "train" in s else f"{'-':>10} {'-':>8} {'-':>5}")
        if "train_compiled" in s:
            train += f" | compiled {r['train_step_compiled_ms_p50']:.1f} ms, x {s['train_compiled']:.2f}"
        lines.append(
            f"{r['variant']:8} {r['T']:>4} {r['threads']:>3} | {r['latency_ms_p50']:>9.1f} "
            f"{r['ref_latency_ms_p50']:>8.1f} {s['eval']:>5.2f} | {r['empty_slot_ms_p50']:>10.1f} "
            f"{r['ref_empty_slot_ms_p50']:>8.1f} {s['empty_slot']:>5.2f} | {r['throughput_windows_per_s']:>10.2f} "
            f"{r['ref_throughput_windows_per_s']:>7.2f} {s['throughput']:>5.2f} | {train} | "
            f"{r['load_before'][0]:.2f}->{r['load_after'][0]:.2f}")
    return "\n".join(lines)


def _floor(rows: list[dict]) -> str:
    """How close ours and the reference run to the compute floor (see the module docstring)."""
    head = (f"{'variant':8} {'T':>4} {'thr':>3} | {'GFLOP':>6} {'GFLOP/s':>8} {'floor ms':>8} | {'ours ms':>8} "
            f"{'% floor':>7} | {'ref ms':>8} {'% floor':>7} | {'x ref at floor':>14}")
    lines = [head, "-" * len(head)]
    for r in rows:
        ref = r.get("ref_latency_ms_p50")
        ref_cols = (f"{ref:>8.1f} {100 * r['floor_ms'] / ref:>6.0f}% | {ref / r['floor_ms']:>14.2f}" if ref
                    else f"{'-':>8} {'-':>7} | {'-':>14}")
        lines.append(f"{r['variant']:8} {r['T']:>4} {r['threads']:>3} | {r['gflops']:>6.2f} "
                     f"{r['attainable_gflops_per_s']:>8.1f} {r['floor_ms']:>8.1f} | {r['latency_ms_p50']:>8.1f} "
                     f"{100 * r['floor_ms'] / r['latency_ms_p50']:>6.0f}% | {ref_cols}")
    return "\n".join(lines)


def _check_parity(ref_dir: Path, golden_dir: Path | None) -> list[dict]:
    """Reference vs ours on every golden file; raises SystemExit when they differ by more than PARITY_TOL."""
    from reference_harness import golden_parity

    if golden_dir is None or not golden_dir.is_dir():
        log.warning("no golden folder (%s): the reference/ours parity check is skipped", golden_dir)
        return []
    results = [golden_parity(ref_dir, f) for f in sorted(golden_dir.glob("*_T64.pt"))]
    for r in results:
        print(f"parity {Path(r['file']).name}: |ref - ours| = {r['max_abs_ref_vs_ours']:.2e}, "
              f"|ref - golden| = {r['max_abs_ref_vs_golden']:.2e}, |ours - golden| = {r['max_abs_ours_vs_golden']:.2e}")
        if not r["max_abs_ref_vs_ours"] <= PARITY_TOL:
            raise SystemExit(f"reference and ours disagree on {r['file']} by {r['max_abs_ref_vs_ours']:.3g} "
                             f"(> {PARITY_TOL}): the timings would not compare the same network")
    return results


def _source_stamp() -> dict:
    """What code was timed (with the git HEAD `environment()` records): a hash of the working-tree model/ files
    (others may be editing them)."""
    digest = hashlib.sha256()
    for path in sorted((_REPO / "model").glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return {"model_py_sha256": digest.hexdigest()[:16]}


def _variants(text: str) -> list[str]:
    """An argparse type: comma-separated preset names, each one of PRESETS."""
    names = [t.strip() for t in text.split(",")]
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown preset(s) {', '.join(map(repr, unknown))}; known: "
                                         f"{', '.join(sorted(PRESETS))}")
    return names


def _devices(name: str) -> list[torch.device]:
    """The devices of `--device`: auto is the CPU, plus CUDA when available; a CUDA device torch cannot see is a
    ValueError (not an AssertionError from deep inside torch)."""
    if name == "auto":
        return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device: expected cpu, cuda, cuda:N or auto, got {name!r}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index or 0) >= count:
            raise ValueError(f"--device {name}: torch {torch.__version__} sees {count} CUDA device(s); "
                             "use cpu or auto")
    elif device.type != "cpu":
        raise ValueError(f"--device: expected cpu, cuda, cuda:N or auto, got {name!r}")
    return [device]


def _check_reference_dir(ref_dir: Path | None) -> None:
    """ValueError when --reference-dir is not laid out as the reference's code/ folder (checked before any timing)."""
    if ref_dir is not None and not (ref_dir / "st_gcn" / "net" / "st_gcn.py").is_file():
        raise ValueError(f"--reference-dir {ref_dir}: expected st_gcn/net/st_gcn.py in it (the reference's code/ "
                         "folder of github.com/Chiaraplizz/ST-TR: st_gcn/net/*.py, st_gcn/graph/*.py)")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", type=_variants, default="s-tr,t-tr", help="comma-separated preset names")
    p.add_argument("--frames", type=int_list(1), default="64,300", help="comma-separated window lengths T")
    p.add_argument("--iters", type=at_least(1), default=10,
                   help="timed rounds of the batch-1 latencies (default 10)")
    p.add_argument("--warmup", type=at_least(0), default=2, help="untimed rounds first (default 2)")
    p.add_argument("--batch", type=at_least(1), default=8, help="batch for the throughput measurement")
    p.add_argument("--train-batch", type=at_least(1), default=8, help="batch of the training step (default 8)")
    p.add_argument("--train-iters", type=at_least(1), default=2, help="timed training steps (default 2)")
    p.add_argument("--phase-budget", type=positive_float, default=None, metavar="S",
                   help="cut the timed rounds of the throughput and training phases to about S seconds each "
                        "(at least one round; default: no cut)")
    p.add_argument("--no-train", action="store_true", help="skip the training-step measurement")
    p.add_argument("--compile-train", action="store_true",
                   help="also time our training step under torch.compile (what `sttr train --set compile=true` "
                        "runs; a copy of ours with the same weights, compiled before timing), side by side")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (CPU, plus CUDA when available)")
    p.add_argument("--threads", type=int_list(0), default="0",
                   help="comma-separated torch CPU thread counts, each a full sweep (0: torch's default)")
    p.add_argument("--reference-dir", type=Path, help="folder holding the unmodified reference's st_gcn/ package: "
                                                      "time it side by side with ours")
    p.add_argument("--golden", type=Path, default=_REPO.parent / "shared" / "reference" / "golden",
                   help="golden files for the reference/ours parity check (default ../shared/reference/golden)")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("sttr.model.convert").setLevel(logging.WARNING)
    try:
        return _main(args)
    except USER_ERRORS as exc:  # a missing folder, an unwritable --out, a CUDA device torch cannot see, ...
        return fail("model_speed.py", exc)


def _main(args: argparse.Namespace) -> int:
    devices = _devices(args.device)
    _check_reference_dir(args.reference_dir)
    check_out(args.out)
    parity = _check_parity(args.reference_dir, args.golden) if args.reference_dir else []
    load_start, start, rows = os.getloadavg(), time.perf_counter(), []
    for threads in args.threads:
        if threads:
            torch.set_num_threads(threads)
        for dev in devices:
            for name in args.variants:
                for t in args.frames:
                    rows.append(bench_one(name, t, args, dev))
                    log.info("%s T=%s threads=%d done (%.0f s)", name, t, torch.get_num_threads(),
                             time.perf_counter() - start)
    print(_table(rows))
    print("ref-pbn: the spec's parameter count minus the unused person_bn; x ref: reference p50 / ours p50, "
          "measured side by side (--reference-dir); ref ms ending in q: quoted from another machine's run, for "
          "orientation only (no ratio); x empty: full / empty-second-slot latency")
    if args.reference_dir:
        print()
        print(_side_by_side(rows))
        print("ms are medians of interleaved runs; x = ref / ours (> 1: ours faster); empty: second person slot "
              "all zeros; win/s: batch", args.batch, "eval throughput; train: one SGD step, batch", args.train_batch,
              "; load: 1-min load average before -> after the row")
    print()
    print(_floor(rows))
    print("floor: the window's FLOPs at the GFLOP/s of the network's heaviest op timed alone (batch-1 eval); "
          "% floor: floor / measured; x ref at floor: the reference's time over the floor, the speedup an "
          "implementation running every FLOP at that rate would get")
    if args.out:
        info = {**environment(vars(args)), "torch": torch.__version__,
                "threads": ",".join(map(str, args.threads)), "machine": platform.machine(),
                "processor": platform.processor(), "cpu_count": os.cpu_count(),
                "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
                "wall_s": time.perf_counter() - start, "reference_dir": str(args.reference_dir or ""),
                "parity": parity, **_source_stamp()}
        write_report(args.out, {"env": info, "results": rows})
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
