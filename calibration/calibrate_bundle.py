"""`calibrate_bundle`: INT8 (Q/DQ), FP16 and temperature calibration of an existing bundle on real windows.

Windows are split by source clip into a calibration part (activation ranges) and a held-out part (agreement with
FP32, accuracy change, logit error, temperature). The bundle is updated atomically: new model files are written
under temporary names and moved into place, then `bundle.json`; when a floor on agreement is not met nothing moves.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sttr.model.atomic import default_file_mode
from sttr.model.bundle import BundleInfo, read_bundle, write_bundle_json

from .bundle_writer import tool_versions
from .calibration_data import WindowSet, load_windows, split_holdout
from .fp16 import convert_to_fp16
from .int8 import CalibrationMethodName, quantize_int8
from .parity import compare_logits, onnx_logits
from .single_person import p1_key, zero_other_persons
from .temperature import temperature_report

__all__ = ["CalibrateOptions", "AgreementFloorError", "calibrate_bundle"]

log = logging.getLogger(__name__)


class AgreementFloorError(RuntimeError):
    """A calibrated model agrees with FP32 less often than the floor asked for; the bundle was left unchanged."""


@dataclass
class CalibrateOptions:
    """Settings of `sttr calibrate`.

    Attributes:
        data: Real windows (see `calibration_data.load_windows`).
        samples: Calibration windows used for the activation ranges (the rest of the calibration clips is unused).
        method: `minmax`, `entropy` or `percentile`.
        min_agreement: Floor on top-1 agreement with FP32 on the held-out windows (0 disables).
        int8: Write `model.int8.onnx`.
        fp16: Write `model.fp16.onnx`.
        temperature: Fit the temperature on the held-out FP32 logits (needs labels).
        holdout: Fraction of the clips held out from calibration.
        symmetric_activations: Symmetric int8 activations (TensorRT needs them).
        seed: Seed of the clip split.
    """

    data: str | Path
    samples: int = 256
    method: CalibrationMethodName = "minmax"
    min_agreement: float = 0.0
    int8: bool = True
    fp16: bool = False
    temperature: bool = True
    holdout: float = 0.5
    symmetric_activations: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if int(self.samples) < 1:
            raise ValueError(f"samples (--samples) must be >= 1, got {self.samples}")
        if not 0.0 <= float(self.min_agreement) <= 1.0:
            raise ValueError(f"min_agreement (--min-agreement) is a fraction in [0, 1] (0.99 = 99 %), got "
                             f"{self.min_agreement}")
        if not 0.0 < float(self.holdout) < 1.0:
            raise ValueError(f"holdout (--holdout) is the fraction of clips held out, in (0, 1), got {self.holdout}")


def _floor(report: dict[str, Any], floor: float, what: str) -> None:
    agreement = report["top1_agreement"]
    if agreement + 1e-12 < floor:
        raise AgreementFloorError(
            f"{what} top-1 agreement with FP32 is {agreement:.4f} on {report['n']} held-out windows, below the floor "
            f"{floor:.4f} by {floor - agreement:.4f} ({report['top1_disagreements']} windows disagree); the bundle "
            f"was left unchanged")


def _load(info: BundleInfo, opts: CalibrateOptions) -> tuple[WindowSet, WindowSet]:
    spec = info.input
    T = spec.T or int(spec.preprocess.get("window") or 300)
    ws = load_windows(opts.data, T=T, M=spec.M, preprocess=spec.preprocess, C=spec.C, V=spec.V)
    info.check_window_shape(ws.windows.shape)
    _warn_on_normalisation(info, opts.data)
    cal, held = split_holdout(ws, opts.holdout, opts.seed)
    if len(cal) > opts.samples:
        cal = cal.subset(np.unique(np.linspace(0, len(cal) - 1, opts.samples).round().astype(np.int64)))
    elif len(cal) < opts.samples:
        log.warning("--samples %d: the data gives %d calibration windows (%d more held out); calibrating on %d",
                    opts.samples, len(cal), len(held), len(cal))
    log.info("calibration: %d windows, held out: %d windows (%s)", len(cal), len(held), ws.source)
    return cal, held


def _warn_on_normalisation(info: BundleInfo, data: str | Path) -> None:
    """A generated split made otherwise than the model's training data calibrates the wrong ranges (eval warns too)."""
    from sttr.training.evaluate import normalisation_differences
    from sttr.training.feeder import read_meta

    path = Path(data)
    folder = path.parent if path.is_file() else path
    split = path.name[:-len("_data.npy")] if path.name.endswith("_data.npy") else None
    metas = [folder / f"{split}_meta.json"] if split else sorted(folder.glob("*_meta.json"))[:1]
    if not metas or not metas[0].is_file():
        return
    try:
        made = dict(read_meta(metas[0]).preprocess or {})
    except (ValueError, OSError):
        return  # the data loader names a broken file
    differ = normalisation_differences(info.input.preprocess or {}, made)
    if differ:
        log.warning("%s was normalised otherwise than %s's training data (model vs data: %s): calibrating on it "
                    "fits the wrong value ranges", data, info.root, "; ".join(differ))


def _temperature(logits: np.ndarray, held: WindowSet, num_classes: int) -> dict[str, Any]:
    if not held.has_labels:
        return {"skipped": "the held-out windows have no labels"}
    if held.labels.max() >= num_classes:
        return {"skipped": f"labels up to {int(held.labels.max())} do not fit the model's {num_classes} classes"}
    keep = in_range(logits)
    report = temperature_report(logits[keep], held.labels[keep])
    report["windows_left_out"] = int((~keep).sum())
    return report


def calibrate_bundle(bundle_dir: str | Path, opts: CalibrateOptions) -> dict[str, Any]:
    """Calibrate the bundle in place; returns the new `bundle.json`.

    Raises:
        AgreementFloorError: INT8 or FP16 agreement below `opts.min_agreement` (bundle unchanged).
        BundleIntegrityError / BundleMismatchError: the bundle is damaged or the data does not fit it.
    """
    info = read_bundle(bundle_dir)
    root = info.root
    cal, held = _load(info, opts)
    labels = held.labels if held.has_labels else None
    fp32 = onnx_logits(info.model_path("fp32"), held.windows)
    staged: dict[str, Path] = {}
    reports: dict[str, Any] = {"data": {"source": cal.source, "calibration_windows": len(cal),
                                        "held_out_windows": len(held)}}
    p1 = info.data["models"].get(p1_key("fp32"))
    ranges = cal.windows
    if opts.int8:
        ranges, dropped = in_range_windows(info.model_path("fp32"), cal.windows)
        reports["data"]["ranges_windows_left_out"] = dropped
    try:
        for precision in ("int8", "fp16"):
            if not getattr(opts, precision):
                continue
            report = _make(info.model_path("fp32"), _staged(root, f"model.{precision}.onnx", staged), precision,
                           ranges, held.windows, fp32, labels, opts)
            if p1 is not None:  # the single-person graph, calibrated and checked on windows with slots 1.. zeroed
                one = zero_other_persons(held.windows)
                report["single_person"] = _make(
                    root / p1, _staged(root, f"model.p1.{precision}.onnx", staged), precision,
                    zero_other_persons(ranges), one, onnx_logits(root / p1, one), labels, opts)
            reports[precision] = report
        if opts.temperature:  # fitted where the network answers in its range (see in_range_windows)
            reports["temperature"] = _temperature(fp32, held, info.num_classes)
        reports["min_agreement"] = opts.min_agreement
        return _commit(info, staged, reports)
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)


# a window whose largest |logit| is this many times the median window's drives the network far out of its range
OUT_OF_RANGE_FACTOR = 10.0


def in_range_windows(model: Path, windows: np.ndarray) -> tuple[np.ndarray, int]:
    """The calibration windows without those that drive the FP32 network far out of its range, and how many were
    left out. Where training saw a feature almost constant, a batch norm's variance is ~0 and a window that moves it
    makes activations explode (a trained T-TR on MSR Action3D: logits ~4000 on 5 of 137 windows, ~6 elsewhere);
    INT8 ranges taken over those windows (any method) round every ordinary activation to zero: agreement 10 %, 90 %
    with them left out. The network's answer on such windows is no answer anyway; they stay in the held-out check."""
    logits = onnx_logits(model, windows)
    keep = in_range(logits)
    if keep.all():
        return windows, 0
    peak = np.abs(logits).max(axis=1)
    log.warning("%d of %d calibration windows drive the FP32 network far out of its range (largest |logit| %.3g, "
                "median window %.3g): left out of the INT8 activation ranges and the temperature fit",
                int((~keep).sum()), len(windows), float(peak.max()), float(np.median(peak)))
    return windows[keep], int((~keep).sum())


def in_range(logits: np.ndarray) -> np.ndarray:
    """Mask of the windows whose largest |logit| is within OUT_OF_RANGE_FACTOR of the median window's (all True
    when that would leave none)."""
    peak = np.abs(logits).max(axis=1)
    keep = peak <= OUT_OF_RANGE_FACTOR * max(float(np.median(peak)), 1e-6)
    return keep if keep.any() else np.ones_like(keep)


def _make(src: Path, dst: Path, precision: str, cal: np.ndarray, held: np.ndarray, fp32: np.ndarray, labels,
          opts: CalibrateOptions) -> dict[str, Any]:
    """Write the INT8 or FP16 model of `src` to `dst` and compare it with the FP32 logits on the held-out windows."""
    if precision == "int8":
        report = quantize_int8(src, dst, cal, method=opts.method, symmetric_activations=opts.symmetric_activations)
    else:
        report = convert_to_fp16(src, dst)
    candidate = onnx_logits(dst, held)
    report["held_out"] = compare_logits(fp32, candidate, labels)
    keep = in_range(fp32)
    if not keep.all():  # also where FP32 answers in its range (out of it, its own answer is no answer)
        report["held_out"]["in_range"] = compare_logits(fp32[keep], candidate[keep],
                                                        None if labels is None else labels[keep])
    _floor(report["held_out"], opts.min_agreement, f"{precision.upper()} ({src.name})")
    return report


def _staged(root: Path, name: str, staged: dict[str, Path]) -> Path:
    staged[name] = _temp_path(root, name)
    return staged[name]


def _temp_path(root: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=root)
    os.close(fd)
    return Path(tmp)


def _commit(info: BundleInfo, staged: dict[str, Path], reports: dict[str, Any]) -> dict[str, Any]:
    try:  # before any file moves: a report bundle.json cannot hold (NaN) must leave the bundle as it was
        json.dumps(reports, allow_nan=False)
    except ValueError as err:
        raise ValueError(f"the calibration report holds non-finite numbers ({err}); bundle {info.root} unchanged: "
                         "check the calibration data") from None
    data = dict(info.data)
    data["models"] = dict(data["models"])
    data["calibration"] = dict(data.get("calibration") or {})
    for name, tmp in staged.items():
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, info.root / name)
        precision = "int8" if ".int8." in name else "fp16"
        data["models"][p1_key(precision) if name.startswith("model.p1.") else precision] = name
    for key in ("int8", "fp16", "temperature", "data", "min_agreement"):
        if key in reports:
            data["calibration"][key] = reports[key]
    temp = reports.get("temperature", {})
    if "temperature" in temp:
        data["temperature"] = temp["temperature"]
    data["versions"] = {**data.get("versions", {}), "calibrate": tool_versions()}
    return write_bundle_json(info.root, data)
