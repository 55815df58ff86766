"""`export_bundle`: checkpoint -> bundle folder (ONNX + bundle.json), checked against PyTorch before it is written.

The bundle is assembled in a temporary folder next to `out` and moved into place only after the parity check
passed, so a failed export leaves nothing (or the previous bundle, with `overwrite`) behind.
"""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import logging
import math
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sttr.model.atomic import default_file_mode
from sttr.model.bundle import BUNDLE_JSON, InputSpec, write_bundle_json

from .calibration_data import load_windows
from .export_onnx import Exporter, export_onnx
from .fp16 import convert_to_fp16
from .graph_form import export_form
from .model_source import ModelSource, load_model_source
from .parity import compare_logits, float32_noise, onnx_logits, torch_logits
from .single_person import P1_FILE, export_single_person, p1_key, supports_single_person, zero_other_persons

__all__ = ["ExportOptions", "ParityError", "export_bundle", "tool_versions", "synthetic_windows", "check_parity"]

log = logging.getLogger(__name__)

_TOOLS = ("sttr", "torch", "onnx", "onnxscript", "onnxruntime", "onnxruntime-gpu", "numpy", "tensorrt")


class ParityError(RuntimeError):
    """An exported model does not reproduce PyTorch within tolerance."""


@dataclass
class ExportOptions:
    """Settings of `sttr export`.

    Attributes:
        window: T of the exported graph (default: the checkpoint's preprocess window).
        persons: M (must equal the model's person slots).
        opset: ONNX opset (>= 17).
        exporter: `auto`, `dynamo` or `legacy`.
        dynamic_time: Leave T dynamic in the graph.
        fp16: Also write `model.fp16.onnx`.
        data: Real windows for the parity check (see `calibration_data.load_windows`); None: synthetic windows.
        samples: At most this many parity windows.
        atol: Absolute logit tolerance of the parity check.
        rtol: Tolerance relative to the largest reference logit.
        include_checkpoint: Store the checkpoint as `model.pt` (needed by the torch engine).
        single_person: Also write `model.p1.onnx`, the graph for windows with only slot 0 present (fixed T only).
        overwrite: Replace an existing bundle folder (one holding bundle.json) or an empty folder; files a user
            added to it (not made by export/calibrate) are carried into the new bundle.
    """

    window: int | None = None
    persons: int | None = None
    opset: int = 18
    exporter: Exporter = "auto"
    dynamic_time: bool = False
    fp16: bool = False
    data: str | Path | None = None
    samples: int = 64
    atol: float = 1e-3
    rtol: float = 1e-4
    include_checkpoint: bool = True
    overwrite: bool = False
    single_person: bool = True

    def __post_init__(self) -> None:
        for name in ("window", "persons"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise ValueError(f"export {name} must be >= 1 (or left out for the checkpoint's), got {value}")
        if int(self.samples) < 1:
            raise ValueError(f"export samples must be >= 1, got {self.samples}")


def tool_versions() -> dict[str, str]:
    """Versions of the tools that made a bundle (installed distributions only), plus Python."""
    out = {"python": platform.python_version()}
    for name in _TOOLS:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def synthetic_windows(n: int, C: int, T: int, V: int, M: int, seed: int = 0) -> np.ndarray:
    """Seeded smooth random skeleton-like windows (N, C, T, V, M) float32 (random walks around a random pose)."""
    rng = np.random.default_rng(seed)
    pose = rng.normal(0.0, 0.3, (n, C, 1, V, M))
    walk = np.cumsum(rng.normal(0.0, 0.01, (n, C, T, V, M)), axis=2)
    out = (pose + walk).astype(np.float32)
    out[n // 4:, ..., 1:] = 0.0  # most windows have one person only, as most NTU clips
    return out


def check_parity(reference: np.ndarray, candidate: np.ndarray, labels, *, atol: float, rtol: float,
                 what: str, noise: float | None = None) -> dict[str, Any]:
    """`compare_logits` plus a pass/fail against `atol + rtol * max|reference|` (at least twice `noise`, PyTorch's
    own float32 error on these windows, when given) and full top-1 agreement."""
    report = compare_logits(reference, candidate, labels)
    tol = atol + rtol * float(np.abs(reference).max())
    if noise is not None:
        report["float32_noise"] = noise
        report["max_abs_logit"] = float(np.abs(reference).max())
        tol = max(tol, 2.0 * noise)
    report["tolerance"] = tol
    report["passed"] = bool(report["max_abs_logit_diff"] <= tol and report["top1_agreement"] == 1.0)
    if not report["passed"]:
        raise ParityError(f"{what} does not match PyTorch: max |logit difference| {report['max_abs_logit_diff']:.3g} "
                          f"(tolerance {tol:.3g}), top-1 agreement {report['top1_agreement']:.4f} on {report['n']} "
                          f"windows" + (f" (PyTorch's own float32 error on them: {noise:.3g})" if noise else ""))
    return report


def _parity(model, windows: np.ndarray, candidate: np.ndarray, labels, opts: ExportOptions,
            what: str) -> dict[str, Any]:
    """check_parity of an exported graph's logits against PyTorch's; when that fails, again with the tolerance
    widened to PyTorch's own float32 error on these windows (ill-conditioned logits, e.g. an untrained model on
    synthetic windows, where float32 rounding alone exceeds the fixed tolerance)."""
    reference = torch_logits(model, windows)
    try:
        return check_parity(reference, candidate, labels, atol=opts.atol, rtol=opts.rtol, what=what)
    except ParityError:
        noise = float32_noise(model, windows, reference)
        if noise is None:
            raise
        log.info("%s: PyTorch's own float32 error on these windows is %.3g; tolerance widened to twice that",
                 what, noise)
        return check_parity(reference, candidate, labels, atol=opts.atol, rtol=opts.rtol, what=what, noise=noise)


def _input_spec(src: ModelSource, opts: ExportOptions) -> InputSpec:
    cfg = src.config
    T = opts.window or src.preprocess.get("window")
    if T is None and src.streams:
        trained = sorted({int(s.preprocess.get("window", 300)) for s in src.streams})
        raise ValueError(f"the streams were trained on windows of {trained} frames; give the fused bundle's T "
                         f"with --window")
    T = int(T or 300)
    M = int(opts.persons or cfg.num_persons)
    if M != cfg.num_persons:
        raise ValueError(f"--persons {M} does not match the model, which has {cfg.num_persons} person slots "
                         f"(its input batch-norm is sized for them)")
    for net in src.networks:
        if hasattr(net, "check_length"):
            net.check_length(T)
    preprocess = dict(src.preprocess, window=T, persons=M)
    layout = preprocess.get("layout", cfg.layout)
    rule = time_rule(src.networks) if opts.dynamic_time else None
    return InputSpec(C=src.in_channels, T=None if opts.dynamic_time else T, V=cfg.num_joints, M=M, layout=layout,
                     fps=preprocess.get("fps"), preprocess=preprocess, T_rule=rule)


def time_rule(networks, longest: int = 1024) -> dict[str, int]:
    """The window lengths the networks all take, as bundle.json's `T_rule` ({"min", "multiple"}) for a dynamic-T
    graph. ValueError when they are not of that form (relative temporal positions take one T only, windowed
    attention needs multiples of its blocks at several depths): such a network is exported with a fixed --window."""
    def fits(t: int) -> bool:
        try:
            for net in networks:
                if hasattr(net, "check_length"):
                    net.check_length(t)
        except ValueError:
            return False
        return True

    valid = [t for t in range(1, longest + 1) if fits(t)]
    if not valid:
        raise ValueError(f"--dynamic-time: the network takes no window length up to {longest} frames")
    low = valid[0]
    if len(valid) == 1:
        raise ValueError(f"--dynamic-time: the network takes windows of exactly T={low} frames (relative temporal "
                         f"positions); export it with --window {low}")
    step = math.gcd(*[t - low for t in valid[1:]])
    if valid != list(range(low, longest + 1, step)):
        shown = ", ".join(map(str, valid[:6])) + (", ..." if len(valid) > 6 else "")
        raise ValueError(f"--dynamic-time: the network takes only some window lengths ({shown}), not a simple "
                         f"rule; export it with a fixed --window")
    return {"min": low, "multiple": step}


def _parity_windows(spec: InputSpec, T: int, opts: ExportOptions) -> tuple[np.ndarray, np.ndarray | None, str]:
    if opts.data is None:
        return synthetic_windows(min(opts.samples, 8), spec.C, T, spec.V, spec.M), None, "synthetic"
    ws = load_windows(opts.data, T=T, M=spec.M, preprocess=spec.preprocess, limit=opts.samples, C=spec.C, V=spec.V)
    return ws.windows, ws.labels if ws.has_labels else None, ws.source


def _write_checkpoint(src: ModelSource, dst: Path) -> None:
    if src.kind == "sttr" and src.path is not None:
        shutil.copyfile(src.path, dst)
        return
    from sttr.model.checkpoint import save_checkpoint

    save_checkpoint(dst, src.model, labels=src.labels, preprocess=src.preprocess, meta=src.meta)


def _model_entry(src: ModelSource) -> dict[str, Any]:
    """`bundle.json` `model`: the network's config and origin; for a fusion, one entry per stream."""
    if not src.streams:
        return {"config": src.config.to_dict(), "source": src.kind, "meta": src.meta,
                "checkpoint_file": src.path.name if src.path else None}
    names = [s.path.name if s.path else f"stream{i}" for i, s in enumerate(src.streams, 1)]
    return {"config": None, "source": "fusion", "name": " + ".join(Path(n).stem for n in names),
            "streams": [{"config": s.config.to_dict(), "source": s.kind, "meta": s.meta, "checkpoint_file": n,
                         "weight": w, "preprocess": s.preprocess} for s, n, w in zip(src.streams, names, src.weights)]}


def _fusion_entry(src: ModelSource, window_bones: str, tmp: Path, include_checkpoint: bool) -> dict[str, Any]:
    """`bundle.json` `fusion` (how the torch engine rebuilds the network), writing `stream<i>.pt` when asked."""
    streams = []
    for i, (stream, weight) in enumerate(zip(src.streams, src.weights), 1):
        name = f"stream{i}.pt" if include_checkpoint else None
        if name:
            _write_checkpoint(stream, tmp / name)
        streams.append({"checkpoint": name, "weight": float(weight), "bones": stream.preprocess.get("bones", "none"),
                        "legacy_bones": bool(stream.preprocess.get("legacy_bones", False))})
    return {"window_bones": window_bones, "streams": streams}


def _check_out(out: Path, overwrite: bool, inputs: list[Path]) -> None:
    """FileExistsError unless `out` is free, or (with `overwrite`) a bundle folder or an empty one: --overwrite
    replaces the whole folder, so a run folder (best.pt, log.csv, ...) passed as --out must not be taken for one."""
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} is a file; expected a bundle folder to create")
    entries = sorted(p.name for p in out.iterdir())
    if entries and not (out / BUNDLE_JSON).is_file():
        own = [p for p in inputs if out.resolve() in p.resolve().parents]
        what = f"it holds {own[0].relative_to(out) if own[0].is_relative_to(out) else own[0].name}, the checkpoint " \
            "being exported" if own else f"it holds {', '.join(entries[:3])}{', ...' if len(entries) > 3 else ''}"
        raise FileExistsError(f"{out} is not a bundle folder (no {BUNDLE_JSON}; {what}); --overwrite replaces only "
                              f"a bundle folder: choose another --out")
    if not overwrite:
        raise FileExistsError(f"{out} already exists (pass --overwrite to replace it)")


# what an export or calibration made: replaced by a new export (a stale engine or INT8 graph must not survive)
_MADE_SUFFIXES = (".onnx", ".pt", ".engine", ".plan", ".trt", ".cache", ".tmp")


def _users_files(out: Path, tmp: Path) -> list[Path]:
    """Files a user put into the bundle folder (a model card, notes): not listed in its bundle.json, not made by
    export/calibrate, not in the new bundle. --overwrite carries them into the new bundle instead of deleting them."""
    try:
        listed = set(json.loads((out / BUNDLE_JSON).read_text(encoding="utf-8")).get("files", {}))
    except (OSError, ValueError, AttributeError):  # unreadable bundle.json: the suffix rule alone decides
        listed = set()
    return [p for p in sorted(out.iterdir()) if p.name != BUNDLE_JSON and p.name not in listed
            and not p.name.startswith(".") and p.suffix not in _MADE_SUFFIXES and not (tmp / p.name).exists()]


def _move_into_place(tmp: Path, out: Path, overwrite: bool, inputs: list[Path]) -> None:
    if out.exists():
        _check_out(out, overwrite, inputs)  # again: the folder may have changed during the export
        kept = _users_files(out, tmp)
        for path in kept:
            (shutil.copytree if path.is_dir() else shutil.copy2)(path, tmp / path.name)
        if kept:
            log.info("kept in %s what export did not make: %s", out, ", ".join(p.name for p in kept))
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def export_bundle(checkpoint: str | Path | None, out: str | Path, opts: ExportOptions | None = None,
                  source: ModelSource | None = None) -> dict[str, Any]:
    """Export `checkpoint` (sttr or reference; or `source`, e.g. a fusion of several, see `load_fused_source`) to
    the bundle folder `out`; returns the `bundle.json` written.

    Raises:
        ParityError: ONNX Runtime does not reproduce PyTorch (nothing is written).
        FileExistsError: `out` exists and not `opts.overwrite`; or `out` is a file, or a non-empty folder that is
            not a bundle (no bundle.json), which even `opts.overwrite` does not replace.
    """
    opts = opts or ExportOptions()
    out = Path(out)
    inputs = [Path(checkpoint)] if checkpoint is not None else []
    inputs += [s.path for s in (source.streams if source is not None else []) if s.path is not None]
    _check_out(out, opts.overwrite, inputs)
    src = source or load_model_source(checkpoint)
    spec = _input_spec(src, opts)
    T = int(spec.preprocess["window"])
    windows, labels, data_name = _parity_windows(spec, T, opts)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    os.chmod(tmp, default_file_mode(directory=True))
    try:
        graph_model = export_form(src.model)
        export_info = export_onnx(graph_model, tmp / "model.onnx", example=windows[:2], opset=opts.opset,
                                  exporter=opts.exporter, dynamic_time=opts.dynamic_time)
        parity = _parity(src.model, windows, onnx_logits(tmp / "model.onnx", windows), labels, opts, "model.onnx")
        export_info["parity"] = {"data": data_name, **parity}
        models = {"fp32": "model.onnx"}
        if opts.single_person and supports_single_person(src.model, opts.dynamic_time):
            export_info["single_person"] = _export_p1(src.model, graph_model, tmp, windows, labels, opts)
            models[p1_key("fp32")] = P1_FILE
        calibration: dict[str, Any] = {}
        if opts.fp16:
            calibration["fp16"] = fp16_report(tmp / "model.onnx", tmp / "model.fp16.onnx", windows, labels)
            models["fp16"] = "model.fp16.onnx"
            if p1_key("fp32") in models:
                calibration["fp16"]["single_person"] = fp16_report(
                    tmp / P1_FILE, tmp / "model.p1.fp16.onnx", zero_other_persons(windows), labels)
                models[p1_key("fp16")] = "model.p1.fp16.onnx"
        fusion = _fusion_entry(src, spec.preprocess["bones"], tmp, opts.include_checkpoint) if src.streams else None
        if opts.include_checkpoint and fusion is None:
            _write_checkpoint(src, tmp / "model.pt")
        data = {
            "format": None, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "model": _model_entry(src),
            "input": spec.to_dict(), "output": {"name": "logits", "num_classes": int(src.config.num_classes)},
            "labels": src.labels, "temperature": 1.0, "files": {}, "models": models,
            "checkpoint": "model.pt" if opts.include_checkpoint and fusion is None else None,
            "export": export_info, "calibration": calibration, "versions": tool_versions(),
        }
        if fusion is not None:
            data["fusion"] = fusion
        written = write_bundle_json(tmp, data)
        _move_into_place(tmp, out, opts.overwrite, inputs)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("bundle %s written: %s", out, sorted(written["files"]))
    return written


def _export_p1(model, graph_model, tmp: Path, windows: np.ndarray, labels, opts: ExportOptions) -> dict[str, Any]:
    """Export `model.p1.onnx` from `graph_model` (the export form of `model`) and check it against the full PyTorch
    model on windows with slots 1.. zeroed."""
    one = zero_other_persons(windows)
    info = export_single_person(graph_model, tmp / P1_FILE, example=one[:2], opset=opts.opset, exporter=opts.exporter)
    parity = _parity(model, one, onnx_logits(tmp / P1_FILE, one), labels, opts, P1_FILE)
    return {"file": P1_FILE, "exporter": info["exporter"], "opset": info["opset"], "parity": parity}


def fp16_report(src: Path, dst: Path, windows: np.ndarray, labels) -> dict[str, Any]:
    """Convert to FP16 and compare it with the FP32 ONNX model on `windows`."""
    report = convert_to_fp16(src, dst)
    report["agreement"] = compare_logits(onnx_logits(src, windows), onnx_logits(dst, windows), labels)
    return report
