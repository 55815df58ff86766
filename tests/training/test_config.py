"""TrainConfig: YAML maps 1:1, typos fail naming the key, --set overrides any key."""
import pytest
import yaml

from sttr.training.config import TrainConfig, apply_overrides, device_problem, load_config, load_yaml, parse_override
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


@pytest.mark.parametrize("text, value", [("1e-3", 1e-3), ("5e-4", 5e-4), ("1E-3", 1e-3), ("-2e-3", -2e-3),
                                         ("1.5e3", 1500.0), (".5e-1", 0.05)])
def test_exponent_floats_without_a_dot_are_floats(text, value):
    # PyYAML's YAML 1.1 resolver reads 1e-3 as a string; Python, YAML 1.2 and every paper write it so
    assert parse_override(f"optim.lr={text}") == (["optim", "lr"], value)
    assert load_yaml(f"lr: {text}") == {"lr": value}


def test_exponent_floats_load_from_a_file_an_override_and_a_plain_yaml_dict(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 1e-3\n  weight_decay: 5E-4\nmodel:\n  dropout: 1e-1\n")
    cfg = load_config(path, ["optim.gamma=2e-1"])
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.gamma, cfg.model["dropout"]) == (1e-3, 5e-4, 0.2, 0.1)
    # a dict read by plain yaml.safe_load holds the string; wherever a float is expected it still is one
    assert TrainConfig.from_dict(yaml.safe_load("optim: {lr: 1e-3, clip_grad_norm: 1e1}")).optim.lr == 1e-3
    with pytest.raises(ValueError, match="'optim.lr': expected a number, got 'e3'"):
        load_config(None, ["optim.lr=e3"])


def test_a_yaml_syntax_error_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 0.1\n   epochs: 3\n")
    with pytest.raises(ValueError, match=r"^config file .*c\.yaml: not valid YAML at line 3, column 10: mapping "
                                         r"values are not allowed here$"):
        load_config(path)


@pytest.mark.parametrize("over, says", [
    ("model.dropout=high", "'model.dropout': expected a number, got 'high'"),
    ("model.num_classes=3.5", "'model.num_classes': expected an integer, got 3.5"),
    ("model.num_heads=true", "'model.num_heads': expected an integer, got True"),
    ("model.layout=5", "'model.layout': expected a string or a mapping, got 5"),
    ("model.window_blocks=[1, a, 3]", r"'model.window_blocks\[1\]': expected an integer"),
    ("model.attention=sideways", "'model.attention': expected one of"),
])
def test_model_keys_are_type_checked_naming_the_key(over, says):
    with pytest.raises(ValueError, match=says):
        load_config(None, ["model.preset=nano", over])


def test_model_keys_of_the_right_type_pass():
    cfg = load_config(None, ["model.preset=nano", "model.dropout=0", "model.layout={name: x}", "model.num_heads=4"])
    assert cfg.model == {"preset": "nano", "dropout": 0.0, "layout": {"name": "x"}, "num_heads": 4}


@pytest.mark.parametrize("over", ["optim.label_smoothing=1.5", "optim.label_smoothing=1", "optim.label_smoothing=-0.1"])
def test_label_smoothing_outside_0_1_fails_up_front(over):
    with pytest.raises(ValueError, match=r"'optim.label_smoothing': expected a value in \[0, 1\)"):
        load_config(None, [over])


@pytest.mark.parametrize("name", ["gpu", "cuda0", "cuda:x", "CPU", "cuda:-1"])
def test_device_names_are_checked(name):
    with pytest.raises(ValueError, match=r"'device': expected auto, cpu, cuda or cuda:N"):
        load_config(None, [f"device={name}"])
    assert device_problem(name).endswith("expected auto, cpu, cuda or cuda:N (e.g. cuda:0)")


def test_device_problem_says_torch_sees_no_cuda_device(monkeypatch):
    import torch

    assert device_problem("cpu") is None and device_problem("auto") is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_problem("cuda") == (f"device 'cuda': torch sees no CUDA device (torch {torch.__version__} is a "
                                      f"{'CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU-only'} build); "
                                      "use cpu or auto")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert device_problem("cuda") is None and device_problem("cuda:1") is None
    assert device_problem("cuda:2") == "device 'cuda:2': torch sees 2 CUDA device(s), cuda:0 to cuda:1"
