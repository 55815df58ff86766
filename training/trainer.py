"""The trainer: the paper's recipe (spec §3) with its bugs fixed (spec §9: 4, 5, 18); resumable; one or many
processes.

* SGD (momentum 0.9, Nesterov), lr 0.1, weight decay 1e-4, a true x0.1 step decay (or cosine), optional warm-up.
* Model selection on a validation subset carved from the training subjects (never the test split); the chosen
  checkpoint (`best.pt`) is the one tested at the end.
* Mixed precision (bf16/fp16 autocast, GradScaler for fp16), gradient accumulation, optional torch.compile,
  DistributedDataParallel under torchrun (rank 0 logs and writes checkpoints).
* `last.pt` every epoch (atomic; model, optimiser, scheduler, scaler, RNG states, epoch, best metric): `resume=True`
  continues exactly, because the data order, the augmentation and the dropout draws of an epoch are seeded by
  (seed, epoch[, rank]) and do not depend on what ran before.
* A non-finite loss raises `TrainingDiverged` naming the epoch and step; `last.pt` (written only at epoch ends) stays
  the last good state.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from sttr.model.atomic import atomic_write_bytes

from .config import TrainConfig
from .distributed import DistInfo, all_true, barrier, init_distributed
from .evaluate import accuracy_metrics, autocast, evaluate_checkpoint, predict
from .feeder import SkeletonFeeder, SplitFiles, validation_split
from .logging_utils import CSVLog, TensorBoardLog, Throughput, progress
from .schedule import lr_factor
from .state import FORMAT, atomic_torch_save, load_state, rng_state, set_rng_state

__all__ = ["Trainer", "TrainingDiverged", "train"]

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and step and the last good checkpoint."""


@dataclass
class _Best:
    epoch: int = -1
    top1: float = -1.0
    loss: float = math.inf

    def improved_by(self, top1: float, loss: float) -> bool:
        return top1 > self.top1 or (top1 == self.top1 and loss < self.loss)


class Trainer:
    """Builds data, model and optimiser from a `TrainConfig`; `fit()` trains, selects and tests.

    Args:
        cfg: The run's configuration.
        resume: Continue from `work_dir/last.pt` (FileNotFoundError if absent).
        dist_info: Process placement (default: from the torchrun environment).
    """

    def __init__(self, cfg: TrainConfig, *, resume: bool = False, dist_info: DistInfo | None = None):
        self.cfg = cfg
        self.dist = dist_info or init_distributed(cfg.device)
        self.device = self.dist.device
        self.work_dir = Path(cfg.work_dir)
        if self.dist.is_main:
            self.work_dir.mkdir(parents=True, exist_ok=True)
        self._check_precision()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self._build_data()
        self.num_workers = self._data_workers()
        self._build_model()
        self.epoch = 0  # epochs completed
        self.global_step = 0
        self.best = _Best()
        if resume:
            self._load_last()
        self.csv = CSVLog(self.work_dir / "log.csv", truncate_from=self.epoch) if self.dist.is_main else None
        self.tb = TensorBoardLog(self.work_dir / "tb", cfg.tensorboard and self.dist.is_main)

    # ------------------------------------------------------------------------------------------------ setup
    def _check_precision(self) -> None:
        if self.cfg.precision == "fp16" and self.device.type != "cuda":
            raise ValueError("precision 'fp16' needs a CUDA device (GradScaler); use 'bf16' or 'fp32' on CPU")

    def _build_data(self) -> None:
        cfg, d = self.cfg, self.cfg.data
        if d.train_split == d.test_split:
            raise ValueError(f"data.train_split and data.test_split are both {d.train_split!r}")
        full = SkeletonFeeder(d.root, d.train_split, mmap=d.mmap)
        train_idx, val_idx, held = validation_split(full.labels, full.meta.subjects, val_subjects=d.val_subjects,
                                                    val_fraction=d.val_fraction, seed=cfg.seed)
        self.val_subjects = held
        self.num_train_samples, self.num_val_samples = len(train_idx), len(val_idx)
        self.train_set = SkeletonFeeder(d.root, d.train_split, indices=train_idx, augment=cfg.augment,
                                        window=d.window, seed=cfg.seed, mmap=d.mmap)
        r, w = self.dist.rank, self.dist.world_size
        # frames of the validation/test windows (and of exported ones): random crops keep the clip's rate, so they
        # are evaluated on whole clips; a window without random crops squeezes each clip into that many frames
        whole = full.shape[1] if cfg.augment.random_window else self.train_set.shape[1]
        self.eval_window = int(d.test_window or whole)
        self.val_set = SkeletonFeeder(d.root, d.train_split, indices=val_idx[r::w], window=self.eval_window,
                                      mmap=d.mmap) if len(val_idx) else None  # same on every rank
        # the test split is read after training: a damaged one is named now, not after hours (the feeder names it)
        self.test_labels = (SkeletonFeeder(d.root, d.test_split, mmap=True).labels if cfg.test_at_end
                            else [])
        self.sampler = DistributedSampler(self.train_set, num_replicas=w, rank=r, shuffle=True, seed=cfg.seed,
                                          drop_last=False)
        if self.dist.is_main:
            log.info("train %d samples, validation %d (subjects %s), per-process batch %d x accumulate %d x %d "
                     "process(es)", len(train_idx), len(val_idx), held or "-", d.batch_size, cfg.optim.accumulate, w)

    def _loader(self, dataset, *, train: bool) -> DataLoader:
        d = self.cfg.data
        batch = d.batch_size if train else d.test_batch_size
        per_rank = len(dataset) // self.dist.world_size if train else len(dataset)
        return DataLoader(dataset, batch_size=batch, sampler=self.sampler if train else None, shuffle=False,
                          num_workers=self.num_workers, pin_memory=self.device.type == "cuda",
                          drop_last=train and per_rank > batch, persistent_workers=False)

    def _data_workers(self) -> int:
        """`data.num_workers`, at most one per CPU this process may use: more only contend for the same cores (the
        NTU configs ask for 4). The batches do not change with the worker count: augmentation is seeded per sample."""
        wanted = self.cfg.data.num_workers
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if wanted > cpus and self.dist.is_main:
            log.info("data.num_workers %d > %d usable CPUs: loading with %d worker processes", wanted, cpus, cpus)
        return min(wanted, cpus)

    def model_defaults(self) -> dict[str, Any]:
        """STTRConfig values the dataset dictates (unless the config sets them)."""
        C, _, V, M = self.train_set.shape
        out = {"num_classes": self.train_set.num_classes, "in_channels": C, "num_joints": V, "num_persons": M}
        if self.train_set.layout is not None:
            spec = self.train_set.meta.layout
            out["layout"] = spec if isinstance(spec, (str, dict)) else self.train_set.layout.name
        return out

    def _check_preset_channels(self) -> None:
        """A joints + bones preset on joints-only data would silently become a joints model (the data's channel
        count wins), and a later joints + bones ensemble two joints streams."""
        from sttr.model.config import PRESETS

        name = self.cfg.model.get("preset", "s-tr")
        wanted = PRESETS[name].in_channels if name in PRESETS else None
        C = self.train_set.shape[0]
        if "in_channels" in self.cfg.model or wanted is None or wanted == C or not name.endswith("-bones"):
            return
        raise ValueError(f"preset {name!r} takes joints + bones ({wanted} channels); {self.cfg.data.root} has {C} "
                         f"({', '.join(self.train_set.channels)}): generate the data with bones merged (`sttr "
                         "gendata ... --bones merge`), choose the joints preset, or set model.in_channels")

    def _build_model(self) -> None:
        from sttr.model.sttr import STTR

        cfg = self.cfg
        self._check_preset_channels()
        self.model_config = cfg.build_model_config(self.model_defaults())
        K = self.model_config.num_classes
        for split, labels in ((self.cfg.data.train_split, self.train_set.labels),
                              (self.cfg.data.test_split, self.test_labels)):
            top = max(labels, default=-1)
            if top >= K:  # else an IndexError deep inside the loss at the first step (or at the test)
                raise ValueError(f"model.num_classes is {K} but {SplitFiles(Path(self.cfg.data.root), split).labels} "
                                 f"has labels up to {top} ({top + 1} classes): set model.num_classes to at least "
                                 f"{top + 1}, or leave it out to take the dataset's")
        self.model = STTR(self.model_config).to(self.device)
        net: nn.Module = self.model
        if cfg.compile:
            net = torch.compile(net)
        if self.dist.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            net = nn.parallel.DistributedDataParallel(net, device_ids=ids)
        self.net = net
        o = cfg.optim
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=o.lr, momentum=o.momentum, nesterov=o.nesterov,
                                         weight_decay=o.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda e: lr_factor(
            e, schedule=o.schedule, milestones=o.milestones, gamma=o.gamma, epochs=o.epochs,
            warmup_epochs=o.warmup_epochs))
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.precision == "fp16")
        self.criterion = nn.CrossEntropyLoss(label_smoothing=o.label_smoothing)
        if self.dist.is_main:
            n = sum(p.numel() for p in self.model.parameters())
            log.info("model %s: %d parameters on %s (%s)", cfg.model.get("preset"), n, self.device, cfg.precision)

    # ------------------------------------------------------------------------------------------- checkpoints
    @property
    def last_path(self) -> Path:
        return self.work_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.work_dir / "best.pt"

    def _save_last(self) -> None:
        state = {"format": FORMAT, "epoch": self.epoch, "global_step": self.global_step,
                 "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), "rng": rng_state(),
                 "best": {"epoch": self.best.epoch, "top1": self.best.top1, "loss": self.best.loss},
                 "config": json.loads(json.dumps(self.cfg.to_dict()))}
        atomic_torch_save(state, self.last_path)

    def _load_last(self) -> None:
        state = load_state(self.last_path, map_location=self.device)
        self._check_resumed_config(state.get("config"))
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as err:  # e.g. the dataset under data.root now has another number of classes
            lines = [s.strip() for s in str(err).splitlines() if "size mismatch" in s or "Missing" in s]
            raise ValueError(f"{self.last_path} does not fit this run's model ({self.model_config.num_classes} "
                             f"classes, {self.model_config.in_channels} channels): "
                             f"{lines[0] if lines else str(err).splitlines()[0]}") from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.epoch, self.global_step = int(state["epoch"]), int(state["global_step"])
        b = state["best"]
        self.best = _Best(int(b["epoch"]), float(b["top1"]), float(b["loss"]))
        if self.dist.is_main:
            log.info("resumed from %s after epoch %d (best validation top-1 %.4f at epoch %d)", self.last_path,
                     self.epoch, self.best.top1, self.best.epoch + 1)

    def _check_resumed_config(self, saved: dict[str, Any] | None) -> None:
        """Resuming continues the SAME run: a setting that shapes the model, the data or the optimisation must not
        change silently (it would apply in part, and config.yaml would record values never used). Settings of the
        machine and of the logging may; more epochs may, with a warning (a cosine schedule then changes course)."""
        if saved is None:
            return
        changes = _config_changes(saved, self.cfg.to_dict())
        free = {k: v for k, v in changes.items() if k in _RESUME_FREE_KEYS or k == "optim.epochs"}
        fixed = {k: v for k, v in changes.items() if k not in free}
        if fixed:
            listed = ", ".join(f"{k} ({old!r} -> {new!r})" for k, (old, new) in fixed.items())
            raise ValueError(f"cannot resume {self.last_path}: this config changes {listed}; resume with the run's "
                             f"settings ({self.work_dir / 'config.yaml'}) or start a new work_dir")
        if "optim.epochs" in free and self.dist.is_main:
            old, new = free["optim.epochs"]
            log.warning("resuming with optim.epochs %s instead of %s: the learning-rate schedule is recomputed "
                        "for %s epochs", new, old, new)

    def _save_best(self, epoch: int, metrics: dict[str, Any]) -> None:
        from sttr.model.checkpoint import save_checkpoint

        meta = self.train_set.meta
        K = self.model_config.num_classes
        labels = meta.label_names if len(meta.label_names) == K else [str(i) for i in range(K)]
        info = {"dataset": str(self.cfg.data.root), "split": self.cfg.data.train_split, "epoch": epoch + 1,
                "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
                "selection": "validation top-1" if self.val_set is not None else "last epoch",
                "val_subjects": list(self.val_subjects), "window": self.eval_window,
                "preset": self.cfg.model.get("preset"), "seed": self.cfg.seed}
        save_checkpoint(self.best_path, self.model, labels=labels, preprocess=self._trained_preprocess(), meta=info)

    def _trained_preprocess(self) -> dict[str, Any]:
        """The data's preprocess spec as the model is evaluated: an evaluation window (`data.test_window`, else
        `data.window`) shorter or longer than the generated T squeezes each clip into that many frames, so an
        exported or live window is that long, at the fps that spans the same time (eval and export then agree)."""
        pre = dict(self.train_set.meta.preprocess)
        generated, evaluated = pre.get("window"), self.eval_window
        if generated and evaluated != generated:
            pre["window"] = evaluated
            if pre.get("fps"):
                pre["fps"] = float(pre["fps"]) * evaluated / float(generated)
        return pre

    # -------------------------------------------------------------------------------------------- training
    def _seed_epoch(self, epoch: int) -> None:
        torch.manual_seed((self.cfg.seed * 1_000_003 + epoch * 1_009 + self.dist.rank) % (2 ** 63))
        self.sampler.set_epoch(epoch)
        self.train_set.set_epoch(epoch)

    def _diverged(self, epoch: int, step: int, loss: torch.Tensor) -> TrainingDiverged:
        good = f"{self.last_path} (after epoch {self.epoch})" if self.epoch else "none (diverged in the first epoch)"
        return TrainingDiverged(f"non-finite loss {loss.item()} at epoch {epoch + 1}, step {step + 1}; training "
                                f"stopped. Last good checkpoint: {good}. Try a lower optim.lr or precision fp32.")

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One epoch over the training subset; returns loss, accuracy, lr and samples/s."""
        cfg, acc_steps = self.cfg, self.cfg.optim.accumulate
        self._seed_epoch(epoch)
        loader = self._loader(self.train_set, train=True)
        self.net.train()
        speed, total_loss, correct, seen = Throughput(), 0.0, 0, 0
        show = cfg.progress and self.dist.is_main
        bar = progress(loader, total=len(loader), desc=f"epoch {epoch + 1}/{cfg.optim.epochs}", enabled=show)
        self.optimizer.zero_grad(set_to_none=True)
        full_groups = len(loader) // acc_steps * acc_steps  # steps in complete accumulation groups
        for step, (x, y, _) in enumerate(bar):
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            sync = (step + 1) % acc_steps == 0 or step + 1 == len(loader)
            with self._no_sync(not sync), autocast(self.device, cfg.precision):
                logits = self.net(x)
                loss = self.criterion(logits.float(), y)
            if not all_true(bool(torch.isfinite(loss).item()), self.device):
                raise self._diverged(epoch, step, loss)
            group = acc_steps if step < full_groups else len(loader) - full_groups  # a shorter last group
            with self._no_sync(not sync):  # the mean over the group's batches, as one big batch would give
                self.scaler.scale(loss / group).backward()
            if sync:
                self._optimizer_step()
            total_loss += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            rate = speed.add(len(y) * self.dist.world_size)
            if show and hasattr(bar, "set_postfix") and step % 5 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}", samples_per_s=f"{rate:.0f}")
            if self.dist.is_main and (step + 1) % cfg.log_interval == 0:
                log.info("epoch %d step %d/%d loss %.4f %.1f samples/s", epoch + 1, step + 1, len(loader),
                         loss.item(), rate)
        return {"train_loss": total_loss / max(seen, 1), "train_top1": correct / max(seen, 1),
                "lr": self.optimizer.param_groups[0]["lr"], "samples_per_s": speed.add(0)}

    def _no_sync(self, skip: bool):
        from contextlib import nullcontext

        if skip and isinstance(self.net, nn.parallel.DistributedDataParallel):
            return self.net.no_sync()
        return nullcontext()

    def _optimizer_step(self) -> None:
        if self.cfg.optim.clip_grad_norm:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.global_step += 1

    def validate(self) -> dict[str, float]:
        """Top-1/top-5 and loss on the validation subset (all ranks take part; results are gathered)."""
        loader = self._loader(self.val_set, train=False)
        _, logits, labels = predict(self.model, loader, self.device, precision=self.cfg.precision)
        m = accuracy_metrics(logits, labels, num_classes=self.model_config.num_classes)
        loss = float(nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels).long()))
        return {"val_loss": loss, "val_top1": m["top1"], "val_top5": m["top5"]}

    def _end_of_epoch(self, epoch: int, row: dict[str, Any]) -> None:
        o = self.cfg.optim
        last = epoch + 1 == o.epochs
        if self.val_set is not None and ((epoch + 1) % self.cfg.eval_interval == 0 or last):
            row.update(self.validate())
            if self.best.improved_by(row["val_top1"], row["val_loss"]):
                self.best = _Best(epoch, row["val_top1"], row["val_loss"])
                if self.dist.is_main:
                    self._save_best(epoch, row)
        elif self.val_set is None:
            self.best = _Best(epoch, float("nan"), float("nan"))
            if self.dist.is_main:
                self._save_best(epoch, row)
        self.scheduler.step()
        self.epoch = epoch + 1
        if self.dist.is_main:
            self._save_last()
            self.csv.write({"epoch": epoch, **{k: row.get(k, "") for k in _CSV_FIELDS}})
            self.tb.scalars({f"{k.split('_')[0]}/{k}": v for k, v in row.items() if isinstance(v, float)}, epoch + 1)
            val = f" val top-1 {row['val_top1']:.4f} loss {row['val_loss']:.4f}" if "val_top1" in row else ""
            log.info("epoch %d/%d: lr %.2e loss %.4f train top-1 %.4f%s, %.1f samples/s, %.0f s", epoch + 1,
                     o.epochs, row["lr"], row["train_loss"], row["train_top1"], val, row["samples_per_s"],
                     row["time_s"])
        barrier()

    def fit(self, max_epochs: int | None = None) -> dict[str, Any]:
        """Train up to `optim.epochs` (or `max_epochs` more epochs in this call), then test the chosen checkpoint.

        Returns:
            {"epochs_done", "best_epoch", "best_val_top1", "test": test metrics or None, "work_dir"}.
        """
        if self.dist.is_main:
            atomic_write_bytes(self.work_dir / "config.yaml",
                               yaml.safe_dump(self.cfg.to_dict(), sort_keys=False).encode("utf-8"))
        stop = self.cfg.optim.epochs if max_epochs is None else min(self.cfg.optim.epochs, self.epoch + max_epochs)
        try:
            for epoch in range(self.epoch, stop):
                start = time.perf_counter()
                row = self.train_epoch(epoch)
                row["time_s"] = time.perf_counter() - start
                self._end_of_epoch(epoch, row)
        finally:
            self.tb.close()
        best_top1 = None if math.isnan(self.best.top1) else self.best.top1
        result: dict[str, Any] = {"epochs_done": self.epoch, "best_epoch": self.best.epoch + 1,
                                  "best_val_top1": best_top1, "test": None, "work_dir": str(self.work_dir)}
        if self.epoch >= self.cfg.optim.epochs and self.cfg.test_at_end:
            result["test"] = self.test_best()
        return result

    def test_best(self) -> dict[str, Any] | None:
        """Test `best.pt` (the checkpoint chosen on validation) on the test split (rank 0); None elsewhere."""
        report = None
        if self.dist.is_main:
            d = self.cfg.data
            report = evaluate_checkpoint(self.best_path, d.root, d.test_split, out_dir=self.work_dir / "test",
                                         batch_size=d.test_batch_size, device=str(self.device),
                                         window=self.eval_window, precision=self.cfg.precision)
            log.info("test (%s, best epoch %d): top-1 %.4f top-5 %.4f", d.test_split, self.best.epoch + 1,
                     report["top1"], report["top5"])
        barrier()
        return report


_CSV_FIELDS = ("lr", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "samples_per_s", "time_s")


# settings a resumed run may change: where it runs and how it reports, not what it computes
_RESUME_FREE_KEYS = {"work_dir", "device", "threads", "data.num_workers", "data.root", "data.test_batch_size",
                     "progress", "tensorboard", "log_interval", "eval_interval", "test_at_end", "compile"}


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for key, value in d.items():
        out.update(_flatten(value, f"{prefix}{key}."))
    return {k.rstrip("."): v for k, v in out.items()}


def _config_changes(saved: dict[str, Any], now: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{dotted key: (saved value, new value)} for every setting that differs (absent: None)."""
    a, b = _flatten(saved), _flatten(json.loads(json.dumps(now)))
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def train(cfg: TrainConfig, *, resume: bool = False, max_epochs: int | None = None) -> dict[str, Any]:
    """Build a `Trainer` and run `fit`."""
    return Trainer(cfg, resume=resume).fit(max_epochs=max_epochs)
