"""Parity sweep: the unmodified reference ST-TR (read at run time from --reference-dir, see reference_harness.py)
against sttr's converter + network, variant by variant: every flag combination the reference builds and runs.

    OMP_NUM_THREADS=1 python benchmarks/reference_parity.py --reference-dir /tmp/stref [NAME-SUBSTRING ...]
        [--list] [--sdpa] [--out parity.json]        # ~5 min on one core for all variants

Random reference weights with non-trivial batch-norm statistics, masks and PA; the state dict goes through
`load_reference_checkpoint(sd, **only-what-keys-cannot-tell)`. Logits compared in float32 (criterion: max abs diff
<= 1e-4) and float64 (exposes semantic differences hidden by rounding). Inputs: N=2 random windows, sample 0 with
two persons, sample 1 with an all-zero second person; plus real NTU windows where marked (from the shared data
folder, `$STTR_SHARED_DATA` or ../shared/data; skipped when absent). Variants the reference cannot build or run
report what ours does with the same checkpoint (refuses, naming why, or runs).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

import reference_harness as rh  # noqa: E402
from _common import check_out, environment, write_report  # noqa: E402

from sttr.model.convert import load_reference_checkpoint  # noqa: E402

REF = ""  # set by main() from --reference-dir
SHARED = Path(os.environ.get("STTR_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
TOL = 1e-4
KIN = {"graph": "st_gcn.graph.Kinetics", "num_point": 18, "num_class": 400}
BONES = {"channel": 6, "double_channel": True}

# name: (base variant, reference Model overrides, T, extra)  extra: real=True -> also real NTU windows;
# n=batch; conv=extra converter overrides (beyond the automatically derived untellable ones)
VARIANTS: dict[str, tuple[str, dict, int, dict]] = {
    "s-tr T64": ("s-tr", {}, 64, {"real": True}),
    "t-tr T64": ("t-tr", {}, 64, {"real": True}),
    "s-tr T300": ("s-tr", {}, 300, {"real": True}),
    "t-tr T300": ("t-tr", {}, 300, {"real": True}),
    "s-tr-agcn T64": ("s-tr-agcn", {}, 64, {"real": True}),
    "t-tr-agcn T64": ("t-tr-agcn", {}, 64, {"real": True}),
    "t-tr-agcn T300": ("t-tr-agcn", {}, 300, {"n": 1}),
    "st-gcn (no attention)": ("s-tr", {"attention": False}, 64, {}),
    "st-gcn agcn": ("s-tr-agcn", {"attention": False}, 64, {}),
    "both attentions (ST in one)": ("s-tr", {"tcn_attention": True}, 64, {}),
    "s-tr bones": ("s-tr", BONES, 32, {}),
    "t-tr bones": ("t-tr", BONES, 32, {}),
    "t-tr-agcn bones": ("t-tr-agcn", BONES, 32, {}),
    "s-tr-agcn bones": ("s-tr-agcn", BONES, 32, {}),
    "s-tr kinetics": ("s-tr", KIN, 64, {}),
    "t-tr kinetics": ("t-tr", KIN, 64, {}),
    "t-tr kinetics bones": ("t-tr", {**KIN, **BONES}, 32, {}),
    "t-tr-agcn kinetics": ("t-tr-agcn", KIN, 32, {}),
    "s-tr kinetics data_norm False": ("s-tr", {**KIN, "data_normalization": False}, 32, {}),
    "s-tr relative": ("s-tr", {"relative": True}, 32, {}),
    "s-tr relative kinetics": ("s-tr", {**KIN, "relative": True}, 16, {}),
    "t-tr relative T300": ("t-tr", {"relative": True}, 300, {"n": 1}),
    "s-tr more_channels": ("s-tr", {"more_channels": True}, 32, {}),
    "t-tr more_channels": ("t-tr", {"more_channels": True}, 32, {}),
    "s-tr more_channels n=2": ("s-tr", {"more_channels": True, "n": 2}, 16, {}),
    "t-tr more_channels n=8": ("t-tr", {"more_channels": True, "n": 8}, 16, {}),
    "s-tr more_channels relative": ("s-tr", {"more_channels": True, "relative": True}, 16, {}),
    "t-tr more_channels kinetics": ("t-tr", {**KIN, "more_channels": True}, 16, {}),
    "s-tr all_layers": ("s-tr", {"all_layers": True}, 24, {}),
    "t-tr all_layers (10,30,75)": ("t-tr", {"all_layers": True}, 40, {}),
    "t-tr all_layers dim_block1=8": ("t-tr", {"all_layers": True, "dim_block1": 8}, 32, {}),
    "t-tr all_layers bones dim_block2=16": ("t-tr", {"all_layers": True, "dim_block2": 16, **BONES}, 32, {}),
    "both all_layers dim_block1=4": ("s-tr", {"all_layers": True, "tcn_attention": True, "dim_block1": 4}, 16, {}),
    "t-tr all_layers relative T300": ("t-tr", {"all_layers": True, "relative": True}, 300, {"n": 1}),
    "t-tr all_layers kinetics": ("t-tr", {**KIN, "all_layers": True, "dim_block1": 8}, 16, {}),
    "t-tr all_layers more_channels": ("t-tr", {"all_layers": True, "dim_block1": 8, "more_channels": True}, 16, {}),
    "s-tr only_attention False": ("s-tr", {"only_attention": False}, 32, {}),
    "s-tr only_attention False dv=0.5": ("s-tr", {"only_attention": False, "dv": 0.5}, 16, {}),
    "s-tr-agcn only_attention False": ("s-tr-agcn", {"only_attention": False}, 16, {}),
    "t-tr only_temporal_attention False": ("t-tr", {"only_temporal_attention": False}, 32, {}),
    "t-tr only_temporal False dv=0.5": ("t-tr", {"only_temporal_attention": False, "dv": 0.5}, 16, {}),
    "s-tr concat_original False": ("s-tr", {"concat_original": False}, 32, {}),
    "t-tr concat_original False": ("t-tr", {"concat_original": False}, 32, {}),
    "s-tr data_normalization False": ("s-tr", {"data_normalization": False}, 32, {}),
    "t-tr data_normalization False": ("t-tr", {"data_normalization": False}, 32, {}),
    "s-tr skip_conn False": ("s-tr", {"skip_conn": False}, 32, {}),
    "t-tr skip_conn False": ("t-tr", {"skip_conn": False}, 32, {}),
    "s-tr mask_learning False": ("s-tr", {"mask_learning": False}, 32, {}),
    "t-tr mask_learning False": ("t-tr", {"mask_learning": False}, 32, {}),
    "s-tr Nh=4 dk=0.5": ("s-tr", {"Nh": 4, "dk": 0.5}, 16, {}),
    "t-tr Nh=2 dk=0.125": ("t-tr", {"Nh": 2, "dk": 0.125}, 16, {}),
    "t-tr Nh=16": ("t-tr", {"Nh": 16}, 16, {}),
    "s-tr dk=0.3 (int rounding)": ("s-tr", {"dk": 0.3, "Nh": 2}, 16, {}),
    "s-tr drop_connect/dropout at eval": ("s-tr", {"drop_connect": True, "dropout": 0.5}, 16, {}),
    "t-tr drop_connect False dropout 0": ("t-tr", {"drop_connect": False, "dropout": 0.0}, 16, {}),
    "s-tr temporal_kernel_size=5": ("s-tr", {"temporal_kernel_size": 5}, 16, {}),
    "t-tr temporal_kernel_size=3": ("t-tr", {"temporal_kernel_size": 3}, 16, {}),
    "s-tr kernel_temporal=3 (dead)": ("s-tr", {"kernel_temporal": 3}, 16, {}),
    "s-tr num_person 1": ("s-tr", {"num_person": 1}, 32, {}),
    "t-tr num_person 1": ("t-tr", {"num_person": 1}, 32, {}),
    "s-tr num_person 3": ("s-tr", {"num_person": 3}, 16, {}),
    "s-tr num_class 120": ("s-tr", {"num_class": 120}, 16, {}),
    "t-tr num_class 7": ("t-tr", {"num_class": 7}, 16, {}),
    "s-tr use_data_bn False": ("s-tr", {"use_data_bn": False}, 16, {}),
    "t-tr use_data_bn False": ("t-tr", {"use_data_bn": False}, 16, {}),
    "t-tr use_local_bn": ("t-tr", {"use_local_bn": True}, 16, {}),
    "st-gcn use_local_bn": ("s-tr", {"attention": False, "use_local_bn": True}, 16, {}),
    "s-tr use_local_bn": ("s-tr", {"use_local_bn": True}, 16, {}),
    "st-gcn use_local_bn kinetics": ("s-tr", {**KIN, "attention": False, "use_local_bn": True}, 16, {}),
    "st-gcn-agcn use_local_bn (ignored)": ("s-tr-agcn", {"attention": False, "use_local_bn": True}, 16, {}),
    "st-gcn graph uniform": ("s-tr", {"attention": False, "graph_args": {"labeling_mode": "uniform"}}, 16,
                             {"conv": {"graph_mode": "uniform"}}),
    "st-gcn graph uniform (no graph_mode given)": ("s-tr", {"attention": False,
                                                            "graph_args": {"labeling_mode": "uniform"}}, 16, {}),
    "t-tr graph distance": ("t-tr", {"graph_args": {"labeling_mode": "distance"}}, 16, {}),
    "t-tr graph distance*": ("t-tr", {"graph_args": {"labeling_mode": "distance*"}}, 16,
                             {"conv": {"graph_mode": "distance*"}}),
    "t-tr graph DAD": ("t-tr", {"graph_args": {"labeling_mode": "DAD"}}, 16, {"conv": {"graph_mode": "DAD"}}),
    "t-tr graph DLD kinetics": ("t-tr", {**KIN, "graph_args": {"labeling_mode": "DLD"}}, 16,
                                {"conv": {"graph_mode": "DLD"}}),
    "st-gcn graph FC no mask": ("s-tr", {"attention": False, "mask_learning": False,
                                         "graph_args": {"labeling_mode": "FC"}}, 16,
                                {"conv": {"graph_mode": "fully_connected"}}),
    "t-tr graph uniform local_bn": ("t-tr", {"use_local_bn": True, "graph_args": {"labeling_mode": "uniform"}}, 16,
                                    {"conv": {"graph_mode": "uniform"}}),
    "t-tr-agcn graph uniform (ref: odd)": ("t-tr-agcn", {"graph_args": {"labeling_mode": "uniform"}}, 16,
                                           {"conv": {"graph_mode": "uniform"}}),
    "s-tr graph uniform (ref: fails)": ("s-tr", {"graph_args": {"labeling_mode": "uniform"}}, 16, {}),
    "s-tr adjacency (broken)": ("s-tr", {"adjacency": True}, 16, {}),
    "s-tr double_channel channel 3": ("s-tr", {"double_channel": True}, 16, {}),
    "t-tr channel 6 no double": ("t-tr", {"channel": 6}, 16, {}),
    "both-agcn only_attention False": ("s-tr-agcn", {"tcn_attention": True, "only_attention": False}, 16, {}),
    "s-tr all_layers agcn only_attention False": ("s-tr-agcn", {"all_layers": True, "only_attention": False}, 16, {}),
    "t-tr all_layers concat_original False": ("t-tr", {"all_layers": True, "concat_original": False,
                                                       "dim_block1": 8}, 16, {}),
    "s-tr all_layers relative": ("s-tr", {"all_layers": True, "relative": True}, 8, {}),
    "t-tr relative kinetics T300": ("t-tr", {**KIN, "relative": True}, 300, {"n": 1}),
    "t-tr relative more_channels T300": ("t-tr", {"relative": True, "more_channels": True}, 300, {"n": 1}),
    "s-tr T63 (odd)": ("s-tr", {}, 63, {}),
    "s-tr T1": ("s-tr", {}, 1, {"cal_t": 16}),
    "t-tr kinetics T62": ("t-tr", {**KIN}, 62, {}),
    "t-tr kinetics T63": ("t-tr", {**KIN}, 63, {}),
    "t-tr T62 (ref: T % 4)": ("t-tr", {}, 62, {"cal_t": 64}),
    "s-tr 4 samples (slot0 empty, all empty)": ("s-tr", {}, 16, {"n": 4}),
    "t-tr-agcn 4 samples (slot0 empty, all empty)": ("t-tr-agcn", {}, 16, {"n": 4}),
    "t-tr all_layers T36 (ref: blocks)": ("t-tr", {"all_layers": True}, 36, {"cal_t": 40}),
    "t-tr relative T64 (ref: frames)": ("t-tr", {"relative": True}, 64, {"cal_t": 300}),
    "t-tr relative bones (ref: 512)": ("t-tr", {"relative": True, **BONES}, 300, {"n": 1}),
    "t-tr skip False only_temporal False": ("t-tr", {"skip_conn": False, "only_temporal_attention": False}, 16, {}),
    "t-tr multiscale (broken)": ("t-tr", {"multiscale": True}, 16, {}),
    "t-tr more_channels Nh=4 n=2": ("t-tr", {"more_channels": True, "Nh": 4, "n": 2}, 16, {}),
    "s-tr more_channels Nh=16 n=8": ("s-tr", {"more_channels": True, "Nh": 16, "n": 8}, 16, {}),
    "s-tr more_channels relative Nh=4 n=2": ("s-tr", {"more_channels": True, "relative": True, "Nh": 4, "n": 2}, 16,
                                             {}),
    "s-tr relative Nh=4 (heads from keys)": ("s-tr", {"relative": True, "Nh": 4}, 16, {"no_heads": True}),
    "t-tr skip_conn False (inferred)": ("t-tr", {"skip_conn": False}, 16, {"no_skip": True}),
}


def untellable(args: dict) -> dict:
    """Converter overrides for what the reference keys cannot tell (as a user would give them)."""
    out = {"num_heads": args["Nh"], "dropout": float(args.get("dropout", 0.5)), "drop_connect": args["drop_connect"],
           "attention_skip": args["skip_conn"]}  # use_data_bn: inferred (an unused data_bn is never updated)
    if args["all_layers"]:
        out["window_blocks"] = (args["dim_block1"], args["dim_block2"], args["dim_block3"])
    return out


def randomize(net: torch.nn.Module, args: dict, seed: int) -> None:
    """Non-trivial weights: BN affine + running stats, masks, PA, conv biases; untouched SSA data_bn when unused."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, mod in net.named_modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                unused_ssa_bn = name.endswith("gcn1.data_bn") and not args["data_normalization"]
                unused = unused_ssa_bn or name == "person_bn" or (name == "data_bn" and not args["use_data_bn"])
                if unused:
                    continue  # never updated in training: left as initialised
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
                mod.running_mean.uniform_(-0.3, 0.3)
                mod.running_var.uniform_(0.5, 1.5)
                mod.num_batches_tracked.fill_(1000)
        for name, p in net.named_parameters():
            if name.endswith(".mask") or name == "mask":
                p.uniform_(0.5, 1.5)
            elif name.endswith(".PA"):
                p.normal_(0.0, 0.05)
            elif name.endswith(".bias") and p.dim() == 1 and float(p.abs().max()) == 0.0:
                p.uniform_(-0.1, 0.1)


def calibrate(net: torch.nn.Module, x: torch.Tensor) -> None:
    """Running statistics from one pass over x (batch-norms alone in training mode), so that activations stay at a
    realistic scale through the depth while eval-mode BN is not the identity; unused BNs stay as initialised."""
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    net.eval()
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    with torch.no_grad():
        net(x, None, None)
    with torch.no_grad():
        for bn in bns:
            bn.momentum = 0.1
            if int(bn.num_batches_tracked):  # channels all-zero in the pass (after a ReLU) would divide by ~eps
                bn.running_var.clamp_(min=0.05).mul_(torch.empty_like(bn.running_var).uniform_(1.0, 1.3))
                bn.num_batches_tracked.fill_(1000)
    net.eval()


def random_input(n: int, c: int, t: int, v: int, m: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, t, v, m, generator=g) * 0.5
    if n > 1 and m > 1:
        x[1, :, :, :, 1:] = 0  # sample 1: absent second person(s)
    if n > 2 and m > 1:
        x[2, :, :, :, 0] = 0  # sample 2: absent first person
    if n > 3:
        x[3] = 0  # sample 3: nobody
    return x


def real_windows(t: int, channels: int = 3) -> torch.Tensor | None:
    """Two real NTU windows (pre-normalised, loop-padded, first t frames): one two-person, one one-person."""
    try:
        from sttr.model.preprocess import pre_normalize
        from sttr.training.gendata.bodies import select_bodies
        from sttr.training.readers.ntu import read_skeleton
    except Exception:  # noqa: BLE001
        return None
    out = []
    for name in ("S001C001P001R001A050", "S001C001P001R001A001"):  # A050 (punch/slap): two persons
        path = SHARED / "ntu60" / f"{name}.skeleton"
        if not path.is_file():
            return None
        sk = read_skeleton(path)
        bodies = select_bodies(sk.joints, 2, 4)  # (F, M, V, C)
        w = np.ascontiguousarray(bodies.transpose(3, 0, 2, 1)).astype(np.float32)  # (C, F, V, M)
        w300 = np.zeros((3, 300, 25, 2), np.float32)
        f = min(300, w.shape[1])
        w300[:, :f] = w[:, :f]
        w300 = pre_normalize(w300[None], "ntu25")[0]
        out.append(w300[:, :t])
    x = torch.from_numpy(np.stack(out)).float()
    if channels == 6:
        x = torch.cat([x, x * 0.5], 1)
    return x


def to_double(ref: torch.nn.Module, dtype: torch.dtype = torch.float64) -> torch.nn.Module:
    """The reference in float64 (or back in float32), its plain-attribute graphs (unit_gcn.A, SSA incidence)
    included."""
    ref.to(dtype)
    for mod in ref.modules():
        for attr in ("A", "incidence"):
            val = mod.__dict__.get(attr)
            if isinstance(val, torch.Tensor) and not isinstance(val, torch.nn.Parameter):
                setattr(mod, attr, val.to(dtype))
    return ref


def capture(module_pairs, run):
    """Outputs of named modules during run()."""
    got, hooks = {}, []
    for key, mod in module_pairs:
        if mod is None:
            continue
        hooks.append(mod.register_forward_hook(lambda m, i, o, key=key: got.__setitem__(key, o.detach().clone())))
    try:
        run()
    finally:
        for h in hooks:
            h.remove()
    return got


def locate(ref, ours, x) -> list[str]:
    """Per-layer max abs diff (first differing layers), both run plainly in float64."""
    net = ref.net
    pairs_ref = [("stem.gcn", getattr(net, "gcn0", None)), ("stem.tcn", getattr(net, "tcn0", None))]
    pairs_ref += [(f"unit{i}", b) for i, b in enumerate(net.backbone)]
    pairs_ours = [("stem.gcn", ours.stem_gcn), ("stem.tcn", ours.stem_tcn)]
    pairs_ours += [(f"unit{i}", b) for i, b in enumerate(ours.blocks)]
    pairs_ref += [(f"unit{i}.gcn", b.gcn1) for i, b in enumerate(net.backbone)]
    pairs_ours += [(f"unit{i}.gcn", b.gcn) for i, b in enumerate(ours.blocks)]
    with torch.no_grad():
        a = capture(pairs_ref, lambda: ref(x))
    with torch.enable_grad():  # the plain path (no all-zero-person shortcut)
        b = capture(pairs_ours, lambda: ours(x))
    lines = []
    for key in a:
        if key in b:
            if a[key].shape != b[key].shape:
                lines.append(f"{key}: shapes {tuple(a[key].shape)} vs {tuple(b[key].shape)}")
            else:
                lines.append(f"{key}: {float((a[key] - b[key]).abs().max()):.3e}")
    return lines


def run_variant(name: str, spec, seed: int = 0) -> dict:
    base, over, t, extra = spec
    args = rh.reference_args(base, **over)
    res = {"variant": name, "T": t}
    try:
        ref = rh.build_reference(REF, args)
    except Exception as err:  # noqa: BLE001
        res["status"] = f"reference fails to build: {type(err).__name__}: {err}"[:300]
        return res
    randomize(ref.net, args, seed)
    n = extra.get("n", 2)
    c, v, m = args["channel"], args["num_point"], args["num_person"]
    x = random_input(n, c, t, v, m, seed + 1)
    try:
        calibrate(ref.net, random_input(2, c, extra.get("cal_t", t), v, m, seed + 2))
    except Exception:  # noqa: BLE001  (the run below reports it)
        pass
    ref.eval()
    sd = {k: v.clone() for k, v in ref.net.state_dict().items()}
    try:
        with torch.no_grad():
            ref_logits = ref(x)
        if not torch.isfinite(ref_logits).all():
            raise RuntimeError("non-finite reference logits")
    except Exception as err:  # noqa: BLE001
        res["status"] = f"reference fails to run: {type(err).__name__}: {str(err)[:120]}"
        try:  # what ours does with that checkpoint at this T
            ours = load_reference_checkpoint(sd, **untellable(args), **extra.get("conv", {}))
            with torch.no_grad():
                ours(x)
            res["status"] += " || ours: runs"
        except Exception as err2:  # noqa: BLE001
            res["status"] += f" || ours refuses: {type(err2).__name__}: {str(err2)[:300]}"
        return res
    try:
        given = untellable(args)
        if extra.get("no_heads"):
            given.pop("num_heads")
        if extra.get("no_skip"):
            given.pop("attention_skip")
        ours = load_reference_checkpoint(sd, **given, **extra.get("conv", {}))
    except Exception as err:  # noqa: BLE001
        res["status"] = f"ours refuses: {type(err).__name__}: {str(err)[:400]}"
        return res
    try:
        with torch.no_grad():
            our_logits = ours(x)
        res["max_abs_f32"] = float((ref_logits - our_logits).abs().max())
        res["logit_scale"] = float(ref_logits.abs().max())
        ref64, ours64 = to_double(ref), ours.double()
        try:
            with torch.no_grad():
                res["max_abs_f64"] = float((ref64(x.double()) - ours64(x.double())).abs().max())
        except RuntimeError as err:  # gcn_attention casts its graph to float32 (`partition.float()`)
            res["f64_note"] = f"reference cannot run in float64: {str(err)[:80]}"
            to_double(ref, torch.float32), ours.float()
        if extra.get("real") and c in (3, 6) and v == 25 and m == 2:
            xr = real_windows(t, c)
            if xr is not None:
                to_double(ref, torch.float32), ours.float()
                with torch.no_grad():
                    res["max_abs_real_f32"] = float((ref(xr) - ours(xr)).abs().max())
                if "f64_note" not in res:
                    ref64, ours64 = to_double(ref), ours.double()
                    with torch.no_grad():
                        res["max_abs_real_f64"] = float((ref64(xr.double()) - ours64(xr.double())).abs().max())
        worst = max(res.get("max_abs_f32", 0), res.get("max_abs_real_f32", 0))
        res["status"] = "ok" if worst <= TOL else "MISMATCH"
        if "f64_note" not in res and (res["status"] != "ok" or res["max_abs_f64"] > 1e-9):
            res["layers"] = locate(to_double(ref), ours.double(), x.double())
        elif res["status"] != "ok":
            res["layers"] = locate(to_double(ref, torch.float32), ours.float(), x)
    except Exception as err:  # noqa: BLE001
        res["status"] = f"ours fails to run: {type(err).__name__}: {str(err)[:300]}"
        res["trace"] = traceback.format_exc()[-800:]
    return res


def file_forms() -> list[dict]:
    """State-dict file forms: plain, module.-prefixed, {'state_dict': ...}, epochN.ckpt (module. + optimizer)."""
    args = rh.reference_args("t-tr")
    ref = rh.build_reference(REF, args)
    randomize(ref.net, args, 5)
    x = random_input(2, 3, 16, 25, 2, 6)
    calibrate(ref.net, random_input(2, 3, 16, 25, 2, 7))
    sd = ref.net.state_dict()
    with torch.no_grad():
        expected = ref(x)
    opt = torch.optim.SGD(ref.net.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    forms = {
        "epoch1_model.pt (plain)": sd,
        "module.-prefixed": {f"module.{k}": v for k, v in sd.items()},
        "{'state_dict': ...}": {"state_dict": sd},
        "epochN.ckpt": {"epoch": 3, "best_epoch": 2, "best_epoch_score": 0.5,
                        "model_state_dict": {f"module.{k}": v for k, v in sd.items()},
                        "optimizer_state_dict": opt.state_dict()},
    }
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, obj in forms.items():
            path = os.path.join(tmp, "f.pt")
            torch.save(obj, path)
            row = {"variant": f"file form: {label}", "T": 16}
            try:
                ours = load_reference_checkpoint(path, **untellable(args))
                with torch.no_grad():
                    row["max_abs_f32"] = float((ours(x) - expected).abs().max())
                row["status"] = "ok" if row["max_abs_f32"] <= TOL else "MISMATCH"
            except Exception as err:  # noqa: BLE001
                row["status"] = f"ours refuses: {type(err).__name__}: {str(err)[:300]}"
            out.append(row)
    return out


def force_sdpa_branch() -> None:
    """--sdpa: run the CUDA-only branch of `attend` (F.scaled_dot_product_attention with the relative bias as
    attn_mask) on CPU, to check its semantics where no GPU is at hand."""
    import torch.nn.functional as F
    from sttr.model import layers, spatial_attention, temporal_attention

    original = layers.attend

    def attend(q, k, v, scale, bias=None, drop_connect=False, need_weights=False):
        if not drop_connect and not need_weights:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale), None
        return original(q, k, v, scale, bias, drop_connect, need_weights)

    spatial_attention.attend = temporal_attention.attend = attend


def main(argv: list[str] | None = None) -> int:
    global REF
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", help="run only the variants whose name contains one of these")
    p.add_argument("--reference-dir", help="folder holding the unmodified reference's st_gcn/ package")
    p.add_argument("--list", action="store_true", help="list the variants and exit")
    p.add_argument("--sdpa", action="store_true", help="run the CUDA-only attention branch on the CPU too")
    p.add_argument("--out", default="reference_parity.json", help="JSON of every row (default %(default)s)")
    args = p.parse_args(argv)
    if args.list:
        print("\n".join(VARIANTS))
        return 0
    if not args.reference_dir or not (Path(args.reference_dir) / "st_gcn").is_dir():
        print(f"reference_parity: --reference-dir must name a folder holding the reference's st_gcn/ package "
              f"(got {args.reference_dir!r})", file=sys.stderr)
        return 2
    try:
        check_out(args.out)
    except ValueError as err:
        print(f"reference_parity: {err}", file=sys.stderr)
        return 2
    REF = args.reference_dir
    if args.sdpa:
        force_sdpa_branch()
    names = args.names
    chosen = [k for k in VARIANTS if not names or any(s in k for s in names)]
    results = []
    for k in chosen:
        t0 = time.time()
        r = run_variant(k, VARIANTS[k])
        r["seconds"] = round(time.time() - t0, 1)
        results.append(r)
        print(json.dumps(r), flush=True)
    if not names or "file" in names:
        for r in file_forms():
            results.append(r)
            print(json.dumps(r), flush=True)
    print("\n| variant | T | f32 | f64 | real f32 | status |")
    print("|---|---|---|---|---|---|")
    for r in results:
        f = lambda key: f"{r[key]:.1e}" if key in r else "-"  # noqa: E731
        print(f"| {r['variant']} | {r['T']} | {f('max_abs_f32')} | {f('max_abs_f64')} | {f('max_abs_real_f32')} | "
              f"{r['status'][:160]} |")
    bad = [r["variant"] for r in results if r["status"] == "MISMATCH" or r["status"].startswith("ours fails")]
    write_report(args.out, {**environment({"reference_dir": REF, "names": names, "sdpa": args.sdpa,
                                           "tolerance": TOL}), "rows": results, "mismatches": bad})
    print(f"\n{len(results)} rows, {len(bad)} mismatches{': ' + ', '.join(bad) if bad else ''}; wrote {args.out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
