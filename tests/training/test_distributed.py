"""DistributedDataParallel on CPU (gloo): both ranks end with identical parameters and the same validation."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from ._data import make_dataset
from ._ddp_worker import run

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
