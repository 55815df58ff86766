"""DistributedDataParallel on CPU (gloo): both ranks end with identical parameters and the same validation."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from ._data import make_dataset
from ._ddp_worker import run, run_fit

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _check_ranks(out: Path) -> None:
    r0, r1 = (torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2 and (r0["rank"], r1["rank"]) == (0, 1)
    assert r0["params"].keys() == r1["params"].keys()
    for key in r0["params"]:
        assert torch.equal(r0["params"][key], r1["params"][key]), key
    assert r0["val"] == r1["val"]


def test_two_spawned_ranks_keep_identical_parameters(tmp_path):
    root = make_dataset(tmp_path / "ds", layout="natops8", n_train=12, n_test=4, T=8, M=1, subjects=3)
    mp.spawn(run, args=(2, _free_port(), str(root), str(tmp_path)), nprocs=2, join=True)
    _check_ranks(tmp_path)


def test_the_test_at_the_end_of_a_two_rank_run_finishes(tmp_path):
    """Rank 0 tests the chosen checkpoint alone; a collective call inside that test waited forever for rank 1."""
    root = make_dataset(tmp_path / "ds", layout="natops8", n_train=12, n_test=4, T=8, M=1, subjects=3)
    ctx = mp.spawn(run_fit, args=(2, _free_port(), str(root), str(tmp_path)), nprocs=2, join=False)
    deadline = time.monotonic() + 120
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for proc in ctx.processes:
                proc.kill()
            pytest.fail("the two-rank run did not finish: the end-of-training test hangs")
    r0, r1 = (torch.load(tmp_path / f"fit{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["test"] == 4 and r1["test"] is None  # rank 0 tested all 4 test samples


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path):
    root = make_dataset(tmp_path / "ds", layout="natops8", n_train=12, n_test=4, T=8, M=1, subjects=3)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
           str(_free_port()), "-m", "tests.training._ddp_worker", str(root), str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_ranks(tmp_path)
