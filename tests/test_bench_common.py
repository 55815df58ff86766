"""What the benchmark scripts share (benchmarks/_common.py, sttr.realtime.latency.machine_info): checked arguments,
output files checked before a run, one-line errors, the machine and versions a report records."""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from sttr.realtime.latency import machine_info

_BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def load_bench(name: str):
    """A benchmark script as a module (benchmarks/ is not a package; the scripts import their siblings)."""
    if str(_BENCH) not in sys.path:
        sys.path.insert(0, str(_BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", _BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def common():
    return load_bench("_common")


def test_integer_arguments_are_checked_by_argparse(common):
    p = argparse.ArgumentParser(prog="x")
    p.add_argument("--rounds", type=common.at_least(1))
    p.add_argument("--frames", type=common.int_list(1))
    assert p.parse_args(["--rounds", "3", "--frames", "64,300"]).frames == [64, 300]
    for bad in (["--rounds", "0"], ["--rounds", "abc"], ["--frames", "64,"], ["--frames", "0"]):
        with pytest.raises(SystemExit):
            p.parse_args(bad)


def test_out_is_checked_before_a_run(common, tmp_path):
    common.check_out(None)
    common.check_out(tmp_path / "ok.json")
    assert not list(tmp_path.iterdir())  # the probe leaves nothing behind
    with pytest.raises(ValueError, match="does not exist"):
        common.check_out(tmp_path / "missing" / "r.json")
    with pytest.raises(ValueError, match="is a folder"):
        common.check_out(tmp_path)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
def test_out_in_a_folder_that_takes_no_files_is_refused_even_for_root(common):
    # os.access says yes to root there; the real write failed after the whole benchmark had run
    with pytest.raises(ValueError, match="cannot write in /proc"):
        common.check_out("/proc/report.json")


def test_report_is_written_atomically_with_nan_as_null(common, tmp_path):
    out = tmp_path / "r.json"
    common.write_report(out, {"x": float("nan"), "n": 1})
    assert json.loads(out.read_text()) == {"x": None, "n": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_fail_prints_one_line(common, capsys):
    assert common.fail("x.py", KeyError("unknown preset 'foo'\nmore")) == 2
    assert capsys.readouterr().err == "x.py: error: unknown preset 'foo'\n"


def test_environment_records_machine_versions_and_settings(common):
    env = common.environment({"out": Path("/tmp/r.json"), "rounds": 3})
    assert env["cpus"] >= 1 and "cpu" in env and env["python"]
    assert env["versions"]["numpy"] and "torch" in env["versions"]
    assert env["settings"] == {"out": "/tmp/r.json", "rounds": 3}


def test_machine_info_reports_the_installed_alternative():
    info = machine_info(["numpy", "no-such-dist-xyz|numpy", "no-such-dist-abc"])
    assert info["versions"]["numpy"] and info["versions"]["no-such-dist-abc"] is None
    assert "no-such-dist-xyz" not in info["versions"]
