import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tsr.config import ConfigError, load_config, load_defaults, parse_override, save_config


def write(path, data):
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_defaults_load_and_are_valid():
    cfg = load_config()
    assert cfg == load_defaults()
    assert cfg["data"]["hr_width"] == 128


def test_base_chain_and_overrides_in_order(tmp_path):
    (tmp_path / "sub").mkdir()
    write(tmp_path / "base.yaml", {"data": {"max_len": 20, "num_workers": 0}, "run": {"name": "base"}})
    write(tmp_path / "sub" / "mid.yaml", {"_base_": "../base.yaml", "run": {"name": "mid"}, "eval": {"batch_size": 8}})
    write(tmp_path / "sub" / "top.yaml", "_base_: [mid.yaml]\nrun:\n  seed: 3\n")
    cfg = load_config(tmp_path / "sub" / "top.yaml", ["eval.batch_size=16", "run.name=cli"])
    assert cfg["data"]["max_len"] == 20          # from base, two levels down
    assert cfg["data"]["num_workers"] == 0
    assert cfg["data"]["hr_width"] == 128       # untouched default kept beside overridden siblings
    assert cfg["run"] == {**load_defaults()["run"], "name": "cli", "seed": 3}
    assert cfg["eval"]["batch_size"] == 16


def test_an_empty_mapping_in_a_child_config_empties_its_bases(tmp_path):
    write(tmp_path / "base.yaml", {"train": {"task_start": {"rec": 30}, "task_weights": {"content": 0.15}}})
    write(tmp_path / "child.yaml", "_base_: base.yaml\ntrain:\n  task_start: {}\n  task_weights: {align: 10.0}\n")
    train = load_config(tmp_path / "child.yaml")["train"]
    assert train["task_start"] == {}                                       # cleared
    assert train["task_weights"] == {"content": 0.15, "align": 10.0}      # a non-empty mapping still merges


def test_override_values_are_parsed_with_yaml():
    assert parse_override("a.b=1e-4") == ("a.b", 1e-4)
    assert parse_override("a.b=3") == ("a.b", 3)
    assert parse_override("a=[x, y]") == ("a", ["x", "y"])
    assert parse_override("a=null") == ("a", None)
    assert parse_override("a=true") == ("a", True)
    assert parse_override("a=hello") == ("a", "hello")
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("train.lr")


def test_unknown_key_names_closest_valid_key(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'data\.max_lne'.*did you mean 'data\.max_len'"):
        load_config(None, ["data.max_lne=3"])
    cfg_file = write(tmp_path / "c.yaml", {"model": {"sr": {"blokcs": 3}}})
    with pytest.raises(ConfigError, match=r"'model\.sr\.blokcs' in .*c\.yaml.*did you mean 'model\.sr\.blocks'"):
        load_config(cfg_file)


def test_types_are_checked():
    with pytest.raises(ConfigError, match=r"'data\.max_len' .* must be int, got str 'long'"):
        load_config(None, ["data.max_len=long"])
    with pytest.raises(ConfigError, match=r"'data\.mask' .* must be bool"):
        load_config(None, ["data.mask=3"])
    with pytest.raises(ConfigError, match=r"'data\.max_len' .* must be int, got bool"):
        load_config(None, ["data.max_len=true"])
    with pytest.raises(ConfigError, match=r"'data' .* must be a mapping"):
        load_config(None, ["data=3"])
    # an int where a float is expected is fine: it is a number
    assert load_config(None, ["model.sr.channels=32"])["model"]["sr"]["channels"] == 32
    # null only where the default is null, or where the schema gives null a meaning (tsr.config.NULLABLE)
    with pytest.raises(ConfigError, match=r"'train\.steps' .* must be int, got null"):
        load_config(None, ["train.steps=null"])
    assert load_config(None, ["train.feature_grad_start=null"])["train"]["feature_grad_start"] is None
    assert load_config(None, ["train.feature_grad_start=7"])["train"]["feature_grad_start"] == 7
    demo_cnn = Path(__file__).resolve().parents[1] / "configs" / "demo" / "joint_feature_cnn.yaml"
    assert load_config(str(demo_cnn))["train"]["feature_grad_start"] is None


def test_choices_are_checked():
    with pytest.raises(ConfigError, match=r"'data\.label_filter' must be one of \['lower', 'all'\], got 'upper'"):
        load_config(None, ["data.label_filter=upper"])
    assert load_config(None, ["model.adapter.type=sidernn+mlp"])["model"]["adapter"]["type"] == "sidernn+mlp"
    with pytest.raises(ConfigError, match=r"'eval\.protocol' must be one of \['textzoom', 'standard'\], got 'skimage'"):
        load_config(None, ["eval.protocol=skimage"])


def test_default_protocol_is_textzoom_in_the_config_and_the_evaluator():
    from tsr.metrics.protocol import DEFAULT

    assert load_config()["eval"]["protocol"] == DEFAULT == "textzoom"


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"does not exist \(named in _base_ of"):
        load_config(write(tmp_path / "a.yaml", {"_base_": "missing.yaml"}))
    with pytest.raises(ConfigError, match="includes itself"):
        write(tmp_path / "x.yaml", {"_base_": "y.yaml"})
        load_config(write(tmp_path / "y.yaml", {"_base_": "x.yaml"}))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path / "bad.yaml", "data: [unclosed\n"))
    with pytest.raises(ConfigError, match="mapping at top level"):
        load_config(write(tmp_path / "list.yaml", "- 1\n- 2\n"))


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(None, ["run.name=saved", "data.max_len=9"])
    save_config(cfg, tmp_path / "run" / "config.yaml")
    assert load_config(tmp_path / "run" / "config.yaml") == cfg
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["config.yaml"]  # no temp file left behind


def test_every_shipped_config_resolves():
    configs = sorted(Path(__file__).resolve().parents[1].joinpath("configs").rglob("*.yaml"))
    for path in configs:
        load_config(path)


def test_cli_reports_config_errors_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "tsr", "config", "data.max_lne=3"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "tsr config: error: unknown config key 'data.max_lne'" in proc.stderr
    assert "Traceback" not in proc.stderr
    ok = subprocess.run([sys.executable, "-m", "tsr", "config", "run.seed=7"], capture_output=True, text=True)
    assert ok.returncode == 0 and yaml.safe_load(ok.stdout)["run"]["seed"] == 7


def test_cli_get_prints_one_resolved_value_for_the_launch_scripts():
    """`tsr config --get KEY` (launch/torchrun.sh's STEPS_X, ablation.sh, efficiency.sh): the value after the
    config's _base_ chain and the overrides; a string as it is, anything else as one line of YAML; a key that is
    not there is a one-line error naming it and what is there."""
    sr = str(Path(__file__).resolve().parents[1] / "configs" / "demo" / "sr.yaml")

    def get(*args):
        proc = subprocess.run([sys.executable, "-m", "tsr", "config", "--config", sr, *args], capture_output=True,
                              text=True)
        return proc.returncode, proc.stdout, proc.stderr.strip()
    cfg = load_config(sr)
    assert get("--get", "train.steps") == (0, f"{cfg['train']['steps']}\n", "")
    assert get("--get", "train.steps", "train.steps=10") == (0, "10\n", "")
    assert get("--get", "data.test_root") == (0, f"{cfg['data']['test_root']}\n", "")
    beta1, beta2 = cfg["train"]["betas"]
    assert get("--get", "train.betas") == (0, f"[{beta1}, {beta2}]\n", "")
    assert get("--get", "train.init") == (0, "null\n", "")
    code, out, err = get("--get", "train.stepz")
    assert (code, out) == (2, "") and err.startswith(
        "tsr config: error: --get train.stepz: no key 'stepz' under 'train' (keys there: tasks, ")
    assert get("--get", "train.steps.x") == (
        2, "", "tsr config: error: --get train.steps.x: 'train.steps' is a value, not a section")


def test_a_dotted_override_into_a_mapping_sets_one_entry_and_keeps_the_files():
    """`train.task_weights.align=2` adds align to the config file's weights (it used to replace the whole mapping,
    dropping the file's `content: 0.15` without a word); a whole mapping still replaces, as in a config file."""
    demo = Path(__file__).resolve().parents[1] / "configs" / "demo"
    train = load_config(demo / "joint_feature.yaml")["train"]
    assert train["task_weights"] == {"content": 0.15} and train["task_start"] == {"rec": 30}
    assert len(train["lr_scale"]) == 2

    over = load_config(demo / "joint_feature.yaml", ["train.task_weights.align=2", "train.task_start.align=5",
                                                     "train.lr_scale.sr=2", "train.task_weights.content=0.5"])["train"]
    assert over["task_weights"] == {"content": 0.5, "align": 2}
    assert over["task_start"] == {"rec": 30, "align": 5}
    assert over["lr_scale"] == {**train["lr_scale"], "sr": 2}
    whole = load_config(demo / "joint_feature.yaml", ["train.task_weights={align: 2}"])["train"]
    assert whole["task_weights"] == {"align": 2}
    # the entry is checked as any value of the mapping; a key below an entry is not a number
    with pytest.raises(ConfigError, match=r"'train\.task_weights' .*each >= 0.*\(bad: align: -1\)"):
        load_config(demo / "joint_feature.yaml", ["train.task_weights.align=-1"])
    with pytest.raises(ConfigError, match=r"'train\.task_weights' .*mapping of names to float.*\(align: dict"):
        load_config(None, ["train.task_weights.align.x=2"])


@pytest.mark.parametrize("override, message", [
    # list items are checked against the default's items (these passed, then failed as tracebacks in the run)
    ("data.train_roots=[[a]]", r"'data\.train_roots' .* must be a list of str, got \[\['a'\]\] \(item 0: list \['a'\]\)"),
    ("data.train_roots=5", r"'data\.train_roots' .* must be a list of str, got int 5$"),
    ("data.test_splits=[easy, 1]", r"'data\.test_splits' .* must be a list of str, got \['easy', 1\] \(item 1: int 1\)"),
    ("model.recognizer.cnn_channels=[4.5,8,8,8,16,16,16]", r"must be a list of int, .*\(item 0: float 4\.5\)"),
    ("train.betas=[true, 0.9]", r"'train\.betas' .* must be a list of float, .*\(item 0: bool True\)"),
    # keys whose default (null, [], {}) shows no type take the type declared in tsr.config.TYPES
    ("train.init=5", r"'train\.init' .* must be str, got int 5"),
    ("eval.recognizer=5", r"'eval\.recognizer' .* must be str, got int 5"),
    ("model.adapter.type=[dense]", r"'model\.adapter\.type' .* must be str, got list"),
    ("train.val_limit=1.5", r"'train\.val_limit' .* must be int, got float 1\.5"),
    ("train.lr_milestones=[1.5]", r"'train\.lr_milestones' .* must be a list of int"),
    ("train.content_layers=[1]", r"'train\.content_layers' .* must be a list of str"),
    ("train.task_start={rec: 1.5}", r"'train\.task_start' .* must be a mapping of names to int, .*\(rec: float 1\.5\)"),
    ("train.task_weights={1: 2}", r"'train\.task_weights' .* must be a mapping of names, got \{1: 2\} \(not a name: 1\)"),
    ("train.lr_scale=[2]", r"'train\.lr_scale' .* must be dict, got list"),
])
def test_list_items_and_keys_without_a_typed_default_are_type_checked(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_typed_values_that_fit_are_kept_as_written():
    cfg = load_config(None, ["data.train_roots=/x", "train.init=runs/sr/last.pth", "train.val_limit=3",
                             "train.lr_milestones=[10, 20]", "train.task_weights={sr: 1, rec: 0.5}",
                             "model.parts=[sr, head]", "train.content_layers=[cnn.relu1]", "eval.recognizer=null"])
    assert cfg["data"]["train_roots"] == ["/x"] and cfg["train"]["val_limit"] == 3
    assert cfg["train"]["task_weights"] == {"sr": 1, "rec": 0.5} and cfg["train"]["lr_milestones"] == [10, 20]
    assert cfg["train"]["init"] == "runs/sr/last.pth" and cfg["eval"]["recognizer"] is None


def test_every_key_has_a_type():
    """A new key with a null, [] or {} default must be declared in TYPES, else it would take anything."""
    from tsr.config import TYPES, value_type

    def keys(tree, prefix=""):
        for key, value in tree.items():
            if isinstance(value, dict) and value:
                yield from keys(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value
    defaults = dict(keys(load_defaults()))
    assert set(TYPES) <= set(defaults)
    for dotted, default in defaults.items():
        value_type(dotted, default)   # KeyError: no type
        if isinstance(default, list):   # a list default's items have one type, the key's
            assert len({type(item) for item in default}) <= 1, dotted


@pytest.mark.parametrize("override", ["data.test_splits=[1]", "train.init=5", "train.val_limit=1.5",
                                      "run.seed=100000000000000000000", "train.distill_temperature=0"])
@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_train_refuses_such_values_in_one_line_before_the_run_folder(override, dry_run, tmp_path, capsys):
    from tsr.cli import main as tsr_main

    sr = Path(__file__).resolve().parents[1] / "configs" / "demo" / "sr.yaml"
    code = tsr_main(["train", "--config", str(sr), f"run.out_root={tmp_path / 'runs'}", override, *dry_run])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"tsr train: error: config key '{override.split('=')[0]}'"), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_a_config_file_given_as_an_override_or_a_folder_is_named_as_such(tmp_path):
    """Every command that takes overrides has --config (not all have --ckpt, which the message used to name); a
    folder was reported as not existing."""
    with pytest.raises(ConfigError, match=r"override 'configs/demo/sr\.yaml' is not of the form key=value .*; a "
                                          r"config file goes after --config \(--config configs/demo/sr\.yaml\)$"):
        parse_override("configs/demo/sr.yaml")
    with pytest.raises(ConfigError, match=r"a file or path goes after its flag \(--help lists them\)$") as e:
        parse_override("runs/sr/last.pth")
    assert "--ckpt" not in str(e.value)
    (tmp_path / "stage").mkdir()
    write(tmp_path / "stage" / "b.yaml", {})
    write(tmp_path / "stage" / "a.yaml", {})
    with pytest.raises(ConfigError, match=r"config file .*stage is a folder; expected a YAML file \(it holds a\.yaml, "
                                          r"b\.yaml\)$"):
        load_config(tmp_path / "stage")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"config file .*empty is a folder; expected a YAML file \(named in _base_ "
                                          r"of .*top\.yaml\)$"):
        load_config(write(tmp_path / "top.yaml", {"_base_": "empty"}))
