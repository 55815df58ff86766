"""Training configuration: `TrainConfig` composes the model's `STTRConfig` with data, augmentation and
optimiser settings.

The dataclasses are the truth; a YAML file is their serialised form and maps onto them one to one. An unknown key
anywhere raises `ValueError` naming it (with its dotted path), so a typo in a config or on the command line fails
loudly. Any key can be overridden on the command line as `section.key=value` (values parsed as YAML scalars/lists;
1e-3 is a float, as in YAML 1.2):

    model: {preset: s-tr, num_classes: 60}      # preset name + STTRConfig overrides
    data: {root: data/ntu60/xsub, val_fraction: 0.05}
    optim: {lr: 0.1, milestones: [60, 90], epochs: 120}

`--set optim.lr=0.05 model.dropout=0.3 augment.mirror=0.5`
"""
from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml

from sttr.model.config_values import check_value, load_yaml

__all__ = [
    "DataConfig", "AugmentConfig", "OptimConfig", "TrainConfig", "load_config", "apply_overrides", "parse_override",
    "load_yaml", "device_problem",
]

Precision = Literal["fp32", "bf16", "fp16"]

_DEVICE = re.compile(r"^(?:auto|cpu|cuda(?::[0-9]+)?)$")


@dataclass
class DataConfig:
    """Where the generated dataset lives and how it is split and loaded.

    Attributes:
        root: Folder holding `{split}_data.npy`, `{split}_label.pkl` and `{split}_meta.json`.
        train_split: Name of the training split file prefix.
        test_split: Name of the benchmark's test split (used once, at the end, on the chosen checkpoint).
        val_subjects: Training subjects held out for validation / model selection. Empty: chosen by `val_fraction`.
        val_fraction: Fraction of training subjects (of samples, when the dataset has no subject ids) held out for
            validation when `val_subjects` is empty. 0 disables validation: the last epoch is then the chosen one.
        batch_size: Samples per step per process (the effective batch is batch_size x accumulate x world size).
        test_batch_size: Samples per evaluation step per process.
        num_workers: DataLoader worker processes (0: load in the main process).
        mmap: Memory-map the data file instead of reading it into memory.
        window: Frames fed to the network; None keeps the dataset's T. Training crops/pads to it (see augment),
            evaluation resizes the valid frames to it.
        test_window: Frames of the validation and test windows (and of exported/live windows); None: `window`, or
            with `augment.random_window` the whole clip as generated (random crops keep the frame rate, so resizing
            clips to the crop length would evaluate at another rate; the reference tests Kinetics on all 300).
    """

    root: str = ""
    train_split: str = "train"
    test_split: str = "test"
    val_subjects: list[int] = field(default_factory=list)
    val_fraction: float = 0.1
    batch_size: int = 32
    test_batch_size: int = 64
    num_workers: int = 2
    mmap: bool = True
    window: int | None = None
    test_window: int | None = None


@dataclass
class AugmentConfig:
    """Training-time augmentation (spec §4.7, done right); all zero/False disables it (the NTU recipe).

    Attributes:
        rotate: Maximum rotation in degrees about each of the axes in `rotate_axes` (uniform in [-rotate, rotate]).
        rotate_axes: Axes rotated about, a subset of "xyz" (2-D layouts only ever rotate about z).
        scale: Maximum relative scale change (factor uniform in [1 - scale, 1 + scale]).
        shift: Maximum translation per axis, in data units (metres for 3-D layouts), joints only (not bones).
        mirror: Probability of mirroring (x negated, left/right joints swapped).
        crop: Random valid-frame crop, as the fraction range [min, max] of the valid frames kept, then resized to the
            window; empty disables (the reference's random_choose is `random_window`).
        random_window: Random contiguous window of `data.window` frames (zero-padded at a random offset if shorter),
            the reference's random_choose.
    """

    rotate: float = 0.0
    rotate_axes: str = "xyz"
    scale: float = 0.0
    shift: float = 0.0
    mirror: float = 0.0
    crop: list[float] = field(default_factory=list)
    random_window: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.rotate or self.scale or self.shift or self.mirror or self.crop or self.random_window)


@dataclass
class OptimConfig:
    """Optimiser and schedule (paper recipe: SGD, Nesterov, lr 0.1, wd 1e-4, x0.1 at 60/90 of 120 epochs).

    Attributes:
        lr: Base learning rate (for the effective batch as configured; no automatic scaling).
        momentum: SGD momentum.
        nesterov: Nesterov momentum.
        weight_decay: L2 weight decay.
        epochs: Total epochs.
        schedule: "step" (x gamma at each milestone) or "cosine" (to 0 at the last epoch).
        milestones: Epochs (0-based, the epoch from which the decay applies) for the step schedule.
        gamma: Step decay factor (a true factor, not the base lr: spec §9 bug 4). The reference decays by its base
            lr, which is the same at lr 0.1 (every paper config); to reproduce it at another lr, set gamma = lr.
        warmup_epochs: Linear warm-up from lr / (warmup_epochs + 1), 0 disables.
        accumulate: Gradient accumulation steps per optimiser step.
        clip_grad_norm: Clip the gradient norm to this value; None disables.
        label_smoothing: Cross-entropy label smoothing (0: the paper's plain cross-entropy).
    """

    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    epochs: int = 120
    schedule: Literal["step", "cosine"] = "step"
    milestones: list[int] = field(default_factory=lambda: [60, 90])
    gamma: float = 0.1
    warmup_epochs: int = 0
    accumulate: int = 1
    clip_grad_norm: float | None = None
    label_smoothing: float = 0.0


@dataclass
class TrainConfig:
    """One training run.

    Attributes:
        model: STTRConfig overrides applied to `model.preset` (num_classes, in_channels, num_joints, num_persons and
            layout are filled from the dataset's meta when left out).
        data, augment, optim: See their classes.
        work_dir: Output folder (last.pt, best.pt, logs, scores).
        seed: Seed of everything (parameters, data order, augmentation, dropout).
        precision: fp32, bf16 (autocast) or fp16 (autocast + GradScaler; CUDA only).
        compile: Wrap the model in `torch.compile`.
        device: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N".
        eval_interval: Validate every this many epochs (and at the last one).
        log_interval: Log the running loss every this many steps.
        tensorboard: Write TensorBoard event files (if tensorboard is installed).
        progress: Show progress bars (rank 0 only).
        test_at_end: Test the chosen checkpoint on the test split after training.
        threads: torch intra-op CPU threads per process (0: torch's default). 1 is fastest on a busy shared CPU.
    """

    model: dict[str, Any] = field(default_factory=lambda: {"preset": "s-tr"})
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    work_dir: str = "runs/sttr"
    seed: int = 1
    precision: Precision = "fp32"
    compile: bool = False
    device: str = "auto"
    eval_interval: int = 1
    log_interval: int = 50
    tensorboard: bool = True
    progress: bool = True
    test_at_end: bool = True
    threads: int = 0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        """Build from a nested dict; raises ValueError naming any unknown or mistyped key."""
        cfg = _build(cls, d, prefix="")
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Check value ranges; raises ValueError naming the key."""
        checks = [
            ("optim.lr", self.optim.lr > 0), ("optim.epochs", self.optim.epochs >= 1),
            ("optim.accumulate", self.optim.accumulate >= 1), ("optim.gamma", 0 < self.optim.gamma <= 1),
            ("optim.schedule", self.optim.schedule in ("step", "cosine")),
            ("data.batch_size", self.data.batch_size >= 1), ("data.test_batch_size", self.data.test_batch_size >= 1),
            ("data.val_fraction", 0 <= self.data.val_fraction < 1), ("data.num_workers", self.data.num_workers >= 0),
            ("precision", self.precision in ("fp32", "bf16", "fp16")),
            ("augment.mirror", 0 <= self.augment.mirror <= 1),
            ("augment.rotate_axes", set(self.augment.rotate_axes) <= set("xyz")),
            ("augment.crop", not self.augment.crop or (len(self.augment.crop) == 2
                                                       and 0 < self.augment.crop[0] <= self.augment.crop[1] <= 1)),
            ("eval_interval", self.eval_interval >= 1), ("threads", self.threads >= 0),
            ("log_interval", self.log_interval >= 1),
        ]
        for key, ok in checks:
            if not ok:
                raise ValueError(f"config key {key!r} has an invalid value {_get(self, key)!r}")
        if not 0 <= self.optim.label_smoothing < 1:  # else torch fails at the first step, not here
            raise ValueError(f"config key 'optim.label_smoothing': expected a value in [0, 1), "
                             f"got {self.optim.label_smoothing!r}")
        if not _DEVICE.match(self.device):
            raise ValueError(f"config key 'device': expected auto, cpu, cuda or cuda:N (e.g. cuda:0), "
                             f"got {self.device!r}")
        if not isinstance(self.model.get("preset", ""), str):
            raise ValueError("config key 'model.preset' must be a preset name")
        for key in ("window", "test_window"):
            value = getattr(self.data, key)
            if value is not None and value < 1:
                raise ValueError(f"config key 'data.{key}' must be a positive frame count, got {value}")
        self._check_model_keys()

    def _check_model_keys(self) -> None:
        from sttr.model.config import PRESETS, STTRConfig

        name = self.model.get("preset", "s-tr")
        if name not in PRESETS:
            raise ValueError(f"config key 'model.preset': unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
        known = set(PRESETS[name].to_dict())
        unknown = sorted(set(self.model_overrides()) - known)
        if unknown:
            raise ValueError(f"unknown config key(s) {', '.join(repr('model.' + k) for k in unknown)}; "
                             f"known keys in model: preset, {', '.join(sorted(known))}")
        # `model` is a free dict here; type-check it against STTRConfig now, not when the model is built
        hints = typing.get_type_hints(STTRConfig)
        for key, value in self.model_overrides().items():
            self.model[key] = check_value(value, hints[key], "model." + key, "config key {key!r}")

    def build_model_config(self, defaults: Mapping[str, Any] | None = None) -> Any:
        """The STTRConfig: the preset, then `defaults` (what the dataset dictates), then this config's overrides.

        Args:
            defaults: Dataset-derived values (num_classes, in_channels, num_joints, num_persons, layout) used
                unless the config sets them.
        """
        from sttr.model.config import PRESETS, STTRConfig

        d = PRESETS[self.model.get("preset", "s-tr")].to_dict()
        d.update(defaults or {})
        d.update(self.model_overrides())
        return STTRConfig.from_dict(d)

    def model_overrides(self) -> dict[str, Any]:
        """The STTRConfig overrides (everything under `model` except `preset`)."""
        return {k: v for k, v in self.model.items() if k != "preset"}


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _build(cls: type, d: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(d, Mapping):
        raise ValueError(f"config section {prefix.rstrip('.') or '<root>'!r}: expected a mapping, got {d!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(repr(prefix + k) for k in unknown)}; "
                         f"known keys{' in ' + prefix.rstrip('.') if prefix else ''}: {', '.join(sorted(names))}")
    kwargs = {}
    for name, value in d.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value or {}, prefix + name + ".")
        else:
            kwargs[name] = check_value(value, hint, prefix + name, "config key {key!r}")
    return cls(**kwargs)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse `a.b.c=value` (value as a YAML scalar or flow list/dict) into (["a", "b", "c"], value)."""
    if "=" not in text:
        raise ValueError(f"override {text!r}: expected key=value, e.g. optim.lr=0.05")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise ValueError(f"override {text!r}: expected a dotted key like optim.lr")
    try:
        value = load_yaml(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise ValueError(f"override {text!r}: cannot parse the value{_yaml_where(err)}") from None
    return key.split("."), value


def apply_overrides(d: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `key=value` overrides to a nested config dict (in place, returned). Unknown keys are caught later,
    by `TrainConfig.from_dict`, which names them."""
    for text in overrides:
        path, value = parse_override(text)
        node = d
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"override {text!r}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return d


def _yaml_where(err: yaml.YAMLError) -> str:
    """' at line L, column C: problem' of a YAML error (its first line only)."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{where}: {problem}"


def device_problem(name: str) -> str | None:
    """Why the torch device `name` cannot be used here (None when it can): a name that is not auto, cpu, cuda or
    cuda:N, or CUDA asked for where torch sees no CUDA device."""
    if not _DEVICE.match(name):
        return f"device {name!r}: expected auto, cpu, cuda or cuda:N (e.g. cuda:0)"
    if not name.startswith("cuda"):
        return None
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        build = (f"a CUDA {torch.version.cuda} build" if torch.version.cuda else "a CPU-only build")
        return (f"device {name!r}: torch sees no CUDA device (torch {torch.__version__} is {build}); "
                f"use cpu or auto")
    if ":" in name and int(name.split(":")[1]) >= count:
        return f"device {name!r}: torch sees {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
    return None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config (or start from the defaults), apply `key=value` overrides and validate."""
    d: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        try:
            d = load_yaml(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"config file {path}: not valid YAML{_yaml_where(err)}") from None
        if not isinstance(d, dict):
            raise ValueError(f"config file {path}: expected a mapping at the top level")
    apply_overrides(d, list(overrides or []))
    try:
        return TrainConfig.from_dict(d)
    except ValueError as err:
        raise ValueError(f"{path or 'config'}: {err}") from None
