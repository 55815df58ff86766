"""`sttr train --config FILE.yaml [--set key=value ...] [--resume]`: train, select on validation, test the choice.

Multi-GPU / multi-process: `torchrun --nproc_per_node 4 -m sttr.training.cli.train --config FILE.yaml`.
Exit codes: 0 done, 2 bad config or arguments, 3 training diverged (non-finite loss; last.pt is the last good state),
130 interrupted (Ctrl-C; `--resume` continues from the last finished epoch).
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sttr train", description=__doc__.split("\n\n")[0],
        epilog="example: sttr train --config configs/ntu60_xsub_s-tr.yaml --set data.root=data/ntu60/xsub "
               "optim.lr=0.05 model.dropout=0.3   |   key names: see training/config.py (TrainConfig)")
    p.add_argument("--config", help="YAML config (keys of TrainConfig; omitted: the defaults)")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override config keys, e.g. optim.lr=0.05 data.batch_size=16 augment.crop=[0.5,1]")
    p.add_argument("--resume", action="store_true",
                   help="continue from WORK_DIR/last.pt exactly; without --config the run's own settings "
                        "(WORK_DIR/config.yaml) are used, so `sttr train --resume --work-dir RUN` is enough")
    p.add_argument("--work-dir", help="shortcut for --set work_dir=DIR")
    p.add_argument("--max-epochs", type=int, help="stop after this many epochs in this call (resume later)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _resume_hint(argv: list[str], work_dir: str) -> str:
    """How to continue an interrupted run: the same command with --resume, when an epoch has finished."""
    if not (Path(work_dir) / "last.pt").is_file():
        return f"no epoch had finished (no {Path(work_dir) / 'last.pt'}): rerun the same command to start over"
    if (Path(work_dir) / "config.yaml").is_file():  # the run's settings are on disk: --resume needs only the folder
        command = shlex.join(["sttr", "train", "--resume", "--work-dir", str(work_dir)])
    else:
        command = shlex.join(["sttr", "train", *argv] + ([] if "--resume" in argv else ["--resume"]))
    return f"continue from the last finished epoch in {work_dir} with: {command}"


def _run_config(overrides: list[str]) -> Path | None:
    """The settings a run was started with (WORK_DIR/config.yaml), for `--resume` without `--config`; None for a
    run that has a last.pt but no config.yaml (then the defaults and --set values are checked against last.pt)."""
    from sttr.training.config import TrainConfig

    given = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0].strip() == "work_dir" and "=" in o]
    work_dir = Path(given[-1] if given else TrainConfig().work_dir)
    saved = work_dir / "config.yaml"
    if saved.is_file():
        return saved
    if (work_dir / "last.pt").exists():
        return None
    raise FileNotFoundError(f"nothing to resume in {work_dir}: it has no config.yaml and no last.pt (name the run's "
                            f"folder with --work-dir DIR)")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before training started (while torch was being imported, say): nothing to resume
        print("\nsttr train: interrupted before training started; rerun the same command", file=sys.stderr)
        return 130


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from sttr.training.config import load_config

    overrides = list(args.overrides) + ([f"work_dir={args.work_dir}"] if args.work_dir else [])
    try:
        config_file = args.config or (_run_config(overrides) if args.resume else None)
        cfg = load_config(config_file, overrides)
    except (ValueError, FileNotFoundError) as err:
        print(f"sttr train: {err}", file=sys.stderr)
        return 2
    if args.print_config:
        import yaml
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return 0
    if not cfg.data.root:
        print("sttr train: data.root is not set (use --set data.root=DIR or the config's data.root)", file=sys.stderr)
        return 2
    from sttr.training.config import device_problem

    problem = device_problem(cfg.device)
    if problem:
        print(f"sttr train: {problem}", file=sys.stderr)
        return 2
    from sttr.training.distributed import cleanup_distributed
    from sttr.training.trainer import Trainer, TrainingDiverged

    try:
        try:  # setting up: the data, the model, the state to resume (a corrupt last.pt is named, not a traceback)
            trainer = Trainer(cfg, resume=args.resume)
        except ValueError as err:
            print(f"sttr train: {err}", file=sys.stderr)
            return 2
        result = trainer.fit(max_epochs=args.max_epochs)
    except TrainingDiverged as err:
        print(f"sttr train: {err}", file=sys.stderr)
        return 3
    except FileNotFoundError as err:
        print(f"sttr train: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nsttr train: interrupted; {_resume_hint(argv, cfg.work_dir)}", file=sys.stderr)
        return 130
    finally:
        cleanup_distributed()
    if result.get("test") is not None:
        test = {k: result["test"][k] for k in ("top1", "top5", "num_samples", "scores")}
        print(json.dumps({**{k: v for k, v in result.items() if k != "test"}, "test": test}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
