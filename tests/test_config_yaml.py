"""How config YAML is read: YAML 1.2 booleans, duplicate keys, empty overrides, odd files -> one-line errors."""
import subprocess
import sys

import pytest

from tsr.config import ConfigError, load_config, parse_override
from tsr.config_yaml import bool_from_word, load_yaml


def test_documented_words_stay_strings_where_strings_are_expected(tmp_path):
    assert load_config(None, ["train.amp=off"])["train"]["amp"] == "off"
    (tmp_path / "c.yaml").write_text("train:\n  amp: off\ndata:\n  mask: no\n  cache: on\n")
    cfg = load_config(tmp_path / "c.yaml")
    assert cfg["train"]["amp"] == "off" and cfg["data"]["mask"] is False and cfg["data"]["cache"] is True
    assert load_config(None, ["data.mask=Off"])["data"]["mask"] is False
    assert load_yaml("a: true\nb: off\nc: False") == {"a": True, "b": "off", "c": False}
    assert bool_from_word("YES") is True and bool_from_word("maybe") is None and bool_from_word(0) is None


def test_a_key_written_twice_is_an_error(tmp_path):
    (tmp_path / "dup.yaml").write_text("train:\n  lr: 0.1\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match=r"dup.yaml is not valid YAML: duplicate key 'lr' \(first on line 2\), line 3"):
        load_config(tmp_path / "dup.yaml")


def test_empty_override_values_and_nulls_for_required_keys():
    with pytest.raises(ConfigError, match=r"override 'train.lr=' has no value"):
        parse_override("train.lr=")
    with pytest.raises(ConfigError, match=r"'run.name' in override 'run.name=null' must be str, got null"):
        load_config(None, ["run.name=null"])
    assert load_config(None, ["train.init=null"])["train"]["init"] is None     # optional keys may be cleared


def test_bad_base_and_binary_files(tmp_path):
    (tmp_path / "b.yaml").write_text("_base_: 5\n")
    with pytest.raises(ConfigError, match=r"_base_ must be a file name or a list of file names, got 5"):
        load_config(tmp_path / "b.yaml")
    (tmp_path / "bin.yaml").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match=r"bin.yaml is not a text file"):
        load_config(tmp_path / "bin.yaml")


def test_cli_gives_one_line_and_exit_2(tmp_path):
    (tmp_path / "bin.yaml").write_bytes(b"\xe7\x00\xff" * 50)
    for args in (["--config", str(tmp_path / "bin.yaml")], ["train.lr="]):
        proc = subprocess.run([sys.executable, "-m", "tsr", "config", *args], capture_output=True, text=True)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
