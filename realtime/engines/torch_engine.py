"""PyTorch backend: the reference path, from the checkpoint stored in the bundle (`model.pt`, or each stream's
checkpoint of a fused bundle).

torch and the network code are imported when the engine is opened, never when `realtime` is imported. On a GPU
batch 1 is replayed from a CUDA graph (captured once, static input/output buffers); other batches run eagerly.
"""
from __future__ import annotations

import importlib
import logging

import numpy as np

from sttr.model.bundle import BundleInfo, BundleMismatchError

from .base import Engine, EngineInfo, check_device, check_threads, missing_dependency

__all__ = ["TorchEngine", "import_torch"]

log = logging.getLogger(__name__)

INSTALL = "pip install 'sttr[torch]'"


def import_torch():
    """`torch`, or ImportError naming the install command."""
    try:
        import torch
    except ImportError as err:
        raise missing_dependency("PyTorch (the torch backend)", INSTALL, err) from err
    return torch


def _load_network(bundle: BundleInfo, device):
    # The fusion module needs torch, so it is resolved at run time, like torch itself: realtime keeps importing only
    # model's numpy modules.
    return importlib.import_module("sttr.model.fusion").load_bundle_network(bundle, device)


class TorchEngine(Engine):
    """The bundle's checkpoint run by PyTorch.

    Args:
        bundle: The verified bundle (must hold its checkpoints: `sttr export` without `--no-checkpoint`).
        precision: `fp32`, or `fp16` on CUDA (INT8 is served by the onnxruntime and tensorrt backends).
        device: `auto` (CUDA when available), `cpu` or `cuda[:N]`.
        cuda_graph: Replay batch 1 from a CUDA graph on GPU.
        threads: torch intra-op threads on CPU (None leaves torch's setting).
    """

    backend = "torch"

    def __init__(self, bundle: BundleInfo, precision: str = "fp32", *, device: str = "auto", cuda_graph: bool = True,
                 threads: int | None = None) -> None:
        super().__init__(bundle, precision)
        if not bundle.has_checkpoints:
            raise BundleMismatchError(f"bundle {bundle.root} has no checkpoint (model.pt) for the torch backend; "
                                      f"export it without --no-checkpoint")
        if precision == "int8":
            raise ValueError("the torch backend runs fp32 or fp16 (on CUDA); use backend='onnxruntime' or "
                             "'tensorrt' for int8")
        threads = check_threads(threads)
        index = check_device(device)
        torch = import_torch()
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
            index = 0 if device == "cuda" else None
        if index is not None:
            if not torch.cuda.is_available():
                raise RuntimeError(f"device {device!r}: this PyTorch ({torch.__version__}) sees no CUDA GPU; use "
                                   f"device='cpu', or install a CUDA build of torch")
            if index >= torch.cuda.device_count():
                raise ValueError(f"device {device!r}: there are {torch.cuda.device_count()} CUDA device(s)")
        self.device = torch.device(device)
        if precision == "fp16" and self.device.type != "cuda":
            raise ValueError("the torch backend runs fp16 only on CUDA; use fp32 on CPU")
        if threads:
            torch.set_num_threads(int(threads))
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self.model = _load_network(bundle, self.device).to(self.dtype)
        self._torch = torch
        self._graph = None
        self._use_graph = bool(cuda_graph and self.device.type == "cuda")

    @property
    def info(self) -> EngineInfo:
        name = f" {self._torch.cuda.get_device_name(self.device)}" if self.device.type == "cuda" else ""
        files = [s["checkpoint"] for s in self.bundle.fusion["streams"]] if self.bundle.fusion else ["model.pt"]
        return self._info(f"{self.device}{name}", " + ".join(files), cuda_graph=self._graph is not None,
                          torch=self._torch.__version__)

    def _capture(self, shape: tuple[int, ...]) -> None:
        torch = self._torch
        static_in = torch.zeros(shape, device=self.device, dtype=self.dtype)
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.no_grad(), torch.cuda.stream(stream):
            for _ in range(3):  # warm up allocations and cuDNN choices outside the graph
                self.model(static_in)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(graph):
            static_out = self.model(static_in)
        self._graph = (graph, static_in, static_out)
        log.info("torch engine: CUDA graph captured for batch 1")

    def _run(self, windows: np.ndarray) -> np.ndarray:
        torch = self._torch
        x = torch.from_numpy(windows)
        if self._use_graph and windows.shape[0] == 1:
            if self._graph is None or tuple(self._graph[1].shape) != windows.shape:
                self._capture(windows.shape)
            graph, static_in, static_out = self._graph
            static_in.copy_(x.to(self.device, non_blocking=False).to(self.dtype))
            graph.replay()
            return static_out.float().cpu().numpy()
        with torch.no_grad():
            return self.model(x.to(self.device).to(self.dtype)).float().cpu().numpy()

    def _close(self) -> None:
        self._graph = None
        self.model = None
