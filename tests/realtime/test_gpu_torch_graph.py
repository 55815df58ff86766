"""The torch backend's batch-1 CUDA graph (TorchEngine._capture): what it records must be the plain network.

In eval mode under no_grad, STTR checks its input (`bool(isfinite(x).all())`) and skips all-zero person slots
(`bool(present.all())`, `present.nonzero()`). Inside a CUDA graph capture those are host syncs, which CUDA refuses
while a stream is capturing; and the engine captures on a zero window, so even a capture that went through would
replay the "second person absent" shortcut for every later window. The CPU test below plays a capture (it makes
`torch.cuda.is_current_stream_capturing()` say True and every host sync fail): `model/sttr.py` treats a capture
like tracing. The GPU test runs the real engine.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def _nano():
    from sttr.model.config import preset
    from sttr.model.sttr import STTR

    torch.manual_seed(0)
    return STTR(preset("nano", layout="openpose18", in_channels=3, num_joints=18, num_persons=2,
                       num_classes=5)).eval()


def _windows(T: int = 16):
    rng = np.random.default_rng(0)
    two = torch.from_numpy(rng.normal(size=(1, 3, T, 18, 2)).astype(np.float32))
    one = two.clone()
    one[..., 1] = 0
    return torch.zeros_like(two), one, two


def test_forward_during_a_capture_makes_no_host_sync_and_computes_every_slot(monkeypatch):
    model = _nano()
    zeros, one, two = _windows()
    with torch.enable_grad():  # the plain network (no shortcut, no checks)
        want = [model(x).detach() for x in (zeros, one, two)]

    def sync(*args, **kwargs):
        raise RuntimeError("operation not permitted when stream is capturing")

    with monkeypatch.context() as capture, torch.no_grad():
        capture.setattr(torch.cuda, "is_available", lambda: True)
        capture.setattr(torch.cuda, "is_current_stream_capturing", lambda: True)
        for name in ("__bool__", "nonzero", "item", "tolist"):
            capture.setattr(torch.Tensor, name, sync)
        got = [model(x) for x in (zeros, one, two)]
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
def test_torch_engine_batch1_graph_matches_eager_on_one_and_two_person_windows(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from sttr.realtime.engines import open_engine

    from ._bundle import make_nano_bundle

    bundle = make_nano_bundle(tmp_path)
    engine = open_engine(bundle, backend="torch", precision="fp32", device="cuda", cuda_graph=True)
    eager = open_engine(bundle, backend="torch", precision="fp32", device="cuda", cuda_graph=False)
    _, one, two = (x.numpy() for x in _windows(64))
    for x in (two, one, two):  # the graph is captured at the first call, then replayed
        np.testing.assert_allclose(engine.run(x), eager.run(x), rtol=1e-4, atol=1e-4)
    assert engine.info.details["cuda_graph"]
