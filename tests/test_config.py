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
    with pytest.raises(ConfigError, match=r"'train\.task_weights' .*\(bad: align: \{'x': 2\}\)"):
        load_config(None, ["train.task_weights.align.x=2"])
