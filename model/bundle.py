"""The bundle folder: ONNX models plus `bundle.json`, verified when read.

A bundle is what `sttr export` writes and every engine loads:

    bundle/
        bundle.json          format, model config, input spec, labels, temperature, reports, sha256 of every file
        model.onnx           FP32, input `x` (N, C, T, V, M) float32 -> `logits` (N, K) float32
        model.fp16.onnx      (optional) FP16 graph with float32 input/output
        model.int8.onnx      (optional) explicit Q/DQ INT8 graph with float32 input/output
        model.p1[.fp16|.int8].onnx  (optional) the same for windows whose slots 1.. are all zero (`models['p1.*']`)
        model.pt             (optional) the sttr checkpoint, for the torch engine
        stream<i>.pt         (fused bundles, optional) each stream's checkpoint, for the torch engine

`bundle.json` keys (format `sttr.bundle/1`): `format`, `created`, `model` (`config`, `source`, `meta`), `input`
(`InputSpec.to_dict()`), `output` (`name`, `num_classes`), `labels`, `temperature`, `files` (name -> `sha256`,
`bytes`), `models` (precision -> file name), `checkpoint` (file name or null), `export` (exporter, opset, parity
report), `calibration` (`int8`, `fp16`, `temperature` reports), `versions` (tool -> version).

A fused bundle (`sttr export A.pt B.pt ...`: several streams whose weighted logits are summed in one graph) has
`model.source` `fusion` with one entry per stream in `model.streams`, and `fusion`: `window_bones` (the form of the
bundle's windows) and `streams`, a list of `{checkpoint (file or null), weight, bones, legacy_bones}`.

json + hashlib only: `realtime` reads bundles without torch or numpy.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .atomic import atomic_write_bytes

__all__ = ["BUNDLE_FORMAT", "BUNDLE_JSON", "KNOWN_KEYS", "PRECISIONS", "BundleError", "BundleIntegrityError",
           "BundleMismatchError", "InputSpec", "BundleInfo", "sha256_file", "file_entry", "write_bundle_json",
           "read_bundle", "not_a_checkpoint"]

log = logging.getLogger(__name__)

BUNDLE_FORMAT = "sttr.bundle/1"
BUNDLE_JSON = "bundle.json"
PRECISIONS = ("fp32", "fp16", "int8")
_REQUIRED_KEYS = ("format", "input", "output", "labels", "files", "models")
# every top-level key this format has (module docstring); a misspelt one would otherwise be ignored silently
KNOWN_KEYS = ("format", "created", "model", "input", "output", "labels", "temperature", "files", "models",
              "checkpoint", "export", "calibration", "versions", "fusion")
# verbs that take a bundle folder, for errors about a bundle passed where a checkpoint was expected
BUNDLE_VERBS = "sttr eval, sttr calibrate, sttr bench live --bundle, sttr serve --bundle, sttr-live --bundle"


class BundleError(Exception):
    """Base class of bundle errors."""


class BundleIntegrityError(BundleError):
    """A bundle file is missing, changed since it was written (sha256), or `bundle.json` is malformed."""


class BundleMismatchError(BundleError, ValueError):
    """The input a caller will feed does not match the bundle's input spec."""


@dataclass(frozen=True)
class InputSpec:
    """What the model input must be: one window (N, C, T, V, M) float32, normalised as `preprocess` says.

    Attributes:
        C: Channels (3 for x, y, z joints; 6 for joints + bones).
        T: Frames per window; None when the graph accepts any T.
        V: Joints of the layout.
        M: Person slots.
        layout: Layout name (e.g. `ntu25`) or a layout dict for user layouts.
        fps: Frame rate the model was trained at, or None when unknown.
        preprocess: The checkpoint's `PreprocessSpec.to_dict()` (what was applied to the raw window).
        T_rule: With T None, the lengths the network takes: `{"min": a, "multiple": b}` = every T >= a with
            T - a divisible by b (T-TR with an odd number of joints: {"min": 4, "multiple": 4}); None: any T.
    """

    C: int
    T: int | None
    V: int
    M: int
    layout: str | dict = "ntu25"
    fps: float | None = None
    preprocess: dict = field(default_factory=dict)
    T_rule: dict | None = None

    def time_problem(self, t: int) -> str | None:
        """Why a window of `t` frames does not fit (None when it does)."""
        if self.T is not None:
            return None if t == self.T else f"T must be {self.T}, got {t}"
        if not self.T_rule:
            return None
        low, step = int(self.T_rule["min"]), int(self.T_rule["multiple"])
        if t >= low and (t - low) % step == 0:
            return None
        return f"T must be {self.describe_t()}, got {t}"

    def describe_t(self) -> str:
        """The lengths this input takes, in words."""
        if self.T is not None:
            return str(self.T)
        if not self.T_rule:
            return "any T >= 1"
        low, step = int(self.T_rule["min"]), int(self.T_rule["multiple"])
        if step == 1:
            return f"any T >= {low}"
        if low % step:
            return f"{low} + a multiple of {step}"
        return f"a multiple of {step}" + (f" (at least {low})" if low != step else "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the `input` entry of `bundle.json`)."""
        out = {"name": "x", "dtype": "float32", "shape": ["N", self.C, self.T if self.T else "T", self.V, self.M],
               "C": self.C, "T": self.T, "V": self.V, "M": self.M, "layout": self.layout, "fps": self.fps,
               "preprocess": dict(self.preprocess)}
        if self.T is None and self.T_rule:
            out["T_rule"] = dict(self.T_rule)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "InputSpec":
        """Inverse of `to_dict` (extra keys `name`, `dtype`, `shape` ignored)."""
        try:
            return cls(C=int(d["C"]), T=None if d.get("T") is None else int(d["T"]), V=int(d["V"]), M=int(d["M"]),
                       layout=d.get("layout", "ntu25"), fps=None if d.get("fps") is None else float(d["fps"]),
                       preprocess=dict(d.get("preprocess") or {}), T_rule=_t_rule(d.get("T_rule")))
        except (KeyError, TypeError, ValueError) as err:
            got = {k: d.get(k) for k in ("C", "T", "V", "M", "fps")} if isinstance(d, Mapping) else d
            raise BundleIntegrityError(f"bundle input spec is malformed ({type(err).__name__}: {err}): expected C, V, "
                                       f"M integers, T an integer or null, fps a number or null; got {got!r}") from err

    def differences(self, other: "InputSpec") -> list[str]:
        """Human-readable differences `field: bundle X, input Y` (T None or fps None on either side matches)."""
        out = []
        for name in ("C", "V", "M"):
            if getattr(self, name) != getattr(other, name):
                out.append(f"{name}: bundle expects {getattr(self, name)}, input has {getattr(other, name)}")
        if self.T is not None and other.T is not None and self.T != other.T:
            out.append(f"T: bundle expects {self.T} frames, input has {other.T}")
        elif self.T is None and other.T is not None and self.time_problem(other.T):
            out.append(f"T: bundle takes {self.describe_t()} frames (its network's strides), input has {other.T}")
        if _layout_key(self.layout) != _layout_key(other.layout):
            out.append(f"layout: bundle expects {_layout_name(self.layout)!r}, "
                       f"input has {_layout_name(other.layout)!r}")
        if self.fps is not None and other.fps is not None and not math.isclose(self.fps, other.fps, rel_tol=1e-3):
            out.append(f"fps: bundle expects {self.fps:g}, input has {other.fps:g}")
        if self.preprocess and other.preprocess:
            for key in sorted(set(self.preprocess) | set(other.preprocess)):
                mine, theirs = self.preprocess.get(key), other.preprocess.get(key)
                if _normalise(mine) != _normalise(theirs):
                    out.append(f"preprocess.{key}: bundle expects {mine!r}, input has {theirs!r}")
        return out


def _t_rule(value: Any) -> dict | None:
    """`T_rule` of bundle.json checked: None, or {"min": int >= 1, "multiple": int >= 1}."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) != {"min", "multiple"} or \
            not all(isinstance(value[k], int) and not isinstance(value[k], bool) and value[k] >= 1 for k in value):
        raise ValueError(f"T_rule must be {{'min': int >= 1, 'multiple': int >= 1}}, got {value!r}")
    return {"min": int(value["min"]), "multiple": int(value["multiple"])}


def _normalise(value: Any) -> Any:
    """Tuples and lists compare equal (JSON round trips turn one into the other)."""
    return json.loads(json.dumps(value, sort_keys=True, default=list))


def _layout_key(layout: str | dict) -> str:
    return layout if isinstance(layout, str) else json.dumps(layout, sort_keys=True)


def _layout_name(layout: str | dict) -> str:
    return layout if isinstance(layout, str) else str(layout.get("name", "<user layout>"))


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_entry(path: str | Path) -> dict[str, Any]:
    """The `files` entry of one file: sha256 and size in bytes."""
    return {"sha256": sha256_file(path), "bytes": Path(path).stat().st_size}


def write_bundle_json(bundle_dir: str | Path, data: Mapping[str, Any], *, rehash: bool = True) -> dict[str, Any]:
    """Write `bundle.json` atomically; with `rehash`, `files` is recomputed from the files `models`/`checkpoint` name.

    Args:
        bundle_dir: The bundle folder (must exist and hold the files named).
        data: The bundle dict; `format` is set to `BUNDLE_FORMAT`.
        rehash: Recompute `files` (sha256 + bytes) for every file named in `models` and `checkpoint`.

    Returns:
        The dict written.
    """
    bundle_dir = Path(bundle_dir)
    out = dict(data)
    out["format"] = BUNDLE_FORMAT
    _check_keys(out, bundle_dir / BUNDLE_JSON)
    if rehash:
        names = sorted(_named_files(out))
        out["files"] = {name: file_entry(bundle_dir / name) for name in names}
    text = json.dumps(out, indent=2, sort_keys=False, allow_nan=False) + "\n"
    atomic_write_bytes(bundle_dir / BUNDLE_JSON, text.encode("utf-8"))
    return out


def _named_files(data: Mapping[str, Any]) -> set[str]:
    """Every file `bundle.json` names: model graphs, the checkpoint, a fused bundle's stream checkpoints."""
    streams = (data.get("fusion") or {}).get("streams") or []
    return {*data.get("models", {}).values(), *([data["checkpoint"]] if data.get("checkpoint") else []),
            *(s["checkpoint"] for s in streams if s.get("checkpoint"))}


@dataclass
class BundleInfo:
    """A verified bundle.

    Attributes:
        root: The bundle folder.
        data: The parsed `bundle.json`.
    """

    root: Path
    data: dict[str, Any]

    @property
    def input(self) -> InputSpec:
        return InputSpec.from_dict(self.data["input"])

    @property
    def labels(self) -> list[str]:
        return list(self.data["labels"])

    @property
    def num_classes(self) -> int:
        return int(self.data["output"]["num_classes"])

    @property
    def temperature(self) -> float:
        return float(self.data.get("temperature") or 1.0)

    @property
    def precisions(self) -> list[str]:
        """Precisions the bundle has a model file for."""
        return [p for p in PRECISIONS if p in self.data["models"]]

    @property
    def checkpoint_path(self) -> Path | None:
        """The single network's checkpoint (None for fused bundles, see `fusion`)."""
        name = self.data.get("checkpoint")
        return self.root / name if name else None

    @property
    def fusion(self) -> dict[str, Any] | None:
        """A fused bundle's `fusion` entry (window form and streams), or None for a single network."""
        return self.data.get("fusion") or None

    @property
    def has_checkpoints(self) -> bool:
        """True when the torch engine can rebuild the network: `model.pt`, or every stream's checkpoint."""
        if self.fusion:
            return all(s.get("checkpoint") for s in self.fusion["streams"])
        return self.checkpoint_path is not None

    def model_path(self, precision: str = "fp32") -> Path:
        """The ONNX file of a precision; BundleMismatchError naming the available ones when absent."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        name = self.data["models"].get(precision)
        if name is None:
            hint = {"int8": "sttr calibrate BUNDLE --data SOURCE", "fp16": "sttr calibrate BUNDLE --fp16 (or "
                    "sttr export --fp16)"}.get(precision, "sttr export")
            raise BundleMismatchError(f"bundle {self.root} has no {precision} model (it has {self.precisions}); "
                                      f"make one with `{hint}`")
        return self.root / name

    def single_person_path(self, precision: str = "fp32") -> Path | None:
        """The single-person graph of a precision (`models['p1.<precision>']`, for windows whose person slots other
        than slot 0 are all zero), or None when the bundle has none (older bundles, `--dynamic-time`)."""
        name = self.data["models"].get(f"p1.{precision}")
        return self.root / name if name else None

    def file_sha256(self, name: str) -> str:
        return str(self.data["files"][name]["sha256"])

    def check_input(self, spec: InputSpec) -> None:
        """Raise BundleMismatchError listing every field where `spec` differs from the bundle's input spec."""
        diffs = self.input.differences(spec)
        if diffs:
            raise BundleMismatchError(f"input does not match bundle {self.root}: " + "; ".join(diffs))

    def check_window_shape(self, shape: tuple[int, ...]) -> None:
        """Raise BundleMismatchError when an (N, C, T, V, M) array shape does not fit the bundle."""
        spec = self.input
        if len(shape) != 5:
            raise BundleMismatchError(f"expected windows (N, C, T, V, M) for bundle {self.root}, got shape {shape}")
        got = InputSpec(C=shape[1], T=shape[2], V=shape[3], M=shape[4], layout=spec.layout)
        self.check_input(got)


def read_bundle(bundle_dir: str | Path, *, verify: bool = True) -> BundleInfo:
    """Read `bundle.json`; with `verify`, check the format, that every listed file exists with its sha256 and that
    the input spec matches the ONNX graphs' input (when the onnx package is installed).

    Raises:
        FileNotFoundError: the folder or its `bundle.json` does not exist.
        BundleIntegrityError: unknown format, missing or unknown keys, entries of the wrong type (labels that are
            not one string per logit, a temperature that is not a positive number), a missing file or a changed
            file (names the file and both hashes).
        BundleMismatchError: `input` (C, T, V, M) differs from a graph's input shape (names the axes).
    """
    root = Path(bundle_dir)
    path = root / BUNDLE_JSON
    if root.is_file():
        raise FileNotFoundError(f"{root} is a file; expected a bundle folder (one holding {BUNDLE_JSON}, made by "
                                f"`sttr export`)" + (f": {root.parent}?" if (root.parent / BUNDLE_JSON).is_file()
                                                      else ""))
    if not path.is_file():
        raise FileNotFoundError(f"{root} is not a bundle: {path} does not exist (make one with `sttr export`)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleIntegrityError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise BundleIntegrityError(f"{path}: format {got!r} is not {BUNDLE_FORMAT!r}")
    _check_keys(data, path)
    missing = [k for k in _REQUIRED_KEYS if k not in data]
    if missing:
        raise BundleIntegrityError(f"{path}: missing key(s) {missing}")
    _check_values(data, path)
    info = BundleInfo(root, data)
    if verify:
        _verify_files(info)
        _verify_graph_input(info)
    return info


def _check_values(data: Mapping[str, Any], path: Path) -> None:
    """BundleIntegrityError naming the first entry of bundle.json (which has no checksum of its own) whose type or
    value is wrong: labels that do not match the logits, a temperature that is not a positive number (0 was read as
    1.0 and a negative one turned the probabilities upside down), `models` or `files` of the wrong form."""
    def bad(what: str, got: Any) -> BundleIntegrityError:
        return BundleIntegrityError(f"{path}: {what}, got {got!r}"[:600])

    if not isinstance(data["input"], Mapping):
        raise bad("'input' must be a map (C, T, V, M, layout, fps, preprocess)", data["input"])
    output = data["output"]
    k = output.get("num_classes") if isinstance(output, Mapping) else None
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise bad("'output' must be a map with 'num_classes', a positive integer", output)
    labels = data["labels"]
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise bad("'labels' must be a list of class names (strings)", labels)
    if len(labels) != k:
        raise BundleIntegrityError(f"{path}: {len(labels)} labels for {k} classes (output.num_classes); "
                                   f"expected one label per logit")
    temperature = data.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                                    or not math.isfinite(temperature) or temperature <= 0):
        raise bad("'temperature' must be a positive number (or null for 1)", temperature)
    models = data["models"]
    if not isinstance(models, Mapping) or not all(isinstance(v, str) and v for v in models.values()):
        raise bad("'models' must map each precision to a file name", models)
    files = data["files"]
    if not isinstance(files, Mapping):
        raise bad("'files' must map each file name to {'sha256': ..., 'bytes': ...}", files)
    for name, entry in files.items():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("sha256"), str):
            raise bad(f"files[{name!r}] must be {{'sha256': ..., 'bytes': ...}}", entry)


def _check_keys(data: Mapping[str, Any], path: Path) -> None:
    """BundleIntegrityError naming unknown top-level keys (a misspelt `temperature` would silently be 1.0)."""
    unknown = sorted(k for k in data if k not in KNOWN_KEYS)
    if unknown:
        import difflib

        hints = [f"{k!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(k.lower(), KNOWN_KEYS,
                 n=1)) else repr(k) for k in unknown]
        raise BundleIntegrityError(f"{path}: unknown key(s) {', '.join(hints)}; known keys: {', '.join(KNOWN_KEYS)}")


def _graph_input_shape(path: Path, name: str) -> list[int | str] | None:
    """The static shape of graph input `name` (dims as ints, symbolic ones as their names), or None when the onnx
    package is not installed or the file is no ONNX model (ONNX Runtime reports that when it loads it)."""
    try:
        import onnx
    except ImportError:
        return None
    try:
        graph = onnx.load(str(path), load_external_data=False).graph  # weights stay on disk where external
    except Exception as err:  # noqa: BLE001 - a protobuf DecodeError, or whatever else a foreign file raises
        log.debug("cannot read the graph input of %s: %r", path, err)
        return None
    inputs = [i for i in graph.input if i.name == name] or list(graph.input[:1])
    if not inputs or not inputs[0].type.HasField("tensor_type"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in inputs[0].type.tensor_type.shape.dim]


def _verify_graph_input(info: BundleInfo) -> None:
    """BundleMismatchError naming the axes where `input` in bundle.json differs from an ONNX graph's input (an edited
    bundle.json has no checksum; ONNX Runtime would fail at the first window with INVALID_ARGUMENT)."""
    spec = info.input
    want = {"C": spec.C, "T": spec.T, "V": spec.V, "M": spec.M}
    name = str(info.data["input"].get("name") or "x")
    for file in dict.fromkeys(info.data["models"].values()):
        if not str(file).endswith(".onnx"):
            continue
        shape = _graph_input_shape(info.root / file, name)
        if shape is None:
            continue
        if len(shape) != 5:
            raise BundleMismatchError(f"bundle {info.root}: {file} takes input of shape {shape}, bundle.json says "
                                      f"(N, C, T, V, M)")
        diffs = []
        for axis, got in zip("CTVM", shape[1:]):
            if axis == "T" and want["T"] is None:
                if isinstance(got, int) and got > 0:
                    diffs.append(f"T: bundle.json says any, {file} takes {got}")
            elif isinstance(got, int) and got > 0 and got != want[axis]:
                diffs.append(f"{axis}: bundle.json says {want[axis]}, {file} takes {got}")
        if diffs:
            raise BundleMismatchError(f"bundle {info.root}: bundle.json input does not match {file}'s input: "
                                      + "; ".join(diffs))


def not_a_checkpoint(path: str | Path, what: str = "checkpoint") -> str | None:
    """The error for a folder passed where a checkpoint file is expected (a bundle folder says so, and which verbs
    take bundles), or None when `path` is not a folder."""
    path = Path(path)
    if not path.is_dir():
        return None
    if (path / BUNDLE_JSON).is_file():
        inside = f"; its checkpoint is {path / 'model.pt'}" if (path / "model.pt").is_file() else ""
        return f"{path} is a bundle folder, not a {what} file (bundles are taken by {BUNDLE_VERBS}){inside}"
    return f"{path} is a folder; expected a {what} file (.pt)"


def _verify_files(info: BundleInfo) -> None:
    files = info.data["files"]
    named = _named_files(info.data)
    unlisted = sorted(n for n in named if n not in files)
    if unlisted:
        raise BundleIntegrityError(f"bundle {info.root}: {unlisted} named in bundle.json but without a sha256 entry")
    for name, entry in files.items():
        path = info.root / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise BundleIntegrityError(f"bundle {info.root}: file name {name!r} must be relative to the bundle")
        if not path.is_file():
            raise BundleIntegrityError(f"bundle {info.root}: file {name} is missing (bundle.json lists it)")
        digest = sha256_file(path)
        if digest != entry.get("sha256"):
            raise BundleIntegrityError(f"bundle {info.root}: file {name} changed since the bundle was written "
                                       f"(sha256 {digest[:16]}..., bundle.json says "
                                       f"{str(entry.get('sha256'))[:16]}...)")
    log.debug("bundle %s verified (%d files)", info.root, len(files))
