"""Wiring shared by ``sttr-live`` and ``sttr bench live``: names and paths → engine, model spec, source, pipeline.

``open_model`` reads a bundle (``sttr.model.bundle``) and opens its engine (``sttr.realtime.engines``);
``model_spec`` turns the bundle's input spec into the pipeline's ModelSpec (with the bundle's preprocessing);
``open_live_source`` opens a pose source with the coordinates the model's layout needs; ``LayoutAdapter`` maps any
source layout to the model's, chosen from the first frame. numpy only at import time.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sttr.model.skeleton import get_layout

from .pipeline import ModelSpec

__all__ = ["open_model", "model_spec", "open_live_source", "LayoutAdapter", "PacedSource"]

logger = logging.getLogger(__name__)


def model_spec(bundle: Any, backend: str, window: int | None = None) -> ModelSpec:
    """The pipeline's ModelSpec from a ``BundleInfo``.

    Args:
        bundle: ``read_bundle(...)`` result.
        backend: the engine backend name carried in messages.
        window: raw frames per window (history); None uses the model's T. Shorter windows are padded by the
            bundle's preprocessing (loop padding) up to the model's T.

    Raises:
        ValueError: a window longer than the model's T, or a bundle without preprocessing whose channels differ
            from its layout's.
    """
    from sttr.model.preprocess import PreprocessSpec

    spec_in = bundle.input
    layout = get_layout(spec_in.layout)
    pre = PreprocessSpec.from_dict(spec_in.preprocess) if spec_in.preprocess else None
    model_t = spec_in.T or (pre.window if pre is not None else None)
    if pre is not None and model_t is not None and pre.window != model_t:  # exported at another T than trained
        pre = PreprocessSpec.from_dict({**pre.to_dict(), "window": model_t})
    frames = int(window or model_t or 0)
    if frames < 1:
        raise ValueError(f"bundle {bundle.root}: the model accepts any T; give --window N (frames per window)")
    if model_t is not None and frames > model_t:
        raise ValueError(f"--window {frames} is longer than the model's T = {model_t} frames")
    if pre is None and (layout.num_channels != spec_in.C or (model_t is not None and frames != model_t)):
        raise ValueError(f"bundle {bundle.root} has no preprocessing spec, so the raw window must already be "
                         f"(C={spec_in.C}, T={model_t}); layout {layout.name!r} gives C={layout.num_channels}")
    fps = spec_in.fps or (pre.fps if pre is not None else None)
    model = bundle.data.get("model") or {}
    name = str(model.get("name") or (model.get("meta") or {}).get("name")
               or Path(str(model.get("checkpoint_file") or "")).stem or bundle.root.name or "sttr")
    return ModelSpec(channels=layout.num_channels, frames=frames, joints=spec_in.V, persons=spec_in.M,
                     layout=layout.name, fps=fps, labels=tuple(bundle.labels), name=name, backend=backend,
                     channel_names=tuple(layout.channels), preprocess=pre.apply if pre is not None else None)


def open_model(bundle_dir: str | Path, backend: str = "auto", precision: str = "fp32",
               window: int | None = None, threads: int | None = None,
               warmup: bool = True, max_batch: int | None = None) -> tuple[Any, ModelSpec]:
    """Read and verify a bundle, open its engine (warmed up), and describe its input.

    ``threads`` sets the CPU threads of the onnxruntime and torch backends (None: their default, every core); on a
    small CPU the pose estimator needs a core too, so live runs default to 1. TensorRT ignores it. ``max_batch`` sizes
TensorRT's optimization profile (the multi-stream service batches windows); the other backends take any batch.

    Raises:
        FileNotFoundError: no bundle there; BundleError: a corrupt or mismatched bundle; ImportError: the backend's
            runtime is not installed (the message names the install command).
    """
    from sttr.model.bundle import read_bundle

    bundle = read_bundle(bundle_dir)
    from .engines import open_engine

    if backend == "auto":  # resolve first, so backend options go only to a backend that takes them
        from .engines import auto_backend_order

        order = auto_backend_order(bundle, precision)
        backend = order[0] if order else backend
    opts: dict[str, Any] = {"threads": threads} if threads and backend in ("onnxruntime", "torch") else {}
    if max_batch and backend == "tensorrt":
        opts["max_batch"] = int(max_batch)
    engine = open_engine(bundle, backend=backend, precision=precision, **opts)
    spec = model_spec(bundle, str(getattr(engine.info, "backend", backend)), window)
    if warmup and hasattr(engine, "warmup"):
        engine.warmup()
    return engine, spec


def open_live_source(kind: str, target: Any, model_layout: str, *, realtime: bool = True,
                     pose_model: str | None = None, keep_image: bool = False, **options: Any) -> Any:
    """Open a pose source (``realtime.sources.open_source``) with what the model's layout needs.

    Camera / video / URL sources run MediaPipe with world (3D) or image (2D) coordinates as the adapter from
    ``mediapipe33`` to ``model_layout`` requires. File sources are read as fast as they come with
    ``realtime=False`` (every frame, none dropped) or paced at their own rate with ``realtime=True``.
    """
    from .adapters import coordinates_for
    from .sources import open_source

    if kind in ("camera", "video", "url"):
        options.setdefault("coordinates", coordinates_for("mediapipe33", model_layout))
        options.setdefault("keep_image", keep_image)
        if pose_model:
            options.setdefault("model_path", pose_model)
        return open_source(kind, target, realtime=realtime if kind == "video" else True, **options)
    if kind == "openpose":
        options.setdefault("follow", False)
        source = open_source(kind, target, **options)
        # a finished folder is read as fast as files parse; --realtime plays it at its media time instead
        return PacedSource(source) if realtime and not options["follow"] else source
    if kind == "replay":
        return open_source(kind, target, realtime=realtime, **options)
    return open_source(kind, target, **options)


class PacedSource:
    """Yield a file source's frames at the pace of their media timestamps, restamped on the monotonic clock.

    For sources that read a finished recording as fast as they can (an OpenPose folder): with ``--realtime`` the
    pipeline then sees frames as a camera would deliver them. ``close`` and ``frames_dropped`` pass through.
    """

    def __init__(self, source: Any, speed: float = 1.0) -> None:
        self.source, self.speed = source, float(speed)

    def __iter__(self) -> Any:
        import time
        from dataclasses import replace

        start_wall = start_media = None
        for frame in self.source:
            now = time.monotonic()
            if start_wall is None:
                start_wall, start_media = now, frame.timestamp_ms
            wait = start_wall + (frame.timestamp_ms - start_media) / 1000.0 / self.speed - now
            if wait > 0:
                time.sleep(wait)
            yield replace(frame, timestamp_ms=time.monotonic() * 1e3)

    @property
    def frames_dropped(self) -> int:
        value = getattr(self.source, "frames_dropped", 0)
        return int(value) if isinstance(value, int) else 0

    def close(self) -> None:
        self.source.close()


class LayoutAdapter:
    """SkeletonFrame in any supported source layout → the model's layout (``realtime.adapters``), per layout.

    Args:
        model_layout: the model's layout name.
        image_size: (width, height) when 2D sources give pixels.
    """

    def __init__(self, model_layout: str, image_size: tuple[int, int] | None = None) -> None:
        self.model_layout = get_layout(model_layout).name
        self.image_size = image_size
        self._adapters: dict[str, Any] = {}

    def __call__(self, frame: Any) -> Any:
        adapter = self._adapters.get(frame.layout)
        if adapter is None:
            adapter = self._adapters[frame.layout] = self._make(frame)
        return adapter.frame(frame)

    def _make(self, frame: Any) -> Any:
        from .adapters import adapter_for

        size = self.image_size
        if size is None and frame.image is not None and frame.num_dims == 2 and frame.joints.size \
                and float(abs(frame.joints).max()) > 1.5:
            size = (frame.image.shape[1], frame.image.shape[0])
        adapter = adapter_for(frame.layout, self.model_layout, image_size=size)
        logger.info("layout adapter %s -> %s", frame.layout, self.model_layout)
        return adapter
