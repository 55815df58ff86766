"""Spatial-attention heatmaps (the seed paper's V x V maps): PNG per layer and head, optional GIF over frames.

A map row is a query joint i, a column a key joint j; entry (i, j) is how much joint i attends to joint j
(rows sum to 1). Maps are averaged over the frames of the window (or shown per frame in the GIF).
matplotlib (Agg) and Pillow are imported inside the functions that need them.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import torch

from .sttr import STTR

__all__ = ["attention_maps", "render_heatmap", "render_attention"]
log = logging.getLogger(__name__)


def attention_maps(model: STTR, sample: np.ndarray | torch.Tensor) -> list[np.ndarray]:
    """Spatial attention of one window (C, T, V, M): per SSA layer an array (M, T', H, V, V) float32."""
    x = sample.float() if isinstance(sample, torch.Tensor) else torch.from_numpy(np.array(sample, dtype=np.float32))
    if x.dim() != 4:
        raise ValueError(f"expected one sample (C, T, V, M), got shape {tuple(x.shape)}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            _, maps = model(x.unsqueeze(0).to(next(model.parameters()).device), return_attention=True)
    finally:
        model.train(was_training)
    if not maps:
        raise ValueError(f"the model has no spatial attention (attention={model.config.attention!r})")
    return [m[0].cpu().numpy() for m in maps]


def render_heatmap(weights: np.ndarray, path: str | Path, joints: list[str] | None = None, title: str = "",
                   size_px: int = 640) -> Path:
    """Write one (V, V) map as a size_px x size_px PNG (viridis, joint names on the axes).

    `weights` is any (V, V) array of finite numbers (e.g. `attention_maps(...)[layer][person, t, head]`, or its mean
    over frames and heads); the file's folder must exist.
    """
    weights = _check_map(weights)
    if size_px < 1:
        raise ValueError(f"image size must be at least 1 pixel, got {size_px}")
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    image = _figure_image(weights, joints, title, size_px)
    image.save(path)
    return path


def _check_map(weights) -> np.ndarray:
    """`weights` as a float (V, V) array; ValueError for another shape, non-numbers or NaN/inf."""
    w = weights.detach().cpu().numpy() if isinstance(weights, torch.Tensor) else weights
    try:
        w = np.asarray(w, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"expected an attention map (V, V) of numbers, got {type(weights).__name__} ({err})") from None
    if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] < 1:
        hint = "; average or pick the leading axes first, e.g. maps[layer][person].mean((0, 1))" if w.ndim > 2 else ""
        raise ValueError(f"expected one attention map (V, V), got shape {w.shape}{hint}")
    if not np.isfinite(w).all():
        raise ValueError("the attention map holds NaN or infinite values (was the input window finite?)")
    return w


def _figure_image(weights: np.ndarray, joints: list[str] | None, title: str, size_px: int):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from PIL import Image

    v = weights.shape[-1]
    dpi = 100
    fig = plt.figure(figsize=(size_px / dpi, size_px / dpi), dpi=dpi)
    ax = fig.add_axes((0.22, 0.22, 0.7, 0.7))
    ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=max(float(weights.max()), 1e-8))
    labels = joints if joints and len(joints) == v else [str(i) for i in range(v)]
    ax.set_xticks(range(v), labels, rotation=90, fontsize=max(4, 200 // v))
    ax.set_yticks(range(v), labels, fontsize=max(4, 200 // v))
    ax.set_xlabel("key joint j")
    ax.set_ylabel("query joint i")
    ax.set_title(title, fontsize=9)
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    plt.close(fig)
    return Image.fromarray(rgba[..., :3].copy())


def render_attention(model: STTR, sample: np.ndarray | torch.Tensor, out_dir: str | Path, person: int = 0,
                     gif: bool = False, size_px: int = 640, fps: float = 8.0) -> list[Path]:
    """Render every SSA layer/head of `sample` (C, T, V, M) for one person slot; returns the files written.

    Files: `layer{L}_head{H}.png` (mean over frames), `layer{L}_mean.png` (mean over heads) and, with `gif`,
    `layer{L}.gif` (head mean, one frame per attended frame).
    """
    out_dir = Path(out_dir)
    if size_px < 1:
        raise ValueError(f"image size must be at least 1 pixel, got {size_px}")
    if gif and not (isinstance(fps, (int, float)) and fps > 0):
        raise ValueError(f"gif fps must be a positive number, got {fps!r}")
    maps = attention_maps(model, sample)
    if not 0 <= person < maps[0].shape[0]:
        raise ValueError(f"person must be in [0, {maps[0].shape[0]}), got {person}")
    created = not out_dir.exists()  # the folder is made only once there is something to write, removed on failure
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        written = _render_maps(model, maps, out_dir, person, gif, size_px, fps)
    except BaseException:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    log.debug("wrote %d attention images to %s", len(written), out_dir)
    return written


def _render_maps(model: STTR, maps: list[np.ndarray], out_dir: Path, person: int, gif: bool, size_px: int,
                 fps: float) -> list[Path]:
    joints = list(model.layout.joints)
    units = [i for i, b in enumerate(model.blocks) if type(b.gcn).__name__ == "SpatialAttention"]
    written: list[Path] = []
    for unit, layer_maps in zip(units, maps):
        w = layer_maps[person]  # (T', H, V, V)
        name = f"layer{unit + 2 if model.stem_gcn is not None else unit + 1}"
        for h in range(w.shape[1]):
            written.append(render_heatmap(w[:, h].mean(0), out_dir / f"{name}_head{h}.png", joints,
                                          f"{name} head {h} (mean over {w.shape[0]} frames)", size_px))
        written.append(render_heatmap(w.mean((0, 1)), out_dir / f"{name}_mean.png", joints,
                                      f"{name} mean over heads", size_px))
        if gif:
            frames = [_figure_image(w[t].mean(0), joints, f"{name} frame {t}", size_px) for t in range(w.shape[0])]
            path = out_dir / f"{name}.gif"
            frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0)
            written.append(path)
    return written
