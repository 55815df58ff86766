"""TrainConfig: YAML maps 1:1, typos fail naming the key, --set overrides any key."""
import pytest
import yaml

from sttr.training.config import TrainConfig, apply_overrides, load_config, parse_override
from sttr.training.schedule import lr_factor


def test_yaml_round_trip_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"model": {"preset": "t-tr", "dropout": 0.1},
                                    "optim": {"lr": 0.1, "milestones": [60, 90], "epochs": 120}}))
    cfg = load_config(path, ["optim.lr=0.05", "model.dropout=0.3", "augment.crop=[0.5, 1.0]", "data.window=64"])
    assert cfg.optim.lr == 0.05 and cfg.model == {"preset": "t-tr", "dropout": 0.3}
    assert cfg.augment.crop == [0.5, 1.0] and cfg.data.window == 64 and cfg.optim.milestones == [60, 90]
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("over, name", [("optim.lrr=0.1", "'optim.lrr'"), ("dataa.root=x", "'dataa'"),
                                        ("model.dropuot=0.1", "'model.dropuot'"), ("augment.mirorr=1", "mirorr")])
def test_typos_fail_naming_the_key(over, name):
    with pytest.raises(ValueError, match=name):
        load_config(None, [over])


@pytest.mark.parametrize("over, name", [("optim.lr=fast", "optim.lr"), ("optim.epochs=0", "optim.epochs"),
                                        ("precision=fp8", "precision"), ("optim.milestones=3", "optim.milestones"),
                                        ("model.preset=nope", "model.preset")])
def test_bad_values_fail_naming_the_key(over, name):
    with pytest.raises(ValueError, match=name):
        load_config(None, [over])


def test_override_parsing():
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    with pytest.raises(ValueError, match="key=value"):
        parse_override("optim.lr")
    assert apply_overrides({"optim": {"lr": 1}}, ["optim.lr=2", "seed=3"]) == {"optim": {"lr": 2}, "seed": 3}


def test_model_config_takes_dataset_defaults_then_overrides():
    cfg = load_config(None, ["model.preset=nano", "model.num_heads=1"])
    m = cfg.build_model_config({"num_classes": 7, "num_joints": 20, "layout": "kinect20", "in_channels": 3})
    assert (m.num_classes, m.num_joints, m.layout, m.num_heads, m.base_channels) == (7, 20, "kinect20", 1, 8)


def test_step_schedule_is_a_true_decay_factor():
    f = [lr_factor(e, milestones=[60, 90], gamma=0.1) for e in (0, 59, 60, 89, 90, 119)]
    assert f == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    assert lr_factor(0, milestones=[60], gamma=0.5, warmup_epochs=4) == pytest.approx(0.2)
    assert lr_factor(10, schedule="cosine", epochs=20) == pytest.approx(0.5)


def test_shipped_configs_load():
    from pathlib import Path
    configs = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))
    for path in configs:
        load_config(path)


def _paper_configs():
    from pathlib import Path

    return sorted(p for p in (Path(__file__).resolve().parents[2] / "configs").glob("*.yaml")
                  if p.name.startswith(("ntu60_", "ntu120_", "kinetics_")))


@pytest.mark.parametrize("path", _paper_configs(), ids=lambda p: p.stem)
def test_paper_config_reads_where_its_gendata_command_writes(path):
    """The `# Data:` command in each paper recipe parses, and its output folder is the config's data.root."""
    import shlex

    from sttr.training.cli.gendata import build_parser

    commands = [line.split(":", 1)[1] if line.startswith("# Data:") else line[1:]
                for line in path.read_text().splitlines() if line.startswith(("# Data:", "#       sttr gendata"))]
    assert commands, f"{path.name}: no '# Data:' line saying how to generate its data"
    root = yaml.safe_load(path.read_text())["data"]["root"]
    for command in commands:
        argv = shlex.split(command.strip())
        assert argv[:2] == ["sttr", "gendata"]
        args = build_parser().parse_args(argv[2:])
        folders = ["kinetics"] if args.dataset == "kinetics" else args.benchmark
        assert [f"{args.out.as_posix()}/{f}" for f in folders] == [root]
        assert (args.bones == "merge") == ("-bones" in path.stem)
        TrainConfig.from_dict(yaml.safe_load(path.read_text()))  # and the recipe itself loads
