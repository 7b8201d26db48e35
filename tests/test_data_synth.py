import json
import subprocess
import sys

import lmdb
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
import io

from tsr.data.lmdb_dataset import load_test_splits
from tsr.data.synth import synthesize
from tsr.errors import DataError
from tsr.metrics.image import psnr, ssim


def all_records(path):
    env = lmdb.open(str(path), readonly=True, lock=False)
    with env.begin() as txn:
        records = dict(txn.cursor())
    env.close()
    return records


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    synthesize(out, n_train=24, n_test=40, seed=3, workers=2)
    return out


def test_layout_sizes_and_labels(synth_dir):
    assert sorted(p.name for p in (synth_dir / "test").iterdir()) == ["easy", "hard", "medium"]
    manifest = json.loads((synth_dir / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 24, "easy": 40, "medium": 40, "hard": 40}
    assert len(manifest["fonts"]) >= 3
    records = all_records(synth_dir / "train")
    assert records[b"num-samples"] == b"24"
    hr = Image.open(io.BytesIO(records[b"image_hr-000000001"]))
    lr = Image.open(io.BytesIO(records[b"image_lr-000000024"]))
    assert (hr.format, hr.size, lr.format, lr.size) == ("PNG", (128, 32), "PNG", (64, 16))
    labels = [records[b"label-%09d" % i].decode() for i in range(1, 25)]
    for split in ("easy", "medium", "hard"):
        test = all_records(synth_dir / "test" / split)
        labels += [test[b"label-%09d" % i].decode() for i in range(1, 41)]
    assert all(labels) and len(set(labels)) > 100
    # mixed case and digits occur, as in street text
    assert any(l.isupper() for l in labels) and any(l.istitle() for l in labels) and any(c.isdigit() for l in labels for c in l)


def test_same_seed_is_byte_identical_whatever_the_workers(synth_dir, tmp_path):
    synthesize(tmp_path / "again", n_train=24, n_test=0, seed=3, workers=1)
    assert all_records(tmp_path / "again" / "train") == all_records(synth_dir / "train")
    synthesize(tmp_path / "other", n_train=24, n_test=0, seed=4, workers=2)
    assert all_records(tmp_path / "other" / "train") != all_records(synth_dir / "train")


def test_levels_get_harder(synth_dir):
    splits = load_test_splits(synth_dir / "test", mask=False)
    means = {}
    for name, ds in splits.items():
        hr = torch.stack([ds[i]["hr"] for i in range(len(ds))])
        lr = torch.stack([ds[i]["lr"] for i in range(len(ds))])
        up = F.interpolate(lr, size=(32, 128), mode="bicubic", align_corners=False).clamp(0, 1)
        means[name] = (psnr(up, hr).mean().item(), ssim(up, hr).mean().item())
    (pe, se), (pm, sm), (ph, sh) = means["easy"], means["medium"], means["hard"]
    assert pe > pm > ph and se > sm + 0.05 > sh + 0.1, means


def test_refuses_to_overwrite_and_cli_reuse(synth_dir, tmp_path):
    with pytest.raises(DataError, match="already exist"):
        synthesize(synth_dir, n_train=2, n_test=0, seed=3)
    cmd = [sys.executable, "-m", "tsr", "synth", "--out", str(tmp_path / "d"), "--train", "5", "--test", "2"]
    first = subprocess.run(cmd, capture_output=True, text=True)
    assert first.returncode == 0 and "train=5, easy=2, medium=2, hard=2" in first.stdout
    again = subprocess.run(cmd + ["--reuse"], capture_output=True, text=True)
    assert again.returncode == 0 and "reusing" in again.stdout
    refused = subprocess.run(cmd, capture_output=True, text=True)
    assert refused.returncode == 2 and "already exist" in refused.stderr and "Traceback" not in refused.stderr
    bad_fonts = subprocess.run(cmd + ["--overwrite", "--fonts", str(tmp_path)], capture_output=True, text=True)
    assert bad_fonts.returncode == 2 and "no .ttf or .otf files" in bad_fonts.stderr
