"""The two-process set-up from the command line: `sttr-live --publish-skeletons` (pose only) and `sttr serve`."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading

import pytest

zmq = pytest.importorskip("zmq")

from sttr.model.cli.main import main as sttr_main  # noqa: E402
from sttr.realtime.cli import live, serve  # noqa: E402
from sttr.realtime.client import Prediction, Subscriber  # noqa: E402
from sttr.realtime.sources.zmq_skeleton import ZmqSkeletonSource  # noqa: E402

from ._bundle import nano_bundle  # noqa: E402,F401  (session fixture)


def _addr(folder, name: str) -> str:
    """An ipc:// endpoint of this test's own: no free-port race, no stale subscriber of an earlier test."""
    return f"ipc://{folder / name}.ipc"


def test_publish_skeletons_sends_an_openpose_folder_frame_by_frame(shared_data, capsys, tmp_path):
    addr = _addr(tmp_path, "skel")
    received: list = []
    with ZmqSkeletonSource(addr, timeout_s=10.0) as sub:  # connected before the publisher binds: it waits for us
        reader = threading.Thread(target=lambda: received.extend(
            item for _, item in zip(range(40), sub.iter_with_stream())))
        reader.start()
        rc = live.main(["--openpose-dir", str(shared_data / "openpose" / "coco18_clean_and_jerk"),
                        "--image-size", "340", "256", "--publish-skeletons", addr, "--stream", "cj", "--fast",
                        "--max-frames", "40", "--wait-subscriber", "10"])
        reader.join(15.0)
    err = capsys.readouterr().err
    assert rc == 0 and "frames 40" in err and "sent 40" in err, err
    assert [stream for stream, _ in received] == ["cj"] * 40
    frames = [frame for _, frame in received]
    assert [f.index for f in frames] == list(range(40))
    assert all(f.layout == "openpose18" and f.joints.shape[1:] == (18, 2) for f in frames)
    assert 0.0 <= min(float(f.joints.min()) for f in frames) and max(float(f.joints.max()) for f in frames) <= 1.0


@pytest.mark.parametrize("extra, expected", [(["--show"], "--show does not go with --publish-skeletons"),
                                             (["--stream", "bad stream"], "--stream")])
def test_publish_skeletons_refuses_what_it_cannot_do(shared_data, capsys, tmp_path, extra, expected):
    rc = live.main(["--openpose-dir", str(shared_data / "openpose" / "coco18_swimming"), "--publish-skeletons",
                    _addr(tmp_path, "skel"), "--wait-subscriber", "0", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("sttr-live: error:") and expected in err[-1]


def test_publish_skeletons_on_a_busy_port_names_its_own_flag(shared_data, capsys):
    blocker = zmq.Context.instance().socket(zmq.PUB)
    blocker.setsockopt(zmq.LINGER, 0)
    port = blocker.bind_to_random_port("tcp://127.0.0.1")
    try:
        rc = live.main(["--openpose-dir", str(shared_data / "openpose" / "coco18_swimming"), "--publish-skeletons",
                        f"tcp://127.0.0.1:{port}", "--wait-subscriber", "0"])
    finally:
        blocker.close(0)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "already in use" in err[-1] and f"--publish-skeletons tcp://127.0.0.1:{port + 1}" in err[-1]
    assert "--pub " not in err[-1]


def test_wait_subscriber_needs_publish_skeletons(capsys):
    assert live.main(["--wait-subscriber", "3", "--no-pub"]) == 2
    assert "--wait-subscriber goes with --publish-skeletons" in capsys.readouterr().err


def test_serve_is_a_verb_with_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        sttr_main(["serve", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--skeleton-sub ADDR" in out and "--max-batch" in out and "--publish-skeletons" in out


@pytest.mark.parametrize("args, expected", [
    (["--max-batch", "0"], "--max-batch must be >= 1"),
    (["--smoothing", "1.5"], "--smoothing must be in [0, 1)"),
    (["--window", "0"], "--window must be >= 1, got 0"),
    (["--threads", "-2"], "--threads must be >= 0 (0: every core), got -2"),
])
def test_serve_bad_options_are_one_line_errors(capsys, args, expected):
    assert serve.main(["--skeleton-sub", "tcp://127.0.0.1:5570", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sttr serve: error:") and expected in err and len(err.splitlines()) == 1


def test_serve_bad_address_and_missing_bundle_are_one_line_errors(capsys, tmp_path):
    assert serve.main(["--skeleton-sub", "localhost:5570", "--bundle", str(tmp_path)]) == 2
    assert "tcp://127.0.0.1:5555" in capsys.readouterr().err  # says what an address looks like
    assert serve.main(["--skeleton-sub", _addr(tmp_path, "skel"), "--pub", _addr(tmp_path, "pred"), "--bundle",
                       str(tmp_path / "no")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("sttr serve: error:") and "no" in err[-1]


# ---------------------------------------------------------------------- real processes, real bundle
def _spawn(module: str, args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", module, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.mark.slow
def test_two_pose_processes_and_one_service(shared_data, nano_bundle, tmp_path):
    """Two `sttr-live --publish-skeletons` processes (the real OpenPose sequences) feed one `sttr serve` (the nano
    bundle on ONNX Runtime); a subscriber gets each stream's predictions in order; SIGTERM stops the service."""
    skel = {"cj": _addr(tmp_path, "cj"), "swim": _addr(tmp_path, "swim")}
    folders = {"cj": "coco18_clean_and_jerk", "swim": "coco18_swimming"}
    pub_addr, report = _addr(tmp_path, "pred"), tmp_path / "serve.json"
    procs = []
    with Subscriber(pub_addr, topics=["pred."], timeout_s=60.0, strict=True) as sub:
        service = _spawn("sttr.realtime.cli.serve", [
            *[a for addr in skel.values() for a in ("--skeleton-sub", addr)], "--bundle", str(nano_bundle),
            "--backend", "onnxruntime", "--threads", "1", "--max-batch", "4", "--batch-wait-ms", "20",
            "--pub", pub_addr, "--latency-json", str(report)])
        try:
            for name, addr in skel.items():  # they wait for the service's subscription before the first frame
                procs.append(_spawn("sttr.realtime.cli.live", [
                    "--openpose-dir", str(shared_data / "openpose" / folders[name]), "--image-size", "340", "256",
                    "--publish-skeletons", addr, "--stream", name, "--realtime", "-q",
                    "--wait-subscriber", "60"]))  # the service loads its model first, slower on a busy machine
            for proc in procs:
                _, err = proc.communicate(timeout=120)
                assert proc.returncode == 0, err
            assert service.poll() is None, service.communicate()[1]
            received = [sub.recv(10.0)]
            while True:  # the windows still in flight, then quiet
                try:
                    received.append(sub.recv(3.0))
                except TimeoutError:
                    break
            service.send_signal(signal.SIGTERM)
            _, err = service.communicate(timeout=30)
        finally:
            for proc in [service, *procs]:
                if proc.poll() is None:
                    proc.kill()
    assert service.returncode == 0 and "Traceback" not in err, err
    assert "engine calls" in err and "p99" in err
    for name in skel:
        preds = [m for m in received if isinstance(m, Prediction) and m.stream == name]
        assert len(preds) >= 20, (name, len(preds))  # windows every 8 frames after the first 64
        assert [p.seq for p in preds] == list(range(len(preds)))
        last = [p.window.last_frame for p in preds]
        assert last == sorted(set(last))
    stats = json.loads(report.read_text())
    assert stats["streams_seen"] == 2 and stats["bad_messages"] == 0 and stats["errors"] == 0
    assert stats["frames"] == 300 + 382
    print(f"\nsttr serve: batch sizes {stats['batch_sizes']}, mean {stats['mean_batch']:.2f}, "
          f"inference p50 {stats['latency_ms']['inference']['p50']:.1f} ms")
