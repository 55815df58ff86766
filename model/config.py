"""Architecture configuration of the ST-TR network family: `STTRConfig`, `PRESETS`, `preset()`.

Pure Python (no torch): the config is data, `STTR(config)` (in `sttr.py`) is the only reader.
Every switch of the reference `Model` (spec §1.9) that works there has a field here under a
readable name; the reference's own names are listed in `REFERENCE_NAMES` for the converter.
Switches the reference ships broken (spec §9) are either fixed (documented on the field) or
absent, so that passing them fails loudly as an unknown key.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, Mapping, get_args

__all__ = ["RAW_CONCAT_UNIT", "STTRConfig", "PRESETS", "preset", "AttentionPlacement", "GraphConvKind", "AgcnGraph",
           "GraphMode", "MotionInput"]

# with concat_original the raw coordinates join the input of the unit with this index (spec §1.2)
RAW_CONCAT_UNIT = 3

# Which attention replaces which convolution in the attention units (spec §1.2):
# 'spatial' = S-TR (SSA replaces the GCN), 'temporal' = T-TR (TSA replaces the TCN),
# 'both' = SSA followed by TSA, 'none' = the ST-GCN baseline.
AttentionPlacement = Literal["none", "spatial", "temporal", "both"]
GraphConvKind = Literal["gcn", "agcn"]
# Fixed graph of the adaptive GCN: 'skeleton' = the intended A_graph + PA; 'constant' = the reference's
# accidental constant 1e-6 graph (spec §1.4 / §9.1), needed to reproduce released `*-agcn` checkpoints.
AgcnGraph = Literal["skeleton", "constant"]
# Partition of the skeleton graph (the reference's `graph_args: labeling_mode`; its 'FC' is 'fully_connected'):
# K = 3 subsets for 'spatial' (every preset), 2 for 'distance', 1 for the others (see `graph.adjacency`).
GraphMode = Literal["spatial", "uniform", "distance", "distance*", "DAD", "DLD", "fully_connected"]
# Temporal differences of the input (not in the reference): 'none'; 'append' = C input channels plus their C
# frame-to-frame differences; 'only' = the differences alone (the "motion" streams of multi-stream GCNs).
MotionInput = Literal["none", "append", "only"]


@dataclass(frozen=True)
class STTRConfig:
    """The architecture of one ST-TR stream (spec §1).

    Attributes:
        num_classes: Classifier width (`num_class`).
        in_channels: Input channels C: 3 joints, 6 joints + bones (`channel`).
        num_joints: V; must match the layout (`num_point`).
        num_persons: M person slots (`num_person`).
        layout: Skeleton layout name (see `sttr.model.skeleton.LAYOUTS`) or a layout dict.
        attention: Where attention goes: 'none' | 'spatial' | 'temporal' | 'both' (`attention`, `tcn_attention`).
        attention_in_all_layers: No stem, 10 units all with attention; windowed TSA in the first stage (`all_layers`).
        spatial_only_attention: SSA is pure attention; False concatenates a GCN with attention (`only_attention`).
        temporal_only_attention: TSA is pure attention; False concatenates a TCN (`only_temporal_attention`).
        graph_conv: 'gcn' (partition GCN with learned mask) or 'agcn' (2s-AGCN adaptive GCN) (`agcn`).
        agcn_graph: Fixed graph of the adaptive GCN: 'skeleton' (intended) or 'constant' (reference, 1e-6). With
            `graph_conv='agcn'` the GCN branch of augmented SSA uses it too (in the reference it copies the model's
            graph after the first adaptive unit overwrote it).
        graph_mode: Partition of the skeleton graph the graph convolutions use: 'spatial' (3 subsets, every
            preset), 'distance' (2), 'uniform', 'distance*', 'DAD', 'DLD' or 'fully_connected' (1)
            (`graph_args: labeling_mode`; the reference builds S-TR and -agcn models with 'spatial' only).
        gcn_local_bn: The partition GCNs normalise per (channel, joint) with a BatchNorm1d(Cout * V) instead of per
            channel (`use_local_bn`; the adaptive GCN ignores it, as in the reference).
        base_channels: Width of the first stage (64 in the reference; stages are 1x, 2x, 4x).
        double_channel: All widths x2 (`double_channel`, the bones runs).
        concat_original: Concatenate the raw input to the input of the 4th unit (`concat_original`).
        input_norm: Model-level data batch-norm over (m, v, c) channels (`use_data_bn`).
        attention_input_norm: Per-block data batch-norm over (c, v) channels at every SSA/TSA input
            (`data_normalization`).
        attention_skip: Inner residual of SSA (when Cin == Cout) and TSA (`skip_conn`). With
            `temporal_only_attention=False` the reference drops the TCN branch when this is False
            (spec §9.11); here the branch is kept.
        drop_connect: Attention key drop-connect (p = 0.5) during training (`drop_connect`).
        dropout: Dropout before each backbone TCN conv (`dropout`).
        num_heads: Attention heads (`Nh`).
        key_factor: Key/query width as a fraction of Cout (`dk`).
        value_factor: Value width as a fraction of Cout when not pure attention (`dv`).
        more_channels: Each head gets key_dim / more_channels_divisor channels (`more_channels`).
        more_channels_divisor: The divisor of `more_channels` (`n`).
        relative: Relative position terms in SSA and TSA (`relative`).
        relative_frames: Input window length the TSA relative tables are built for (reference: 300,
            hard-wired per width as 300/150/75; here derived from this length through the strides).
        window_blocks: Windowed-TSA block lengths for the 1st/2nd/3rd stage width (`dim_block1/2/3`).
        mask_learning: Learnable mask on the adjacency of the partition GCN (`mask_learning`).
        temporal_kernel_size: Kernel of the backbone TCNs (`temporal_kernel_size`).
        motion: Frame-to-frame differences of the input computed inside the network (not in the reference):
            'none', 'append' (the window and its differences, 2C channels) or 'only' (the differences). The
            window stays (N, in_channels, T, V, M), so bundles and the live path need nothing else.
    """

    num_classes: int = 60
    in_channels: int = 3
    num_joints: int = 25
    num_persons: int = 2
    layout: str | dict = "ntu25"
    attention: AttentionPlacement = "spatial"
    attention_in_all_layers: bool = False
    spatial_only_attention: bool = True
    temporal_only_attention: bool = True
    graph_conv: GraphConvKind = "gcn"
    agcn_graph: AgcnGraph = "skeleton"
    graph_mode: GraphMode = "spatial"
    gcn_local_bn: bool = False
    base_channels: int = 64
    double_channel: bool = False
    concat_original: bool = True
    input_norm: bool = True
    attention_input_norm: bool = True
    attention_skip: bool = True
    drop_connect: bool = True
    dropout: float = 0.5
    num_heads: int = 8
    key_factor: float = 0.25
    value_factor: float = 0.25
    more_channels: bool = False
    more_channels_divisor: int = 4
    relative: bool = False
    relative_frames: int = 300
    window_blocks: tuple[int, int, int] = field(default=(10, 30, 75))
    mask_learning: bool = True
    temporal_kernel_size: int = 9
    motion: MotionInput = "none"

    def __post_init__(self) -> None:
        object.__setattr__(self, "window_blocks", tuple(int(b) for b in self.window_blocks))
        self._validate()

    def _validate(self) -> None:
        for name, choices in (("attention", AttentionPlacement), ("graph_conv", GraphConvKind),
                              ("agcn_graph", AgcnGraph), ("graph_mode", GraphMode), ("motion", MotionInput)):
            if getattr(self, name) not in get_args(choices):
                raise ValueError(f"STTRConfig.{name}: expected one of {get_args(choices)}, got {getattr(self, name)!r}")
        for name in ("num_classes", "in_channels", "num_joints", "num_persons", "base_channels", "num_heads",
                     "more_channels_divisor", "relative_frames", "temporal_kernel_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"STTRConfig.{name}: expected a positive integer, got {value!r}")
        if self.temporal_kernel_size % 2 == 0:
            raise ValueError(f"STTRConfig.temporal_kernel_size: expected an odd kernel, "
                             f"got {self.temporal_kernel_size}")
        if len(self.window_blocks) != 3 or min(self.window_blocks) < 1:
            raise ValueError(f"STTRConfig.window_blocks: expected 3 positive block lengths, got {self.window_blocks}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"STTRConfig.dropout: expected a probability in [0, 1), got {self.dropout}")
        for name in ("key_factor", "value_factor"):
            if not 0.0 < getattr(self, name) <= 4.0:
                raise ValueError(f"STTRConfig.{name}: expected a fraction of the width in (0, 4], got "
                                 f"{getattr(self, name)}")
        from .skeleton import get_layout  # numpy-free, torch-free

        try:
            layout = get_layout(self.layout)
        except (KeyError, ValueError) as err:
            raise ValueError(f"STTRConfig.layout: {err}") from None
        if layout.num_joints != self.num_joints:
            raise ValueError(f"STTRConfig: layout {layout.name!r} has {layout.num_joints} joints but "
                             f"num_joints={self.num_joints}")

    # ------------------------------------------------------------------ derived quantities
    @property
    def spatial(self) -> bool:
        """True when SSA replaces the GCN in the attention units."""
        return self.attention in ("spatial", "both")

    @property
    def temporal(self) -> bool:
        """True when TSA replaces the TCN in the attention units."""
        return self.attention in ("temporal", "both")

    @property
    def network_channels(self) -> int:
        """Channels the network computes on: in_channels, doubled when `motion='append'`."""
        return self.in_channels * (2 if self.motion == "append" else 1)

    def stage_widths(self) -> tuple[int, int, int]:
        """Output channels of the three stages (64, 128, 256 for the reference; x2 with double_channel)."""
        base = self.base_channels * (2 if self.double_channel else 1)
        return base, 2 * base, 4 * base

    def units(self) -> list[tuple[int, int, int, int]]:
        """The backbone units as (in_channels, out_channels, stride, stage), concat_original included."""
        w1, w2, w3 = self.stage_widths()
        plan = [(w1, w1, 1, 0)] * 3 + [(w1, w2, 2, 1), (w2, w2, 1, 1), (w2, w2, 1, 1),
                                         (w2, w3, 2, 2), (w3, w3, 1, 2), (w3, w3, 1, 2)]
        if self.attention_in_all_layers:
            plan = [(self.network_channels, w1, 1, 0)] + plan
        if self.concat_original:
            cin, cout, stride, stage = plan[RAW_CONCAT_UNIT]
            plan[RAW_CONCAT_UNIT] = (cin + self.network_channels, cout, stride, stage)
        return plan

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists); `from_dict(to_dict())` round-trips."""
        d = asdict(self)
        d["window_blocks"] = list(self.window_blocks)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "STTRConfig":
        """Build from a dict; raises ValueError naming any unknown key."""
        if not isinstance(d, Mapping):
            raise ValueError(f"STTRConfig.from_dict: expected a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"STTRConfig: unknown key(s) {unknown}; known keys: {sorted(known)}")
        return cls(**dict(d))

    def replace(self, **overrides: Any) -> "STTRConfig":
        """A copy with some fields changed; unknown names raise ValueError."""
        unknown = sorted(set(overrides) - {f.name for f in fields(self)})
        if unknown:
            raise ValueError(f"STTRConfig: unknown key(s) {unknown}")
        return replace(self, **overrides)


_S_TR = STTRConfig(attention="spatial")
_T_TR = STTRConfig(attention="temporal")
_BONES = {"in_channels": 6, "double_channel": True}

PRESETS: dict[str, STTRConfig] = {
    "s-tr": _S_TR,
    "t-tr": _T_TR,
    "s-tr-agcn": _S_TR.replace(graph_conv="agcn"),
    "t-tr-agcn": _T_TR.replace(graph_conv="agcn"),
    "s-tr-bones": _S_TR.replace(**_BONES),
    "t-tr-bones": _T_TR.replace(**_BONES),
    "s-tr-agcn-bones": _S_TR.replace(graph_conv="agcn", **_BONES),
    "t-tr-agcn-bones": _T_TR.replace(graph_conv="agcn", **_BONES),
    "st-gcn": STTRConfig(attention="none"),
    # tiny model for tests: widths 8/16/32, 2 heads, both attentions; runs in milliseconds on CPU
    "nano": STTRConfig(attention="both", base_channels=8, num_heads=2, num_classes=10),
}
PRESETS["sttr-nano"] = PRESETS["nano"]


def preset(name: str, **overrides: Any) -> STTRConfig:
    """A named preset with some fields changed, e.g. `preset('t-tr', num_classes=120)`; a `layout` given without
    `num_joints` brings its own joint count (`preset('nano', layout='openpose18')` has V = 18)."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    if "layout" in overrides and "num_joints" not in overrides:
        from .skeleton import get_layout

        try:
            overrides = {**overrides, "num_joints": get_layout(overrides["layout"]).num_joints}
        except (KeyError, ValueError, TypeError):
            pass  # an unknown layout: the config's own check names it
    return PRESETS[name].replace(**overrides)
