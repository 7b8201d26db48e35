import io
import json
import subprocess
import sys

import lmdb
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import tsr
from tsr.data.degrade import DEGRADATIONS, degrade
from tsr.data.fonts import find_fonts
from tsr.data.lmdb_dataset import build_train_dataset, collate, load_test_splits
from tsr.data.render import ink_mask, render_word, _font
from tsr.data.synth import GENERATOR_VERSION, matches_manifest, synthesize
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
    synthesize(out, n_train=40, n_test=30, seed=3, workers=2)
    return out


def test_layout_sizes_labels_and_manifest(synth_dir):
    assert sorted(p.name for p in synth_dir.iterdir()) == ["manifest.json", "test", "train"]
    assert sorted(p.name for p in (synth_dir / "test").iterdir()) == ["easy", "hard", "medium"]
    manifest = json.loads((synth_dir / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 40, "easy": 30, "medium": 30, "hard": 30}
    assert manifest["arguments"] == {"train": 40, "test": 30, "seed": 3, "workers": 2, "fonts": None}
    assert manifest["tsr_version"] == tsr.__version__ and manifest["generator_version"] == GENERATOR_VERSION
    assert manifest["degradations"]["hard"] == {k: list(v) for k, v in DEGRADATIONS["hard"].items()}
    assert manifest["fonts"] == [str(p) for p in find_fonts()] and len(manifest["fonts"]) >= 3
    records = all_records(synth_dir / "train")
    # TextZoom's keys only: num-samples + 3 per record, 1-indexed
    assert records[b"num-samples"] == b"40" and len(records) == 1 + 3 * 40 and b"label-000000040" in records
    labels = [records[b"label-%09d" % i].decode() for i in range(1, 41)]
    for i in (1, 40):
        hr = Image.open(io.BytesIO(records[b"image_hr-%09d" % i]))
        lr = Image.open(io.BytesIO(records[b"image_lr-%09d" % i]))
        assert (hr.format, hr.size, hr.mode, lr.format, lr.size, lr.mode) == ("PNG", (128, 32), "RGB", "PNG",
                                                                              (64, 16), "RGB")
    for split in ("easy", "medium", "hard"):
        test = all_records(synth_dir / "test" / split)
        assert test[b"num-samples"] == b"30"
        labels += [test[b"label-%09d" % i].decode() for i in range(1, 31)]
    assert all(labels) and len(set(labels)) > 100
    # mixed case and digits occur, as in street text; labels are stored as rendered
    assert any(l.isupper() for l in labels) and any(l.istitle() for l in labels) and any(l.islower() for l in labels)
    assert any(c.isdigit() for l in labels for c in l)


def test_same_seed_is_byte_identical_whatever_the_workers(synth_dir, tmp_path):
    synthesize(tmp_path / "again", n_train=40, n_test=0, seed=3, workers=1)
    assert all_records(tmp_path / "again" / "train") == all_records(synth_dir / "train")
    assert not (tmp_path / "again" / "test").exists()
    synthesize(tmp_path / "other", n_train=40, n_test=0, seed=4, workers=2)
    other, same = all_records(tmp_path / "other" / "train"), all_records(synth_dir / "train")
    assert sum(other[b"image_hr-%09d" % i] != same[b"image_hr-%09d" % i] for i in range(1, 41)) == 40


def test_dataset_reads_it(synth_dir):
    train = build_train_dataset([synth_dir / "train"], label_filter="all", max_len=25)
    batch = collate([train[i] for i in range(len(train))])
    assert batch["corrupt"] == 0 and batch["hr"].shape == (40, 4, 32, 128) and batch["lr"].shape == (40, 4, 16, 64)
    # TextZoom's mask (grey <= mean): the text of dark-on-light crops (most), the ground of light-on-dark ones
    coverage = batch["hr"][:, 3].mean(dim=(1, 2))
    assert ((coverage > 0.03) & (coverage < 0.97)).all() and (coverage < 0.5).float().mean() > 0.5, coverage
    lower = build_train_dataset([synth_dir / "train"])
    assert all(l == l.lower() for l in lower.datasets[0].labels)


def test_levels_get_harder(synth_dir):
    splits = load_test_splits(synth_dir / "test", mask=False)
    means = {}
    for name, ds in splits.items():
        batch = collate([ds[i] for i in range(len(ds))])
        up = F.interpolate(batch["lr"], size=(32, 128), mode="bicubic", align_corners=False).clamp(0, 1)
        means[name] = (psnr(up, batch["hr"]).mean().item(), ssim(up, batch["hr"]).mean().item())
    (pe, se), (pm, sm), (ph, sh) = means["easy"], means["medium"], means["hard"]
    assert pe > pm > ph and pe - ph > 2.0 and se > sm + 0.05 > sh + 0.1, means


def test_render_fits_the_word_and_degrade_halves_it():
    font = str(find_fonts()[0])
    ink = ink_mask("Wig", _font(font, 40), 3.0)
    array = np.asarray(ink)
    # tight box: ink touches every side
    assert array[0].max() > 0 and array[-1].max() > 0 and array[:, 0].max() > 0 and array[:, -1].max() > 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        hr = render_word("Internationalization" if seed % 2 else "a", font, rng)
        assert hr.size == (128, 32) and hr.mode == "RGB"
        grey = np.asarray(hr.convert("L"), np.float32)
        assert grey.max() - grey.min() > 50   # text contrasts with its background
        lr = degrade(hr, "hard", rng)
        assert lr.size == (64, 16) and lr.mode == "RGB"
    with pytest.raises(KeyError):
        degrade(hr, "extreme", np.random.default_rng(0))


def test_refuses_to_overwrite_and_cli_reuse(synth_dir, tmp_path):
    with pytest.raises(DataError, match="already exist"):
        synthesize(synth_dir, n_train=2, n_test=0, seed=3)
    cmd = [sys.executable, "-m", "tsr", "synth", "--out", str(tmp_path / "d"), "--train", "5", "--test", "2",
           "--workers", "1"]
    first = subprocess.run(cmd, capture_output=True, text=True)
    assert first.returncode == 0 and "train=5, easy=2, medium=2, hard=2" in first.stdout
    assert matches_manifest(tmp_path / "d", 5, 2, 0) and not matches_manifest(tmp_path / "d", 5, 2, 1)
    again = subprocess.run(cmd + ["--reuse"], capture_output=True, text=True)
    assert again.returncode == 0 and "reusing" in again.stdout
    refused = subprocess.run(cmd, capture_output=True, text=True)
    assert refused.returncode == 2 and "already exist" in refused.stderr and "Traceback" not in refused.stderr
    bad_fonts = subprocess.run(cmd + ["--overwrite", "--fonts", str(tmp_path)], capture_output=True, text=True)
    assert bad_fonts.returncode == 2 and "no .ttf or .otf files" in bad_fonts.stderr
    # a manifest from another generator version is not reused
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    manifest["generator_version"] = GENERATOR_VERSION - 1
    (tmp_path / "d" / "manifest.json").write_text(json.dumps(manifest))
    assert not matches_manifest(tmp_path / "d", 5, 2, 0)


def test_overwrite_replaces_its_own_lmdbs_and_nothing_else(tmp_path):
    synthesize(tmp_path / "d", n_train=2, n_test=1, seed=0, workers=1)
    before = all_records(tmp_path / "d" / "train")
    manifest = synthesize(tmp_path / "d", n_train=3, n_test=1, seed=1, workers=1, overwrite=True)
    assert manifest["counts"] == {"train": 3, "easy": 1, "medium": 1, "hard": 1}
    after = all_records(tmp_path / "d" / "train")
    assert after != before and int(after[b"num-samples"]) == 3
    # a folder of someone's images where a split goes is refused before anything is written, not deleted
    (tmp_path / "e" / "test" / "hard").mkdir(parents=True)
    (tmp_path / "e" / "test" / "hard" / "word.png").write_bytes(b"mine")
    for overwrite in (False, True):
        with pytest.raises(DataError, match=r"test/hard is a folder holding 1 other entry \(word.png\), not an LMDB "
                                            r"folder \(data.mdb, lock.mdb\); tsr only replaces an LMDB it could have"):
            synthesize(tmp_path / "e", n_train=2, n_test=1, seed=0, workers=1, overwrite=overwrite)
    assert sorted(p.relative_to(tmp_path / "e").as_posix() for p in (tmp_path / "e").rglob("*")) == [
        "test", "test/hard", "test/hard/word.png"]


def test_per_split_test_counts(tmp_path):
    manifest = synthesize(tmp_path / "d", n_train=0, n_test=[3, 2, 1], seed=0, workers=1)
    assert manifest["counts"] == {"easy": 3, "medium": 2, "hard": 1}
    assert {k: len(v) for k, v in load_test_splits(tmp_path / "d" / "test").items()} == {"easy": 3, "medium": 2, "hard": 1}
    assert matches_manifest(tmp_path / "d", 0, (3, 2, 1), 0) and not matches_manifest(tmp_path / "d", 0, 2, 0)
    # a manifest written before per-split counts (one number) still matches that number
    path = tmp_path / "d" / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "test_per_split": 2}))
    assert matches_manifest(tmp_path / "d", 0, 2, 0) and matches_manifest(tmp_path / "d", 0, [2, 2, 2], 0)
    # made again without a split that is there: refused before anything changes (training would validate on the
    # old split though the manifest says 0; deleting it could lose a set someone keeps on purpose)
    before = {p: p.read_bytes() for p in (tmp_path / "d").rglob("*") if p.is_file()}
    with pytest.raises(DataError, match=r"test/hard hold\(s\) records of an earlier synthesis, and this one writes "
                                        r"none there; delete them, or give them a count"):
        synthesize(tmp_path / "d", n_train=0, n_test=[3, 2, 0], seed=1, workers=1, overwrite=True)
    assert {p: p.read_bytes() for p in (tmp_path / "d").rglob("*") if p.is_file()} == before
    with pytest.raises(ValueError, match=r"expected one count >= 0 or 3 \(easy, medium, hard\), got \[1, 2\]"):
        synthesize(tmp_path / "e", n_train=0, n_test=[1, 2])
    cmd = [sys.executable, "-m", "tsr", "synth", "--out", str(tmp_path / "f"), "--train", "0", "--test", "1,-2,3"]
    bad = subprocess.run(cmd, capture_output=True, text=True)
    assert bad.returncode == 2 and "argument --test: expected a count >= 0 or three (easy,medium,hard), got '1,-2,3'" in bad.stderr
