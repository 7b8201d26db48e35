"""tsr.engine.validation: the rows validation evaluates, val_limit, the A-figures that choose the best
checkpoints, the judge of eval.recognizer, and the picture grids."""
import pytest
import torch

from tsr.checkpoint import save_checkpoint
from tsr.config import load_config
from tsr.data.lmdb_dataset import dataset_options, load_test_splits
from tsr.data.synth import synthesize
from tsr.engine.validation import Validator
from tsr.models.build import build_model

TINY = ["model.sr.channels=8", "model.sr.blocks=1", "model.sr.stn=false", "model.recognizer.hidden=8",
        "model.recognizer.cnn_channels=[4,8,8,8,16,16,16]", "train.val_limit=4", "train.num_images=2",
        "eval.batch_size=4", "data.num_workers=0"]


@pytest.fixture(scope="module")
def test_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("valsynth")
    synthesize(out, n_train=0, n_test=[5, 4, 3], seed=2, workers=1)
    return out / "test"


def validator(test_root, *overrides):
    cfg = load_config(overrides=[*TINY, *overrides])
    torch.manual_seed(0)
    splits = load_test_splits(test_root, cfg["data"]["test_splits"], **dataset_options(cfg["data"]))
    return Validator(cfg, splits, torch.device("cpu")), build_model(cfg), cfg


def weighted(results, row, metric):
    """A over the splits by hand: sample-weighted (val_limit 4 leaves 4, 4 and 3 samples)."""
    per_split = dict(results)[row]
    return sum(r[metric] * r["n"] for r in per_split.values()) / sum(r["n"] for r in per_split.values())


def test_a_model_with_a_recognizer_is_scored_on_its_own_row(test_root):
    val, model, _ = validator(test_root)
    model.train()
    results, score, pictures = val.run(model)
    assert model.training                                        # validation gives the training mode back
    assert [name for name, _ in results] == ["bicubic", "model", "HR"]
    assert [r["n"] for r in dict(results)["model"].values()] == [4, 4, 3]
    assert val.scored_row(model) == "model"
    assert score["psnr"] == pytest.approx(weighted(results, "model", "psnr"), abs=1e-9)
    assert score["acc"] == pytest.approx(weighted(results, "model", "acc"), abs=1e-12)
    assert score["psnr"] != pytest.approx(weighted(results, "bicubic", "psnr"), abs=1e-6)
    assert sorted(pictures) == ["easy", "hard", "medium"] and all(p.size[0] > 0 for p in pictures.values())


def test_a_recognizer_alone_is_scored_on_hr_images(test_root):
    val, model, _ = validator(test_root, "model.parts=[recognizer]", "train.tasks=[rec]")
    results, score, _ = val.run(model)
    assert [name for name, _ in results] == ["bicubic", "HR"] and val.scored_row(model) == "HR"
    assert score["acc"] == pytest.approx(weighted(results, "HR", "acc"), abs=1e-12)
    assert score["psnr"] is None and score["ssim"] is None


def test_an_sr_model_is_read_by_the_judge_of_eval_recognizer(test_root, tmp_path):
    val, model, _ = validator(test_root, "model.parts=[sr,head]", "train.tasks=[sr]")
    _, score, _ = val.run(model)
    assert score["acc"] is None and score["psnr"] is not None     # nobody reads the text
    _, reader_model, reader_cfg = validator(test_root, "model.parts=[recognizer]", "train.tasks=[rec]")
    save_checkpoint(tmp_path / "reader.pth", reader_model, reader_cfg, step=1)
    val, model, _ = validator(test_root, "model.parts=[sr,head]", "train.tasks=[sr]",
                              f"eval.recognizer={tmp_path / 'reader.pth'}")
    results, score, _ = val.run(model)
    judge = val._judge
    assert judge is not None and judge.name == "CRNN"
    assert score["acc"] == pytest.approx(weighted(results, "model", "acc"), abs=1e-12)
    val.run(model)
    assert val._judge is judge                                   # loaded once, not at every validation


def test_eval_recognizer_reads_a_joint_model_instead_of_its_own_reading(test_root, tmp_path):
    """A feature-level model reads its SR features through its adapter; with eval.recognizer set the fixed judge
    reads its SR images instead, so best_acc_model.pth is chosen by the same reader for every stage."""
    joint = ["model.parts=[sr,head,recognizer,adapter]", "model.adapter.type=dense", "model.adapter.hidden=8",
             "model.recognizer.trainable=sequence", "train.tasks=[sr,rec]"]
    val, model, _ = validator(test_root, *joint)
    own, _, _ = val.run(model)
    assert val._judge is None and val.reader(model) == "read by the model's own recognizer"
    _, reader_model, reader_cfg = validator(test_root, "model.parts=[recognizer]", "train.tasks=[rec]")
    save_checkpoint(tmp_path / "judge.pth", reader_model, reader_cfg, step=1)
    read = []
    val, model, _ = validator(test_root, *joint, f"eval.recognizer={tmp_path / 'judge.pth'}")
    assert val.reader(model) == f"read by eval.recognizer={tmp_path / 'judge.pth'}"
    judge_read = val._recognizer(model)
    val._recognizer = lambda m: (lambda images: read.append(len(images)) or judge_read(images))
    judged, score, _ = val.run(model)
    assert sum(read) == 3 * (4 + 4 + 3)                       # bicubic, the SR images and HR: all by the judge
    assert score["acc"] == pytest.approx(weighted(judged, "model", "acc"), abs=1e-12)
    assert dict(judged)["model"]["easy"]["psnr"] == pytest.approx(dict(own)["model"]["easy"]["psnr"], abs=1e-9)
    # a recognizer alone keeps its own reading of HR
    val, model, _ = validator(test_root, "model.parts=[recognizer]", "train.tasks=[rec]",
                              f"eval.recognizer={tmp_path / 'judge.pth'}")
    assert not val._judged(model)
