"""Public ASTER / MORAN files -> tsr: direct loading, `tsr convert --from aster|moran`, `module.` handling and
one-line errors for wrong layouts and other recognizers' files."""
import pytest
import torch

from public_recognizer_files import aster_state, moran_state, write_public_files
from tsr import api
from tsr.checkpoint import read_checkpoint
from tsr.cli import main
from tsr.errors import CheckpointError
from tsr.checkpoint import public
from tsr.models.aster import Aster
from tsr.models.moran import Moran


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_public_files(tmp_path_factory.mktemp("public"))


def test_detects_each_layout():
    detect = public.detect_public_format
    assert detect({"state_dict": aster_state(), "epoch": 1}) == "aster"
    assert detect(aster_state()) == "aster"
    assert detect({f"module.{k}": v for k, v in moran_state().items()}) == "moran"
    assert detect(moran_state()) == "moran"                         # without DataParallel's prefix too
    assert detect({"cnn.conv0.weight": torch.zeros(1)}) == "crnn-pytorch"
    assert detect({"state_dict": {"x": torch.zeros(1)}}) is None


def test_moran_module_prefix_is_stripped():
    state = public.judge_to_part({f"module.{k}": v for k, v in moran_state().items()}, "moran")
    assert set(state) == set(Moran().state_dict()) and all(not k.startswith("module.") for k in state)


def test_loaded_directly_the_models_read_as_built(files):
    images = torch.rand(2, 3, 32, 128, generator=torch.Generator().manual_seed(3))
    for kind, cls, state in (("aster", Aster, aster_state()), ("moran", Moran, moran_state())):
        model, cfg = api.load(files[kind])
        assert cfg["model"]["recognizer"]["type"] == kind and list(model.keys()) == ["recognizer"]
        assert model["recognizer"].trainable == "none"
        reference = cls().eval()
        reference.load_state_dict(state)
        with torch.no_grad():
            expected = reference.words(reference.symbol_ids(images))
        assert api.recognize(model, images, cfg) == expected
        loaded = model["recognizer"].net.state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_convert_writes_a_tsr_checkpoint_that_loads_alike(files, tmp_path, capsys):
    out = tmp_path / "aster_tsr.pth"
    assert main(["convert", "--from", "aster", str(files["aster"]), "--out", str(out)]) == 0
    assert "loaded 384/384 model tensors" in capsys.readouterr().out
    converted = read_checkpoint(out)
    assert converted["format"] == "tsr" and converted["converted_from"] == "aster"
    assert len(converted["model"]) == 384 and all(k.startswith("recognizer.net.") for k in converted["model"])
    assert main(["convert", "--from", "moran", str(files["moran"]), "--out", str(tmp_path / "m.pth")]) == 0


def test_another_recognizers_file_is_a_one_line_error(files, tmp_path, capsys):
    assert main(["convert", "--from", "aster", str(files["moran"]), "--out", str(tmp_path / "x.pth")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "expected a aster checkpoint, but it is a moran checkpoint; use --from moran" in err
    assert main(["convert", "--from", "moran", str(files["crnn"]), "--out", str(tmp_path / "x.pth")]) == 2
    assert "it is a crnn-pytorch checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("damage, message", [
    (lambda s: s.pop("decoder.decoder.fc.bias"), "missing 1 (e.g. decoder.decoder.fc.bias)"),
    (lambda s: s.__setitem__("decoder.decoder.fc.weight", torch.zeros(37, 512)),
     "wrong shape 1 (e.g. decoder.decoder.fc.weight [37, 512] (expected [97, 512]))"),
    (lambda s: s.__setitem__("decoder.extra", torch.zeros(1)), "unexpected 1 (e.g. decoder.extra)"),
])
def test_a_damaged_layout_is_a_one_line_error(tmp_path, damage, message):
    state = aster_state()
    damage(state)
    path = tmp_path / "demo.pth.tar"
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(path)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert "not the layout of ASTER's demo.pth.tar" in str(error.value)


def test_to_part_names_what_it_found():
    with pytest.raises(CheckpointError, match="expected MORAN's moran.pth .MORAN_v2., but it holds ASTER's keys; use aster:PATH"):
        public.judge_to_part(aster_state(), "moran")
    with pytest.raises(CheckpointError, match="but it holds none of its keys"):
        public.judge_to_part({"x": torch.zeros(1)}, "aster")
