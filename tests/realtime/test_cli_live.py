"""sttr-live / sttr sub / sttr bench: help, one-line errors that say what to do, imports without torch."""
from __future__ import annotations

import subprocess
import sys

import pytest
import zmq

from sttr.realtime.cli import bench as bench_cli
from sttr.realtime.cli import live, sub


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_live_help_runs():
    res = subprocess.run([sys.executable, "-m", "sttr.realtime.cli.live", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    for flag in ("--camera", "--video", "--openpose-dir", "--skeleton-sub", "--replay", "--bundle", "--checkpoint",
                 "--backend", "--precision", "--stride", "--pub", "--format", "--show", "--record", "--pose-model",
                 "--pose-workers", "--capture-backlog", "--max-frames", "--realtime", "--fast"):
        assert flag in res.stdout, flag


def test_sub_and_bench_help_run(capsys):
    for module_main, argv in ((sub.main, ["--help"]), (bench_cli.main, ["live", "--help"])):
        with pytest.raises(SystemExit) as exc:
            module_main(argv)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--timeout" in out and "--backends" in out and "--out" in out


def test_realtime_imports_without_torch():
    modules = ["sttr.realtime", "sttr.realtime.ring_buffer", "sttr.realtime.scheduler", "sttr.realtime.messages",
               "sttr.realtime.publisher", "sttr.realtime.client", "sttr.realtime.pipeline", "sttr.realtime.latency",
               "sttr.realtime.terminal_view", "sttr.realtime.overlay", "sttr.realtime.session",
               "sttr.realtime.live_bench", "sttr.realtime.default_model", "sttr.realtime.cli.live",
               "sttr.realtime.cli.sub", "sttr.realtime.cli.bench", "sttr.realtime.service",
               "sttr.realtime.skeleton_publisher", "sttr.realtime.cli.serve", "sttr.realtime.cli.pose_publish"]
    code = ("import sys; sys.modules['torch'] = None\n"
            + "".join(f"import {m}\n" for m in modules)
            + "heavy = [m for m in ('torch', 'onnxruntime', 'tensorrt', 'mediapipe', 'cv2') "
              "if sys.modules.get(m) is not None]\n"
            + "assert not heavy, heavy\nprint('ok')\n")
    res = _run(code)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


def test_missing_bundle_is_one_line_error(capsys, tmp_path):
    rc = live.main(["--no-pub", "-q", "--bundle", str(tmp_path / "nope"), "--replay", str(tmp_path / "x.npz")])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("sttr-live: error:") and "nope" in err and len(err.splitlines()) == 1


def test_corrupt_bundle_is_one_line_error(capsys, tmp_path):
    (tmp_path / "bundle.json").write_text('{"format": "something/9"}')
    rc = live.main(["--no-pub", "-q", "--bundle", str(tmp_path), "--replay", str(tmp_path / "x.npz")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "something/9" in err


def test_no_default_model_says_what_to_do(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("STTR_DEFAULT_BUNDLE", raising=False)
    monkeypatch.setattr("sttr.realtime.default_model.DEFAULT_BUNDLE_DIR", None)
    rc = live.main(["--no-pub", "-q", "--replay", str(tmp_path / "x.npz")])
    err = capsys.readouterr().err
    assert rc == 2 and "--bundle" in err and "--checkpoint" in err


def test_port_in_use_is_one_line_error(capsys, tmp_path):
    ctx = zmq.Context.instance()
    blocker = ctx.socket(zmq.PUB)
    blocker.setsockopt(zmq.LINGER, 0)
    port = blocker.bind_to_random_port("tcp://127.0.0.1")
    try:
        rc = live.main(["-q", "--pub", f"tcp://127.0.0.1:{port}", "--bundle", str(tmp_path)])
    finally:
        blocker.close(0)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "already in use" in err and f"--pub tcp://127.0.0.1:{port + 1}" in err


def test_bad_stride_is_rejected(capsys):
    assert live.main(["--stride", "0", "--no-pub"]) == 2
    assert "--stride" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value, expected", [
    ("--window", "-5", "--window must be >= 1, got -5"), ("--window", "0", "--window must be >= 1, got 0"),
    ("--max-frames", "0", "--max-frames must be >= 1, got 0"),
    ("--max-frames", "-1", "--max-frames must be >= 1, got -1"),
    ("--threads", "-2", "--threads must be >= 0 (0: every core), got -2"),
])
def test_counts_out_of_range_are_rejected_at_start(capsys, flag, value, expected):
    assert live.main([flag, value, "--no-pub", "-q", "--replay", "x.npz"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"sttr-live: error: {expected}"


def test_bench_counts_out_of_range_are_rejected(capsys, tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    assert bench_cli.main(["live", "--video", str(video), "--bundle", str(tmp_path), "--window", "0"]) == 2
    assert capsys.readouterr().err.strip() == "sttr bench live: error: --window must be >= 1, got 0"


def test_bad_pose_options_are_rejected(capsys):
    for flag, value in (("--pose-workers", "0"), ("--pose-width", "-5"), ("--capture-backlog", "0")):
        assert live.main([flag, value, "--no-pub"]) == 2
        assert flag in capsys.readouterr().err


def test_sub_times_out_with_a_hint(capsys):
    ctx = zmq.Context.instance()
    probe = ctx.socket(zmq.PUB)
    port = probe.bind_to_random_port("tcp://127.0.0.1")
    probe.close(0)
    rc = sub.main([f"tcp://127.0.0.1:{port}", "--timeout", "0.2"])
    assert rc == 1 and "sttr-live" in capsys.readouterr().err


def test_sub_stream_is_exact_not_a_prefix(capsys):
    import threading

    from sttr.realtime import messages as msg
    from sttr.realtime.publisher import Publisher

    def pred(stream: str) -> dict:
        return msg.prediction_payload(stream=stream, seq=0, window={"first_frame": 0, "last_frame": 7, "frames": 8,
                                                                    "fps": 30.0, "t_first_ms": 0.0, "t_last_ms": 1.0},
                                      persons=[0], topk=[("a", 0, 0.9)], model="m", backend="b", latency_ms={})

    stop = threading.Event()
    with Publisher("tcp://127.0.0.1:*") as pub:
        def send() -> None:
            while not stop.wait(0.01):
                pub.send(b"pred.cam01", pred("cam01"))
                pub.send(b"pred.cam0", pred("cam0"))

        sender = threading.Thread(target=send)
        sender.start()
        try:
            rc = sub.main([pub.addr, "--stream", "cam0", "-n", "3", "--timeout", "10"])
        finally:
            stop.set()
            sender.join()
    lines = capsys.readouterr().out.splitlines()
    assert rc == 0 and len(lines) == 3 and all(line.startswith("[cam0] ") for line in lines), lines


def test_bad_stream_id_is_one_line_error_at_start(capsys):
    rc = live.main(["--stream", "bad.stream", "--no-pub", "-q", "--replay", "x.npz"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("sttr-live: error: --stream: stream id must be") and len(err.splitlines()) == 1


@pytest.mark.parametrize("path, match", [("{tmp}/missing/x.json", "does not exist"), ("{tmp}", "is a folder")])
def test_unwritable_output_is_one_line_error_at_start(capsys, tmp_path, path, match):
    from sttr.realtime.cli import serve

    path = path.format(tmp=tmp_path)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    for prog, main, argv in (
            ("sttr-live", live.main, ["--latency-json", path, "--no-pub", "-q", "--replay", "x.npz"]),
            ("sttr serve", serve.main, ["--skeleton-sub", "tcp://127.0.0.1:9", "--latency-json", path,
                                        "--pub", "no-address"]),  # without the check: fails later, not hangs
            ("sttr bench live", bench_cli.main, ["live", "--video", str(video), "--bundle", str(tmp_path),
                                                 "--out", path])):
        rc = main(argv)
        err = capsys.readouterr().err.strip()
        assert rc == 2 and err.startswith(f"{prog}: error: --") and match in err and len(err.splitlines()) == 1


def test_bench_missing_video_is_one_line_error(capsys, tmp_path):
    rc = bench_cli.main(["live", "--video", str(tmp_path / "none.mp4"), "--bundle", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "none.mp4" in err and len(err.splitlines()) == 1


# ---------------------------------------------------------------------- real runs (subprocess, real bundle)
import json  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from sttr.realtime.client import Prediction, Status, Subscriber  # noqa: E402

from ._bundle import nano_bundle  # noqa: E402,F401  (session fixture)


def _free_port() -> int:
    sock = zmq.Context.instance().socket(zmq.PUB)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    sock.close(0)
    return port


def _live(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sttr.realtime.cli.live", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_live_cli_on_openpose_folder_publishes_predictions(shared_data, nano_bundle, tmp_path):
    addr = f"tcp://127.0.0.1:{_free_port()}"
    out = tmp_path / "latency.json"
    with Subscriber(addr, topics=["pred.", "status."], timeout_s=60.0, strict=True) as sub:
        proc = _live(["--openpose-dir", str(shared_data / "openpose" / "coco18_clean_and_jerk"),
                      "--image-size", "340", "256", "--bundle", str(nano_bundle), "--backend", "onnxruntime",
                      "--fast", "--pub", addr, "--stream", "cj", "--latency-json", str(out), "-q"])
        first = sub.recv()  # a status comes within a second of start; predictions after 64 frames
        received = [first] + list(_drain(sub, 3.0))
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    preds = [m for m in received if isinstance(m, Prediction)]
    assert preds and all(p.stream == "cj" for p in preds)
    seqs = [p.seq for p in preds]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    report = json.loads(out.read_text())
    assert report["frames"] == 300 and report["predictions"] == 30 and report["frames_dropped"] == 0
    assert report["latency_ms"]["inference"]["count"] == 30 and report["latency_ms"]["inference"]["p99"] > 0
    assert "p99" in err and "frames 300" in err


def test_input_layout_the_model_cannot_take_is_one_line_error(shared_data, capsys):
    """OpenPose-18 skeletons into the bundled demo model (Kinect-v1-20): known at the first frame, exit 2, one line."""
    from sttr.realtime.default_model import default_bundle_dir

    folder = shared_data / "openpose" / "coco18_swimming"
    if not folder.is_dir():
        pytest.skip(f"{folder} is not there (OpenPose JSON from ../shared/data)")
    import socket

    with socket.socket() as probe:  # a free port, released at once (a ZeroMQ socket's close is asynchronous)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rc = live.main(["--openpose-dir", str(folder), "--bundle", str(default_bundle_dir()), "--fast", "-q",
                    "--pub", f"tcp://127.0.0.1:{port}", "--max-frames", "5"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "no layout adapter from 'openpose18' to 'kinect20'" in err
    assert "Traceback" not in err and err.count("sttr-live: error") == 1


def _copy_openpose_files_slowly(src, dst, n: int, half_written: int = 10) -> None:
    """What OpenPose --write_json does while it runs: one file after another, one caught half-written."""
    for i, path in enumerate(sorted(src.glob("*.json"))[:n]):
        text = path.read_text()
        if i == half_written:
            (dst / path.name).write_text(text[: len(text) // 2])
            time.sleep(0.1)
        (dst / path.name).write_text(text)
        time.sleep(0.005)


def test_follow_watches_an_openpose_folder_being_written(shared_data, tmp_path):
    from sttr.realtime.session import open_live_source

    args = live.build_parser().parse_args(["--openpose-dir", str(tmp_path), "--follow", "1", "--image-size", "340",
                                           "256"])
    live.check_source_target(args)  # an empty folder is fine when followed
    kind, target = live._source_choice(args)
    source = open_live_source(kind, target, "openpose18", realtime=True, **live.source_options(args, kind))
    writer = threading.Thread(target=_copy_openpose_files_slowly,
                              args=(shared_data / "openpose" / "coco18_clean_and_jerk", tmp_path, 40))
    t0 = time.monotonic()
    writer.start()
    frames = list(source)  # ends 1 s after the last new file
    writer.join()
    assert [f.index for f in frames] == list(range(40)) and source.stats["waited"] >= 1
    assert all(b.timestamp_ms > a.timestamp_ms for a, b in zip(frames, frames[1:]))  # read times: live
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("argv, match", [
    (["--openpose-dir", "{empty}"], "no .json files yet; add --follow"),
    (["--openpose-dir", "{file}"], "is a file; expected the folder"),
    (["--video", "{empty}"], "is a folder; expected a video file"),
    (["--replay", "{empty}", "--follow"], "--follow goes with --openpose-dir"),
    (["--openpose-dir", "{empty}", "--follow", "-1"], "IDLE_S >= 0"),
])
def test_wrong_kind_of_input_is_one_line_error(capsys, tmp_path, argv, match):
    (tmp_path / "empty").mkdir()
    (tmp_path / "x.json").write_text("{}")
    argv = [a.format(empty=tmp_path / "empty", file=tmp_path / "x.json") for a in argv]
    rc = live.main([*argv, "--no-pub", "-q"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and match in err and len(err.splitlines()) == 1


def _drain(sub: Subscriber, quiet_s: float):
    while True:
        try:
            yield sub.recv(quiet_s)
        except TimeoutError:
            return


@pytest.mark.slow
def test_sigterm_stops_cleanly_while_waiting_for_frames(nano_bundle):
    pub_addr = f"tcp://127.0.0.1:{_free_port()}"
    skel_addr = f"tcp://127.0.0.1:{_free_port()}"
    with Subscriber(pub_addr, topics=["status."], timeout_s=60.0) as sub:
        proc = _live(["--skeleton-sub", skel_addr, "--bundle", str(nano_bundle), "--backend", "onnxruntime",
                      "--pub", pub_addr, "-q"])
        try:
            assert isinstance(sub.recv(), Status)  # it is up (idle: no frames come)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    assert time.monotonic() - t0 < 10
    assert "frames 0" in err and "Traceback" not in err


@pytest.mark.slow
def test_checkpoint_is_exported_once_and_run(shared_data, nano_bundle, tmp_path, monkeypatch):
    from sttr.realtime.checkpoint_bundle import bundle_for_checkpoint

    monkeypatch.setenv("STTR_CACHE", str(tmp_path / "cache"))
    ckpt = nano_bundle.parent / "nano_op18.pt"
    first = bundle_for_checkpoint(ckpt)
    assert (first / "bundle.json").is_file() and first.parent.parent == tmp_path / "cache"
    mtime = (first / "bundle.json").stat().st_mtime_ns
    assert bundle_for_checkpoint(ckpt) == first and (first / "bundle.json").stat().st_mtime_ns == mtime
    rc = live.main(["--checkpoint", str(ckpt), "--no-pub", "-q", "--backend", "onnxruntime", "--fast",
                    "--openpose-dir", str(shared_data / "openpose" / "coco18_clean_and_jerk"),
                    "--image-size", "340", "256", "--max-frames", "80", "--latency-json", str(tmp_path / "l.json")])
    assert rc == 0
    report = json.loads((tmp_path / "l.json").read_text())
    assert report["frames"] == 80 and report["predictions"] == 3  # windows at frames 64, 72, 80


@pytest.mark.slow
def test_several_checkpoints_run_fused(shared_data, nano_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("STTR_CACHE", str(tmp_path / "cache"))
    ckpt = nano_bundle.parent / "nano_op18.pt"
    rc = live.main(["--checkpoint", str(ckpt), str(ckpt), "--weights", "1", "0.5", "--no-pub", "-q", "--fast",
                    "--backend", "onnxruntime",
                    "--openpose-dir", str(shared_data / "openpose" / "coco18_clean_and_jerk"),
                    "--image-size", "340", "256", "--max-frames", "80", "--latency-json", str(tmp_path / "l.json")])
    assert rc == 0 and json.loads((tmp_path / "l.json").read_text())["predictions"] == 3  # frames 64, 72, 80
    (bundle,) = (tmp_path / "cache" / "bundles").iterdir()
    data = json.loads((bundle / "bundle.json").read_text())
    assert [s["weight"] for s in data["fusion"]["streams"]] == [1.0, 0.5]


def test_fused_checkpoints_are_cached_by_streams_and_weights(tmp_path, monkeypatch):
    from pathlib import Path

    from sttr.realtime.checkpoint_bundle import bundle_for_checkpoint

    monkeypatch.setenv("STTR_CACHE", str(tmp_path / "cache"))
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    a.write_bytes(b"a"), b.write_bytes(b"b")
    commands = []

    def fake_export(cmd, **kw):  # what sttr export would leave: a bundle.json in --out
        commands.append(cmd)
        out = Path(cmd[cmd.index("--out") + 1])
        out.mkdir(parents=True)
        (out / "bundle.json").write_text("{}")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_export)
    folders = [bundle_for_checkpoint(a), bundle_for_checkpoint([a, b]), bundle_for_checkpoint([b, a]),
               bundle_for_checkpoint([a, b], weights=[1, 0.5])]
    assert len(set(folders)) == 4 and len(commands) == 4
    assert commands[1][-5:] == [str(a), str(b), "--out", str(folders[1]), "--overwrite"]
    assert commands[3][commands[3].index("--weights"):] == ["--weights", "1.0", "0.5"]
    assert bundle_for_checkpoint([a, b], weights=[1, 0.5]) == folders[3] and len(commands) == 4  # reused


@pytest.mark.parametrize("argv", [["--checkpoint", "a.pt", "--weights", "1"],
                                  ["--checkpoint", "a.pt", "b.pt", "--weights", "1"],
                                  ["--weights", "1", "1"]])
def test_fusion_weights_must_match_the_checkpoints(argv, capsys):
    rc = live.main([*argv, "--no-pub", "-q", "--openpose-dir", "x"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "--weights: one weight per --checkpoint of a fusion" in err and len(err.splitlines()) == 1


def test_missing_checkpoint_is_one_line_error(capsys, tmp_path):
    rc = live.main(["--checkpoint", str(tmp_path / "none.pt"), "--no-pub", "-q"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "none.pt" in err and len(err.splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("args, expected", [
    (["--camera", "9"], "camera 9 could not be opened"),
    (["--video", "/nonexistent/clip.mp4"], "clip.mp4"),
    (["--openpose-dir", "/nonexistent/json"], "/nonexistent/json"),
    (["--replay", "/nonexistent/rec.npz"], "rec.npz"),
])
def test_missing_inputs_are_one_line_errors(nano_bundle, capsys, args, expected):
    rc = live.main([*args, "--bundle", str(nano_bundle), "--no-pub", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("sttr-live: error:") and expected in err[-1]


def test_an_input_shorter_than_one_window_says_so(shared_data, nano_bundle, capsys):
    """20 OpenPose frames into a model that takes 64: "predictions 0" alone left the user guessing."""
    rc = live.main(["--openpose-dir", str(shared_data / "openpose" / "coco18_clean_and_jerk"), "--image-size", "340",
                    "256", "--bundle", str(nano_bundle), "--backend", "onnxruntime", "--fast", "--no-pub", "-q",
                    "--max-frames", "20"])
    assert rc == 0
    assert "no window was complete: the model takes 64 frames" in capsys.readouterr().err
