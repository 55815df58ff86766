"""Load checkpoints of the reference ST-TR (Chiaraplizz/ST-TR) into `STTR`, strictly.

Accepted: the authors' released `*.pt` and `epochN_model.pt` (plain state dicts) and `epochN.ckpt`
(a dict whose `model_state_dict` carries DataParallel `module.` prefixes). The variant is inferred from the
keys and shapes (spec Appendix A); what the keys cannot tell is taken from `overrides` or defaults to the
reference yaml values (`REFERENCE_DEFAULTS`). Every reference key must be used and every parameter and
buffer of ours must be set, or a ValueError names the offending keys. The reference's own key names live
only in this file.
"""
from __future__ import annotations

import logging
import re
import typing
from pathlib import Path
from typing import Any, Mapping

import torch

from .config import STTRConfig
from .config_values import check_value
from .spatial_attention import SpatialAttention
from .sttr import STTR
from .temporal_attention import TemporalAttention
from .torch_files import load_torch_file

__all__ = ["load_reference_checkpoint", "infer_reference_config", "map_reference_state_dict", "check_overrides",
           "REFERENCE_DEFAULTS"]
log = logging.getLogger(__name__)

# What the keys cannot tell, as in the reference NTU yaml (spec §1.9). `agcn_graph='constant'` reproduces the
# graph the released -agcn models were trained with (spec §1.4). `input_norm` (use_data_bn) is read from the model
# data_bn's statistics (never updated: off); `graph_mode` from the number of graph partitions, except among the
# one-partition modes, which need an override.
REFERENCE_DEFAULTS: dict[str, Any] = {
    "num_heads": 8, "dropout": 0.5, "drop_connect": True, "input_norm": True, "attention_skip": True,  # skip_conn:
    # the reference builds the TSA `down` whether or not skip_conn is on, so no key tells it
    "window_blocks": (10, 30, 75), "agcn_graph": "constant", "more_channels_divisor": 4,
}
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def read_reference_file(path: str | Path, *, trust: bool = False) -> Any:
    """`torch.load` a reference checkpoint file without running code from it (see `torch_files`).

    `trust=True` loads it with `weights_only=False`, which can run arbitrary code: only for files from a source you
    trust, when the safe load refuses something else the file holds (the error names it).
    """
    try:
        return load_torch_file(path, what="reference checkpoint", trust=trust,
                               trust_hint="; if you trust the file, load it with trust (sttr convert --trust-pickle), "
                                          "which runs its pickled code")
    except ValueError as err:
        if "not a readable reference checkpoint" in str(err) and _names_sttr_format(path):
            # our own checkpoint cut short: load_model_source falls back to this reader when it cannot read one
            raise ValueError(str(err).replace("not a readable reference checkpoint",
                                              "not a readable sttr checkpoint")) from None
        raise


def _names_sttr_format(path: str | Path) -> bool:
    """True when the file's first bytes hold the sttr checkpoint format tag (torch.save stores the pickle first)."""
    from .checkpoint import FORMAT

    with open(path, "rb") as f:
        return FORMAT.encode() in f.read(1 << 16)


def _read(source: str | Path | Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """A plain state dict with `module.` prefixes stripped, from a path or a loaded object."""
    obj: Any = read_reference_file(source) if isinstance(source, (str, Path)) else source
    where = f"{source}: " if isinstance(source, (str, Path)) else ""
    fmt = obj.get("format") if isinstance(obj, Mapping) else None  # before unwrapping: ours hold a `state_dict`
    if isinstance(fmt, str) and fmt.startswith("sttr.checkpoint"):
        raise ValueError(f"{where}already an sttr checkpoint, not a reference ST-TR one: use it as it is")
    if isinstance(fmt, str) and fmt.startswith("sttr.train_state"):
        raise ValueError(f"{where}a training state (what `sttr train --resume` continues from), not a model "
                         "checkpoint; use the run's best.pt")
    for wrapper in ("model_state_dict", "state_dict"):  # epochN.ckpt; other tools' {'state_dict': ...} files
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{where}expected a reference ST-TR state dict (name -> tensor) or an epochN.ckpt dict with "
                         "'model_state_dict'")
    return {re.sub(r"^(module\.)+", "", k): v for k, v in obj.items()}


def _units(sd: Mapping[str, torch.Tensor]) -> int:
    ids = {int(m.group(1)) for k in sd if (m := re.match(r"backbone\.(\d+)\.", k))}
    return max(ids) + 1 if ids else 0


def _first_layer(sd: Mapping[str, torch.Tensor], all_layers: bool) -> tuple[int, int]:
    """(input channels C, first-stage width) from the stem (or the first unit of an all-layers model)."""
    first = "backbone.0.gcn1" if all_layers else "gcn0"
    for key in (f"{first}.conv_list.0.weight", f"{first}.conv_d.0.weight"):
        if key in sd:
            return int(sd[key].shape[1]), int(sd[key].shape[0])
    key = f"{first}.attention_conv.qkv_conv.weight"
    if key in sd:
        return int(sd[key].shape[1]), int(sd[f"{first}.bn.weight"].numel())
    raise ValueError(f"cannot find the first graph layer ({first}.conv_list / conv_d / attention_conv) "
                     "in the state dict")


def infer_reference_config(state_dict: Mapping[str, torch.Tensor], **overrides: Any) -> STTRConfig:
    """The `STTRConfig` of a reference state dict (prefixes already stripped), plus overrides."""
    sd = state_dict
    overrides = check_overrides(overrides)
    has = lambda pat: any(re.search(pat, k) for k in sd)  # noqa: E731
    if "fcn.weight" not in sd or "data_bn.weight" not in sd:
        raise ValueError("not a reference ST-TR state dict: 'fcn.weight' or 'data_bn.weight' is missing")
    all_layers = not has(r"^gcn0\.")
    n_units = _units(sd)
    if n_units != (10 if all_layers else 9):
        raise ValueError(f"expected {10 if all_layers else 9} backbone units, found {n_units} (a custom "
                         "backbone_config is not supported)")
    spatial, temporal = has(r"\.gcn1\.attention_conv\."), has(r"\.tcn1\.qkv_conv\.")
    agcn = has(r"(^gcn0|\.gcn1)\.PA$")
    _refuse_unsupported(sd)
    c, w1 = _first_layer(sd, all_layers)
    double = w1 == 128
    base = 64 if w1 in (64, 128) else w1
    square = next((v for k, v in sd.items() if re.search(r"(\.mask|\.PA)$", k) and v.dim() == 3), None)
    v_joints = int(square.shape[-1]) if square is not None else int(overrides.get("num_joints", 25))
    m_persons = sd["data_bn.weight"].numel() // (v_joints * c)
    cfg: dict[str, Any] = dict(REFERENCE_DEFAULTS)
    cfg.update(num_classes=sd["fcn.weight"].shape[0], in_channels=c, num_joints=v_joints, num_persons=m_persons,
               layout={25: "ntu25", 18: "openpose18"}.get(v_joints, "ntu25"),
               attention={(False, False): "none", (True, False): "spatial", (False, True): "temporal",
                          (True, True): "both"}[(spatial, temporal)],
               attention_in_all_layers=all_layers, graph_conv="agcn" if agcn else "gcn", base_channels=base,
               double_channel=double, relative=has(r"key_rel"),
               # without a partition GCN the mask flag is untellable: keep the yaml's True
               mask_learning=has(r"\.mask$") or not has(r"\.conv_list\.0\.weight$"))
    down3 = sd.get("backbone.3.down1.conv.weight")
    cfg["concat_original"] = down3 is not None and down3.shape[1] == w1 + c
    tk = next((v.shape[2] for k, v in sd.items() if re.match(r"backbone\.\d+\.tcn1\.conv\.weight$", k)), 9)
    cfg["temporal_kernel_size"] = int(tk)
    _infer_attention(sd, cfg, all_layers, overrides.get("num_heads"))
    if not agcn:
        cfg["agcn_graph"] = "skeleton"  # irrelevant without adaptive GCNs; keep the intended default
    # use_data_bn off: in a trained model the model-level BN was then never updated
    cfg["input_norm"] = not (_trained(sd) and _untouched(sd, "data_bn"))
    _infer_graph(sd, cfg, overrides)
    cfg.update(overrides)
    return STTRConfig.from_dict(cfg)


def _trained(sd: Mapping[str, torch.Tensor]) -> bool:
    """True when some batch-norm was updated in training: only then does a never-updated one mean an unused one
    (in a checkpoint saved before training every BN is untouched)."""
    return any(k.endswith("num_batches_tracked") and int(v) > 0 for k, v in sd.items())


def _untouched(sd: Mapping[str, torch.Tensor], prefix: str) -> bool:
    """True when the batch-norm `prefix` was never updated in training (so the reference never ran it)."""
    count, mean, var = (sd.get(f"{prefix}.{p}") for p in ("num_batches_tracked", "running_mean", "running_var"))
    if count is None or mean is None or var is None:
        return False
    return int(count) == 0 and bool((mean == 0).all()) and bool((var == 1).all())


def _refuse_unsupported(sd: Mapping[str, torch.Tensor]) -> None:
    """ValueError for reference switches that are broken there and not offered here."""
    if any(re.search(r"\.gcn1\.attention_conv\.mask$", k) for k in sd):
        raise ValueError("this reference checkpoint was built with `adjacency: True` (SSA logits plus the masked "
                         "graph), which sttr does not support: the reference multiplies its stored graph by the mask "
                         "in place on every forward, so its outputs change from call to call and its training fails "
                         "at the second step (spec §9.12); retrain with adjacency: False")


_UNIT_GCN_PREFIX = r"^(gcn0|backbone\.\d+\.gcn1)"
_PARTITIONS = {"spatial": 3, "distance": 2}  # graph partitions K of a graph_mode; 1 for the others


def _infer_graph(sd: Mapping[str, torch.Tensor], cfg: dict[str, Any], overrides: Mapping[str, Any]) -> None:
    """graph_mode from the number of graph partitions K (3 spatial, 2 distance, 1: an override must tell which) and
    gcn_local_bn from the size of the partition GCNs' batch-norm (Cout * V with `use_local_bn`)."""
    v = cfg["num_joints"]
    pa = next((t for k, t in sd.items() if re.search(rf"{_UNIT_GCN_PREFIX}\.PA$", k)), None)
    if pa is not None and tuple(pa.shape) != (3, v, v):
        raise ValueError(f"the adaptive GCNs' PA has shape {tuple(pa.shape)}, not (3, {v}, {v}): the reference builds "
                         "-agcn models correctly only with graph_args labeling_mode 'spatial' (with other modes it "
                         "adds rows of the graph to every row of the attention, or fails); not supported")
    parts: dict[str, set[int]] = {}
    for key in sd:
        if m := re.match(rf"{_UNIT_GCN_PREFIX}\.(?:conv_list|g_convolutions)\.(\d+)\.weight$", key):
            parts.setdefault(m.group(1), set()).add(int(m.group(2)))
    counts = {len(p) for p in parts.values()}
    if len(counts) > 1:
        raise ValueError(f"graph convolutions with different numbers of partitions {sorted(counts)}: not an ST-TR "
                         "reference checkpoint")
    k = counts.pop() if counts else None
    given = overrides.get("graph_mode")
    single = "uniform, distance*, DAD, DLD or fully_connected (the reference's 'FC')"
    if k is not None and given is not None and _PARTITIONS.get(given, 1) != k:
        raise ValueError(f"override graph_mode={given!r} has {_PARTITIONS.get(given, 1)} graph partition(s), "
                         f"but the checkpoint's graph convolutions have {k}")
    if k == 1 and given is None:
        raise ValueError("the checkpoint's graph convolutions have 1 graph partition (a graph_args labeling_mode other "
                         f"than 'spatial'); give graph_mode= the one it was trained with: {single}")
    cfg["graph_mode"] = {3: "spatial", 2: "distance"}.get(k or 3) if given is None else given
    conv = next(((m.group(1), t) for key, t in sd.items()
                 if (m := re.match(rf"{_UNIT_GCN_PREFIX}\.conv_list\.0\.weight$", key))), None)
    if conv is not None:
        bn = sd.get(f"{conv[0]}.bn.weight")
        cfg["gcn_local_bn"] = bn is not None and bn.numel() == conv[1].shape[0] * v != conv[1].shape[0]


def check_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`overrides` type-checked against the STTRConfig fields (ints widen to floats, `1e-3` reads as a float);
    ValueError naming the key and the type expected, or the unknown keys and the known ones."""
    hints = typing.get_type_hints(STTRConfig)
    unknown = sorted(set(overrides) - set(hints))
    if unknown:
        raise ValueError(f"unknown override(s) {unknown}; expected STTRConfig fields: {', '.join(sorted(hints))}")
    return {key: check_value(value, hints[key], key, "override {key}") for key, value in overrides.items()}


def _factor(dim: int, width: int) -> float:
    """A fraction f with int(width * f) == dim despite float rounding."""
    f = dim / width
    return f if int(width * f) == dim else (dim + 1e-6) / width


def _heads_from_relative(sd: Mapping[str, torch.Tensor]) -> int | None:
    """Nh from a relative-position table: its width is the per-head key width, so Nh = key channels // width
    (with more_channels too: key channels dk * Nh / n, width dk / n)."""
    for k, table in sd.items():
        m = re.match(r"(backbone\.\d+\.(?:gcn1\.attention_conv|tcn1))\.key_rel$", k)
        if m and f"{m.group(1)}.qkv_conv.weight" in sd:
            qkv, proj = sd[f"{m.group(1)}.qkv_conv.weight"], sd[f"{m.group(1)}.attn_out.weight"]
            key_ch = (qkv.shape[0] - proj.shape[1]) // 2
            if table.shape[-1] and key_ch % table.shape[-1] == 0:
                return key_ch // table.shape[-1]
    return None


def _infer_attention(sd: Mapping[str, torch.Tensor], cfg: dict[str, Any], all_layers: bool,
                     heads: int | None = None) -> None:
    """Heads (given, or from a relative table), key/value factors, only-attention flags, more_channels, data
    normalisation, skip and relative length."""
    heads = heads or _heads_from_relative(sd) or cfg["num_heads"]
    cfg["num_heads"] = heads
    for kind, prefix in (("spatial", "gcn1.attention_conv"), ("temporal", "tcn1")):
        pattern = rf"backbone\.(\d+)\.{prefix}\.qkv_conv\.weight$"
        unit = next((int(m.group(1)) for k in sd if (m := re.match(pattern, k))), None)
        if unit is None:
            continue
        qkv, proj = sd[f"backbone.{unit}.{prefix}.qkv_conv.weight"], sd[f"backbone.{unit}.{prefix}.attn_out.weight"]
        cout = sd[f"backbone.{unit}.{'gcn1' if kind == 'spatial' else 'tcn1'}.bn.weight"].numel()
        value_dim = proj.shape[0]
        more = proj.shape[1] != value_dim
        divisor = heads * value_dim // proj.shape[1] if more else cfg["more_channels_divisor"]
        key_ch = (qkv.shape[0] - proj.shape[1]) // 2
        key_dim = key_ch * divisor // heads if more else key_ch
        cfg["more_channels"], cfg["more_channels_divisor"] = more, divisor
        cfg["key_factor"] = _factor(key_dim, cout)
        only = value_dim == cout
        if not only:
            cfg["value_factor"] = _factor(value_dim, cout)
        cfg["spatial_only_attention" if kind == "spatial" else "temporal_only_attention"] = only
    trained = _trained(sd)
    if cfg["attention"] in ("temporal", "both"):
        cfg["attention_input_norm"] = any(re.search(r"\.tcn1\.data_bn\.", k) for k in sd)
        # skip_conn off: the TSA's strided `down` (built anyway) was never run, so never updated
        downs = sorted({m.group(1) for k in sd if (m := re.match(r"(backbone\.\d+\.tcn1\.down\.bn)\.", k))})
        if trained and downs and all(_untouched(sd, d) for d in downs):
            cfg["attention_skip"] = False
        rel = sorted((int(m.group(1)), v.shape[0]) for k, v in sd.items()
                     if (m := re.match(r"backbone\.(\d+)\.tcn1\.key_rel$", k)))
        stage_of = lambda i: 0 if i < (4 if all_layers else 3) else (1 if i < (7 if all_layers else 6) else 2)  # noqa
        windowed = [(i, n) for i, n in rel if all_layers and stage_of(i) == 0]
        plain = [(i, n) for i, n in rel if not (all_layers and stage_of(i) == 0)]
        if plain:
            i, n = plain[0]
            cfg["relative_frames"] = (n + 1) // 2 * 2 ** stage_of(i)
        if windowed:
            blocks = list(cfg["window_blocks"])
            blocks[1 if cfg["double_channel"] else 0] = (windowed[0][1] + 1) // 2
            cfg["window_blocks"] = tuple(blocks)
    elif cfg["attention"] == "spatial":
        bns = sorted({m.group(1) for k in sd if (m := re.match(r"(backbone\.\d+\.gcn1\.data_bn)\.", k))})
        # a BN never updated in training was never used (data_normalization off)
        cfg["attention_input_norm"] = not (trained and bns and all(_untouched(sd, b) for b in bns))


def _bn(src: str, dst: str) -> list[tuple[str, str]]:
    return [(f"{src}.{p}", f"{dst}.{p}") for p in _BN]


def _rename(ref: str, model: STTR) -> tuple[str, int | None]:
    """Our key for a reference key, and the partition index for keys fused over the K graph subsets."""
    rules: list[tuple[str, str]] = [
        (r"^data_bn\.", "input_norm."), (r"^gcn0\.", "stem_gcn."), (r"^tcn0\.", "stem_tcn."),
        (r"^backbone\.(\d+)\.gcn1\.", r"blocks.\1.gcn."), (r"^backbone\.(\d+)\.tcn1\.", r"blocks.\1.tcn."),
        (r"^backbone\.(\d+)\.down1\.", r"blocks.\1.residual."), (r"^fcn\.", "head."),
    ]
    key = ref
    for pat, rep in rules:
        if re.match(pat, key):
            key = re.sub(pat, rep, key)
            break
    else:
        raise ValueError(f"reference key {ref!r} has no counterpart in STTR")
    part = None
    subs = [
        (r"\.attention_conv\.qkv_conv\.", ".qkv."), (r"\.attention_conv\.attn_out\.", ".proj."),
        (r"\.attention_conv\.(key_rel\w*)$", r".\1"), (r"\.qkv_conv\.", ".qkv."), (r"\.attn_out\.", ".proj."),
        (r"\.tcn_conv\.", ".tcn."), (r"\.down\.0\.", ".down.0."), (r"\.down\.1\.", ".down.1."),
    ]
    for pat, rep in subs:
        key = re.sub(pat, rep, key)
    m = re.search(r"\.(conv_list|g_convolutions|conv_d|conv_a|conv_b)\.(\d)\.(weight|bias)$", key)
    if m:
        kind, part = m.group(1), int(m.group(2))
        head = key[:m.start()]
        target = {"conv_list": "", "g_convolutions": ".gcn", "conv_d": "", "conv_a": ".embed_a", "conv_b": ".embed_b"}
        key = f"{head}{target[kind]}.{m.group(3)}"
    return _bn_name(key, model), part


def _bn_name(key: str, model: STTR) -> str:
    """Reference batch-norms are `bn` / `data_bn`; ours are `norm` / `out_norm` (attention blocks)."""
    m = re.search(r"\.(bn|data_bn)\.(\w+)$", key)
    if not m:
        return key
    parent = key[:m.start()]
    module = model.get_submodule(parent) if parent else model
    if m.group(1) == "data_bn":
        name = "norm"
    else:
        name = "out_norm" if isinstance(module, (SpatialAttention, TemporalAttention)) else "norm"
    return f"{parent}.{name}.{m.group(2)}"


def _ignored(ref: str, cfg: STTRConfig) -> str | None:
    """Why a reference key is deliberately unused (None: it must be mapped)."""
    if ref.startswith("person_bn."):
        return "person_bn is built but never used by the reference"
    if ref.startswith("data_bn.") and not cfg.input_norm:
        return "use_data_bn is off"
    if re.search(r"\.gcn1\.data_bn\.", ref) and not cfg.attention_input_norm:
        return "SSA data_bn exists in the reference even when data_normalization is off"
    if re.search(r"\.tcn1\.down\.", ref) and not cfg.attention_skip:
        return "TSA down residual is unused when skip_conn is off"
    return None


def map_reference_state_dict(ref: Mapping[str, torch.Tensor], model: STTR) -> dict[str, torch.Tensor]:
    """Our state dict from a reference one (prefixes stripped); strict: unknown and missing keys are named."""
    ours = model.state_dict()
    parts: dict[str, dict[int, torch.Tensor]] = {}
    out: dict[str, torch.Tensor] = {}
    unused = []
    for name, value in ref.items():
        if _ignored(name, model.config):
            continue
        try:
            key, part = _rename(name, model)
        except (ValueError, AttributeError):
            unused.append(name)
            continue
        if key not in ours:
            unused.append(name)
            continue
        if re.search(r"\.tcn\.qkv\.weight$", key):
            value = value.permute(0, 1, 3, 2)  # reference (O, C, 1, taps) over (NM*V, C, 1, T) -> (O, C, taps, 1)
        if key == "head.weight":
            value = value.squeeze(-1)
        if part is None:
            out[key] = value
        else:
            parts.setdefault(key, {})[part] = value
    for key, pieces in parts.items():
        stacked = [pieces[i] for i in sorted(pieces)]
        if re.search(r"\.embed_[ab]\.(weight|bias)$", key):
            out[key] = torch.cat(stacked, 0)
        else:
            out[key] = torch.stack([p.reshape(p.shape[0], -1) if p.dim() > 1 else p for p in stacked])
    if unused:
        raise ValueError(f"reference key(s) not used by the inferred {model.config.attention!r} model: "
                         f"{sorted(unused)}")
    for key in set(ours) - set(out):
        if key.endswith(".num_batches_tracked"):  # absent from checkpoints of old PyTorch; unused in eval
            out[key] = torch.zeros_like(ours[key])
    missing = sorted(set(ours) - set(out))
    if missing:
        raise ValueError(f"STTR parameter(s)/buffer(s) not set by the reference checkpoint: {missing}")
    for key, value in out.items():
        if tuple(value.shape) != tuple(ours[key].shape):
            raise ValueError(f"shape mismatch for {key}: reference gives {tuple(value.shape)}, "
                             f"expected {tuple(ours[key].shape)}")
    return out


def load_reference_checkpoint(path_or_state_dict: str | Path | Mapping[str, Any], **overrides: Any) -> STTR:
    """An `STTR` in eval mode holding the weights of a reference ST-TR checkpoint.

    Args:
        path_or_state_dict: A released `*.pt` / `epochN_model.pt` (state dict) or `epochN.ckpt`, as a path or
            already loaded.
        **overrides: `STTRConfig` fields the keys cannot tell (defaults: `REFERENCE_DEFAULTS`, e.g.
            `num_heads=8`, `agcn_graph='constant'`), a `layout` for graphs other than NTU-25 / OpenPose-18, or the
            `graph_mode` of a checkpoint trained with a one-partition graph_args labeling_mode (uniform, DAD, ...).

    Raises:
        ValueError: naming reference keys that map to nothing, or parameters left unset, or shape mismatches; or a
            reference switch that is broken there and not offered here (`adjacency: True`, -agcn with a
            non-spatial labeling_mode, a custom backbone_config).
    """
    sd = _read(path_or_state_dict)
    config = infer_reference_config(sd, **overrides)
    model = STTR(config)
    model.load_state_dict(map_reference_state_dict(sd, model), strict=True)
    log.info("loaded reference checkpoint as %s", config)
    return model.eval()
