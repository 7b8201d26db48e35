"""Checkpoint integrity: a digest of the stored tensors is verified on load (flipped bytes are an error, not other
weights), and a checkpoint is never written with non-finite weights."""
import pytest
import torch

from tsr.checkpoint import read_checkpoint, write_checkpoint
from tsr.checkpoint.integrity import DIGEST_KEY, non_finite_keys, tensor_digest
from tsr.config import load_config
from tsr.errors import CheckpointError


def payload(weight):
    return {"format": "tsr", "version": 1, "model": {"sr.net.w": weight}, "config": load_config(), "step": 0,
            "metrics": None}


def test_flipped_bytes_in_a_stored_tensor_are_an_error(tmp_path):
    weight = torch.arange(256, dtype=torch.float32) + 0.5
    path = write_checkpoint(tmp_path / "c.pth", payload(weight))
    assert torch.equal(read_checkpoint(path)["model"]["sr.net.w"], weight)
    data = bytearray(path.read_bytes())
    at = bytes(data).index(weight.numpy().tobytes())      # the tensor's bytes, stored as they are in the zip
    data[at + 40] ^= 0x10                                  # one flipped bit: torch.load alone would not notice
    path.write_bytes(bytes(data))
    assert not torch.equal(torch.load(path, weights_only=True)["model"]["sr.net.w"], weight)
    with pytest.raises(CheckpointError, match=r"c.pth: its tensors do not match the checksum stored with them"):
        read_checkpoint(path)


def test_digest_covers_every_tensor_and_its_place():
    a = {"model": {"x": torch.zeros(3)}, "optimizer": {"state": {0: {"exp_avg": torch.ones(2)}}}}
    b = {"model": {"x": torch.zeros(3)}, "optimizer": {"state": {0: {"exp_avg": torch.ones(2) * 2}}}}
    assert tensor_digest(a) != tensor_digest(b)
    assert tensor_digest({"y": torch.zeros(3)}) != tensor_digest({"x": torch.zeros(3)})
    assert tensor_digest({**a, DIGEST_KEY: "anything"}) == tensor_digest(a)


def test_non_finite_weights_are_never_written(tmp_path):
    weight = torch.tensor([1.0, float("nan"), float("inf")])
    assert non_finite_keys({"a": weight, "b": torch.ones(2), "n": torch.tensor(3)}) == ["a"]
    with pytest.raises(CheckpointError, match=r"refusing to write .*c.pth: non-finite weights \(NaN/inf\) in 1 "
                                              r"tensor\(s\), sr.net.w"):
        write_checkpoint(tmp_path / "c.pth", payload(weight))
    assert list(tmp_path.iterdir()) == []
