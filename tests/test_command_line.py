"""One command-line convention (tsr/commands/options.py, tsr/cli.py): --version, --batch-size and --device on every
command that has them, defaults in --help, key=value overrides that --ckpt cannot swallow, one value for a list key."""
import pytest
import torch

from tsr.cli import build_parser, main
from tsr.commands.options import split_overrides
from tsr.config import ConfigError, is_override, load_config
from test_api_and_commands import small_checkpoint


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("tsr 0.")


@pytest.mark.parametrize("command", ["bench", "profile", "sr", "eval"])
def test_batch_size_and_device_are_spelled_alike(command):
    parser = build_parser()
    required = {"sr": ["--ckpt", "a", "--input", "b", "--out", "c"], "eval": ["--data", "d"]}.get(command, [])
    args = parser.parse_args([command, *required, "--batch-size", "3", "--device", "cpu"])
    assert args.batch_size == 3 and args.device == "cpu"
    assert parser.parse_args([command, *required]).device == "auto"
    with pytest.raises(SystemExit):
        parser.parse_args([command, *required, "--device", "gpu"])


def test_help_shows_defaults_and_every_flag_has_text(capsys):
    parser = build_parser()
    for name, sub in parser._subparsers._group_actions[0].choices.items():
        for action in sub._actions:
            assert action.help, f"tsr {name} {action.option_strings or action.dest} has no help text"
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "training batch (default: 32)" in out and "timed training steps per stage and mode (SR forwards per batch size with --int8) (default: 5)" in out


def test_override_tokens_are_told_from_paths(tmp_path):
    assert is_override("data.max_len=20") and is_override("run.name=a=b")
    assert not is_override("runs/a=b/best.pth") and not is_override("best.pth") and not is_override("=3")
    existing = tmp_path / "x=1.pth"
    existing.write_bytes(b"")
    assert split_overrides(["a.pth", "data.max_len=20", "b.pth:label"]) == (["a.pth", "b.pth:label"], ["data.max_len=20"])
    assert split_overrides([str(existing)]) == ([str(existing)], [])


def test_eval_takes_an_override_after_ckpt(tmp_path, monkeypatch):
    small_checkpoint(tmp_path / "a.pth")
    seen = {}

    def fake_run_eval(**kwargs):
        seen.update(kwargs)
        return {}

    monkeypatch.setattr("tsr.engine.run_eval.run_eval", fake_run_eval)
    assert main(["eval", "--data", str(tmp_path), "--device", "cpu", "--ckpt", str(tmp_path / "a.pth"),
                 "data.max_len=20"]) == 0
    assert seen["ckpts"] == [(str(tmp_path / "a.pth"), "a")] and seen["overrides"] == ["data.max_len=20"]


def test_a_path_where_an_override_belongs_says_what_to_do(capsys):
    assert main(["config", "best.pth"]) == 2
    # tsr config has no --ckpt, which this message used to name
    assert "override 'best.pth' is not of the form key=value (e.g. train.lr=1e-4); a file or path goes after its " \
           "flag (--help lists them)" in capsys.readouterr().err


def test_one_value_for_a_list_key_is_a_one_element_list():
    assert load_config(None, ["data.train_roots=/x"])["data"]["train_roots"] == ["/x"]
    assert load_config(None, ["data.train_roots=[/x,/y]"])["data"]["train_roots"] == ["/x", "/y"]
    with pytest.raises(ConfigError, match="must be list, got dict"):
        load_config(None, ["data.train_roots={a: 1}"])


def test_sr_device_goes_through_dist_init(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("needs a build without CUDA")
    small_checkpoint(tmp_path / "a.pth")
    from PIL import Image
    Image.new("RGB", (64, 16)).save(tmp_path / "w.png")
    assert main(["sr", "--ckpt", str(tmp_path / "a.pth"), "--input", str(tmp_path / "w.png"), "--out", str(tmp_path / "o"),
                 "--device", "cuda"]) == 2
    assert "--device is cuda, but this torch" in capsys.readouterr().err
