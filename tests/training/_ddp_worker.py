"""Worker of the DDP tests: one rank trains two epochs and saves its parameters (spawned or run by torchrun)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch


def run(rank: int, world: int, port: int, root: str, out: str) -> None:
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    train_and_save(root, out)


def train_and_save(root: str, out: str) -> None:
    from sttr.training.config import TrainConfig
    from sttr.training.distributed import cleanup_distributed
    from sttr.training.trainer import Trainer

    torch.set_num_threads(1)
    cfg = TrainConfig.from_dict({
        "model": {"preset": "nano"}, "work_dir": str(Path(out) / "run"), "progress": False, "tensorboard": False,
        "device": "cpu", "data": {"root": root, "batch_size": 2, "num_workers": 0, "val_fraction": 0.25},
        "optim": {"epochs": 2, "lr": 0.05, "milestones": [1], "accumulate": 2},
        "augment": {"rotate": 10, "mirror": 0.5}})
    try:
        trainer = Trainer(cfg)
        for epoch in range(2):
            trainer.train_epoch(epoch)
        val = trainer.validate()
        params = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
        torch.save({"params": params, "val": val, "rank": trainer.dist.rank, "world": trainer.dist.world_size},
                   Path(out) / f"rank{trainer.dist.rank}.pt")
    finally:
        cleanup_distributed()


def run_fit(rank: int, world: int, port: int, root: str, out: str) -> None:
    """One rank of a whole `fit()`: train, then rank 0 tests the chosen checkpoint alone (the others wait)."""
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    from sttr.training.config import TrainConfig
    from sttr.training.distributed import cleanup_distributed
    from sttr.training.trainer import Trainer

    torch.set_num_threads(1)
    cfg = TrainConfig.from_dict({
        "model": {"preset": "nano"}, "work_dir": str(Path(out) / "run"), "progress": False, "tensorboard": False,
        "device": "cpu", "data": {"root": root, "batch_size": 2, "num_workers": 0, "val_fraction": 0.25},
        "optim": {"epochs": 1, "lr": 0.05}})
    try:
        result = Trainer(cfg).fit()
        torch.save({"test": None if result["test"] is None else result["test"]["num_samples"]},
                   Path(out) / f"fit{rank}.pt")
    finally:
        cleanup_distributed()


if __name__ == "__main__":  # torchrun --nproc_per_node 2 -m tests.training._ddp_worker ROOT OUT
    train_and_save(sys.argv[1], sys.argv[2])
