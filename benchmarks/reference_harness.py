"""Run the unmodified reference ST-TR (GitHub `Chiaraplizz/ST-TR`, folder `code/st_gcn/`) on CPU, for benchmarks.

The reference files are read at run time from a folder given by the user (laid out as the reference's `code/`
folder: `st_gcn/net/*.py`, `st_gcn/graph/*.py`); nothing of the reference lives in this repository. The
reference is used as shipped: only import shims and monkeypatches are applied, never edits.

* `st_gcn` and `st_gcn.graph` are registered as packages when the folder has no `__init__.py` for them, and
  `st_gcn.graph.NTU_RGB_D` / `Kinetics` are bound to the graph classes (the yaml's `graph:` strings).
* `torch.Tensor.cuda(d)` returns the tensor itself for a negative device index (what `x.get_device()` gives for a
  CPU tensor) or a CPU device, so the `.cuda(x.get_device())` calls inside `forward` work on CPU (spec §9.3).
* `print` is silenced inside the reference modules (the forward prints the input shape twice, spec §9.14).
* After construction: every `nn.Dropout` is made out-of-place (the reference's in-place dropout after a ReLU breaks
  backward on current PyTorch, spec §9.2), and adaptive-GCN units get private `PA` / graph tensors as `.cuda()`
  gives them on the authors' GPUs (spec §1.4).
* TSA `split_heads_2d` returns a copy while autograd is recording: the reference scales `q` in place
  (`q *= dkh ** -0.5`) on a view of a `torch.split` output, which current PyTorch refuses under autograd
  (the authors' PyTorch 1.1 allowed it). Inference (no_grad / inference_mode) runs the reference untouched;
  a training step pays three extra copies of q, k, v per TSA unit.

    from reference_harness import build_reference, reference_args
    ref = build_reference("/tmp/stref", reference_args("s-tr"))   # an nn.Module: ref(x) -> logits
"""
from __future__ import annotations

import importlib
import logging
import sys
import types
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

__all__ = ["load_reference", "reference_args", "build_reference", "ReferenceModel", "golden_parity"]
log = logging.getLogger(__name__)

# The reference NTU yaml values (spec §1.9); S-TR and T-TR differ only in where attention goes.
_YAML_ARGS: dict[str, Any] = {
    "num_class": 60, "channel": 3, "window_size": 300, "num_point": 25, "num_person": 2, "mask_learning": True,
    "use_data_bn": True, "only_attention": True, "data_normalization": True, "skip_conn": True, "weight_matrix": 2,
    "only_temporal_attention": True, "bn_flag": True, "attention_3": False, "kernel_temporal": 9,
    "more_channels": False, "double_channel": False, "drop_connect": True, "concat_original": True,
    "all_layers": False, "adjacency": False, "agcn": False, "dv": 0.25, "dk": 0.25, "Nh": 8, "n": 4,
    "dim_block1": 10, "dim_block2": 30, "dim_block3": 75, "relative": False, "graph": "st_gcn.graph.NTU_RGB_D",
    "graph_args": {"labeling_mode": "spatial"}, "visualization": False, "device": "cpu",
}
_VARIANTS: dict[str, dict[str, Any]] = {
    "s-tr": {"attention": True, "tcn_attention": False},
    "t-tr": {"attention": False, "tcn_attention": True},
    "s-tr-agcn": {"attention": True, "tcn_attention": False, "agcn": True},
    "t-tr-agcn": {"attention": False, "tcn_attention": True, "agcn": True},
}
_GRAPHS = {"ntu_rgb_d": "NTU_RGB_D", "kinetics": "Kinetics"}
_loaded: dict[str, Path] = {}


def _quiet(*_args: Any, **_kwargs: Any) -> None:
    """Stands in for `print` inside the reference modules."""


def _patch_cuda() -> None:
    """Let `.cuda(x.get_device())` on a CPU tensor return the tensor (idempotent; GPU calls are unchanged)."""
    if getattr(torch.Tensor.cuda, "_sttr_reference_shim", False):
        return
    original = torch.Tensor.cuda

    def cuda(self: torch.Tensor, device: Any = None, *args: Any, **kwargs: Any) -> torch.Tensor:
        if (isinstance(device, int) and device < 0) or (isinstance(device, torch.device) and device.type == "cpu"):
            return self
        return original(self, device, *args, **kwargs)

    cuda._sttr_reference_shim = True  # type: ignore[attr-defined]
    torch.Tensor.cuda = cuda  # type: ignore[method-assign]


def _patch_tsa_split() -> None:
    """Copy TSA heads while autograd records, so the reference's in-place `q *= ...` is legal (idempotent)."""
    for module_name, class_name in (("st_gcn.net.temporal_transformer", "tcn_unit_attention"),
                                    ("st_gcn.net.temporal_transformer_windowed", "tcn_unit_attention_block")):
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if cls is None or getattr(cls.split_heads_2d, "_sttr_reference_shim", False):
            continue
        original = cls.split_heads_2d

        def split_heads_2d(self: nn.Module, x: torch.Tensor, Nh: int, _original: Any = original) -> torch.Tensor:
            out = _original(self, x, Nh)
            return out.clone() if torch.is_grad_enabled() else out

        split_heads_2d._sttr_reference_shim = True  # type: ignore[attr-defined]
        cls.split_heads_2d = split_heads_2d


def _package(name: str, path: Path) -> None:
    """Register `name` as a package at `path` unless the folder has its own `__init__.py`."""
    if name in sys.modules:
        return
    if (path / "__init__.py").is_file():
        importlib.import_module(name)
        return
    module = types.ModuleType(name)
    module.__path__ = [str(path)]  # type: ignore[attr-defined]
    module.__package__ = name
    sys.modules[name] = module
    if "." in name:
        parent, _, child = name.rpartition(".")
        setattr(sys.modules[parent], child, module)


def load_reference(ref_dir: str | Path) -> types.ModuleType:
    """Import the reference's `st_gcn.net.st_gcn` from `ref_dir` (the folder holding `st_gcn/`), shims applied.

    Raises:
        FileNotFoundError: when `ref_dir/st_gcn/net/st_gcn.py` is missing.
        RuntimeError: when a reference from another folder was already imported in this process.
    """
    root = Path(ref_dir).expanduser().resolve()
    if not (root / "st_gcn" / "net" / "st_gcn.py").is_file():
        raise FileNotFoundError(f"reference folder {root}: expected st_gcn/net/st_gcn.py (the reference's code/ "
                                f"folder layout: st_gcn/net/*.py and st_gcn/graph/*.py)")
    if "st_gcn" in _loaded and _loaded["st_gcn"] != root:
        raise RuntimeError(f"a reference from {_loaded['st_gcn']} is already imported; got {root}")
    _patch_cuda()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))  # the yaml's graph string is resolved with __import__('st_gcn')
    _package("st_gcn", root / "st_gcn")
    _package("st_gcn.graph", root / "st_gcn" / "graph")
    _package("st_gcn.net", root / "st_gcn" / "net")
    graph_pkg = sys.modules["st_gcn.graph"]
    for stem, attr in _GRAPHS.items():
        if (root / "st_gcn" / "graph" / f"{stem}.py").is_file() and not hasattr(graph_pkg, attr):
            setattr(graph_pkg, attr, importlib.import_module(f"st_gcn.graph.{stem}").Graph)
    net = importlib.import_module("st_gcn.net.st_gcn")
    _patch_tsa_split()
    for name, module in list(sys.modules.items()):
        if name == "st_gcn" or name.startswith("st_gcn."):
            module.print = _quiet  # type: ignore[attr-defined]
    _loaded["st_gcn"] = root
    return net


def reference_args(variant: str, **overrides: Any) -> dict[str, Any]:
    """The reference `Model(**kwargs)` for 's-tr', 't-tr', 's-tr-agcn' or 't-tr-agcn' with the NTU yaml values."""
    if variant not in _VARIANTS:
        raise ValueError(f"reference variant: expected one of {sorted(_VARIANTS)}, got {variant!r}")
    return {**_YAML_ARGS, **_VARIANTS[variant], **overrides}


class ReferenceModel(nn.Module):
    """The reference `Model` behind the usual `forward(x)`; its own state-dict keys live under `net`."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, None, None)  # the reference passes (label, name) down and ignores them


def _fix_after_construction(net: nn.Module, agcn_class: type | None) -> None:
    for module in net.modules():
        if isinstance(module, nn.Dropout):
            module.inplace = False
        if agcn_class is not None and isinstance(module, agcn_class):
            module.PA = nn.Parameter(module.PA.detach().clone())  # untied, as after .cuda()
            module.A = module.A.detach().clone()  # the constant 1e-6 graph the GPU runs saw


def build_reference(ref_dir: str | Path, model_args: Mapping[str, Any],
                    state_dict: Mapping[str, torch.Tensor] | None = None) -> ReferenceModel:
    """The reference network built from `model_args` (eval mode), optionally loaded strictly from `state_dict`."""
    module = load_reference(ref_dir)
    net = module.Model(**dict(model_args))
    agcn = getattr(sys.modules.get("st_gcn.net.unit_agcn"), "unit_agcn", None)
    _fix_after_construction(net, agcn)
    if state_dict is not None:
        net.load_state_dict(dict(state_dict), strict=True)
    return ReferenceModel(net).eval()


def golden_parity(ref_dir: str | Path, golden_file: str | Path) -> dict[str, Any]:
    """Max |logit difference| between the reference, our `STTR` and the stored logits of a golden file.

    Both networks get the golden `state_dict` (ours through `load_reference_checkpoint`) and the golden input.
    """
    from sttr.model.convert import load_reference_checkpoint

    golden = torch.load(golden_file, map_location="cpu", weights_only=False)
    ref = build_reference(ref_dir, golden["model_args"], golden["state_dict"])
    ours = load_reference_checkpoint(golden["state_dict"]).eval()
    x = golden["input"].float()
    with torch.no_grad():
        a, b = ref(x), ours(x)
    expected = golden["logits"].float()
    return {"file": str(golden_file), "variant": golden.get("variant"),
            "max_abs_ref_vs_ours": float((a - b).abs().max()),
            "max_abs_ref_vs_golden": float((a - expected).abs().max()),
            "max_abs_ours_vs_golden": float((b - expected).abs().max())}
