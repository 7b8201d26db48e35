"""tsr.provenance (what every checkpoint and summary.json record) and `tsr show CKPT`."""
import sys

import torch

from tsr import __version__, provenance
from tsr.checkpoint import read_checkpoint, write_checkpoint
from tsr.cli import main
from test_api_and_commands import small_checkpoint


def test_collect_records_command_versions_commit_and_device(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/usr/bin/tsr", "train", "--config", "configs/sr.yaml", "run.name=a b"])
    record = provenance.collect()
    assert record["command"] == "tsr train --config configs/sr.yaml 'run.name=a b'"
    assert record["tsr_version"] == __version__
    assert record["torch"] == torch.__version__ and type(record["torch"]) is str
    assert record["world_size"] == 1
    assert record["device"].startswith("cpu") or torch.cuda.is_available()
    # this test runs inside tsr's git checkout: a 40-hex commit, maybe marked dirty
    commit = record["git_commit"]
    assert commit is not None and len(commit.split("+")[0]) == 40


def test_every_checkpoint_records_provenance_and_show_prints_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["tsr", "merge", "--out", "x.pth"])
    model, cfg = small_checkpoint(tmp_path / "a.pth")
    saved = read_checkpoint(tmp_path / "a.pth")
    assert saved["provenance"]["command"] == "tsr merge --out x.pth"
    # a payload written by write_checkpoint (merge / convert) is stamped too, by the process that wrote it
    monkeypatch.setattr(sys, "argv", ["tsr", "convert", "in.pth"])
    write_checkpoint(tmp_path / "b.pth", {**saved, "metrics": {"acc": 0.5}})
    assert read_checkpoint(tmp_path / "b.pth")["provenance"]["command"] == "tsr convert in.pth"

    assert main(["show", str(tmp_path / "b.pth"), "--config"]) == 0
    out = capsys.readouterr().out
    sr_values = sum(v.numel() for k, v in model.state_dict().items() if k.startswith("sr."))
    assert f"  {'sr':<12} {sr_values:>12,}  (type tsrn, trainable all)" in out
    assert "step: 3" in out and '"acc": 0.5' in out
    assert "command: tsr convert in.pth" in out and f"tsr_version: {__version__}" in out
    assert "config:" in out and "blocks: 1" in out


def test_show_of_a_file_without_provenance(tmp_path, capsys):
    small_checkpoint(tmp_path / "a.pth")
    payload = torch.load(tmp_path / "a.pth", weights_only=True)
    del payload["provenance"]
    torch.save(payload, tmp_path / "old.pth")
    assert main(["show", str(tmp_path / "old.pth")]) == 0
    assert "provenance:\n  (none recorded)" in capsys.readouterr().out
