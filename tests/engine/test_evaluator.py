import math
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from tsr.data.lmdb_dataset import load_test_splits, shared_env
from tsr.data.lmdb_writer import write_textzoom_lmdb
from tsr.data.synth import synthesize
from tsr.engine.evaluator import Row, bicubic_row, evaluate, hr_row
from tsr.metrics.image import batch_psnr, psnr, ssim


@pytest.fixture(scope="module")
def test_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("evalsynth")
    synthesize(out, n_train=0, n_test=7, seed=1, workers=1)
    return out / "test"


def first_letter_recognizer(images):
    """A stand-in recognizer: predicts 'a' for bright images, else 'b' — deterministic, image-dependent."""
    return ["a" if float(img[:3].mean()) > 0.5 else "b" for img in images]


def test_counts_baselines_and_values_by_hand(test_root):
    splits = load_test_splits(test_root)
    results = dict(evaluate([bicubic_row(), hr_row()], splits, recognizer=lambda im: ["zz"] * len(im), batch_size=3,
                            protocol="standard"))
    textzoom = dict(evaluate([bicubic_row()], splits, batch_size=3, protocol="textzoom"))
    for split in ("easy", "medium", "hard"):
        assert results["bicubic"][split]["n"] == 7 and results["HR"][split]["n"] == 7
        assert results["bicubic"][split]["acc"] == 0.0
        assert results["HR"][split]["psnr"] is None and results["HR"][split]["ssim"] is None
        ds = splits[split]
        hr = torch.stack([ds[i]["hr"] for i in range(7)])[:, :3]
        lr = torch.stack([ds[i]["lr"] for i in range(7)])
        # standard: align_corners=False, clamped, per image
        up = F.interpolate(lr, size=(32, 128), mode="bicubic", align_corners=False).clamp(0, 1)[:, :3]
        standard = results["bicubic"][split]
        assert standard["psnr"] == pytest.approx(psnr(up, hr).mean().item(), abs=1e-4)
        assert standard["ssim"] == pytest.approx(ssim(up, hr).mean().item(), abs=1e-5)
        # textzoom: scale_factor=2 with align_corners=True, unclamped, per batch of 3 (3 + 3 + 1 samples)
        tz = F.interpolate(lr, scale_factor=2, mode="bicubic", align_corners=True)[:, :3]
        batches = [slice(0, 3), slice(3, 6), slice(6, 7)]
        expected_psnr = sum(batch_psnr(tz[b], hr[b]) for b in batches) / 3
        expected_ssim = sum(ssim(tz[b], hr[b], border=True).mean().item() for b in batches) / 3
        assert textzoom["bicubic"][split]["psnr"] == pytest.approx(expected_psnr, abs=1e-4)
        assert textzoom["bicubic"][split]["ssim"] == pytest.approx(expected_ssim, abs=1e-5)
        assert textzoom["bicubic"][split]["batches"] == 3 and textzoom["bicubic"][split]["batch_size"] == 3
        # one pass records both protocols, each with its own bicubic images
        for key in ("psnr", "ssim"):
            assert textzoom["bicubic"][split][f"{key}_standard"] == pytest.approx(standard[key], abs=1e-9)
            assert standard[f"{key}_textzoom"] == pytest.approx(textzoom["bicubic"][split][key], abs=1e-9)
    no_recognizer = dict(evaluate([bicubic_row()], splits, batch_size=4))
    assert no_recognizer["bicubic"]["easy"]["acc"] is None
    assert no_recognizer["bicubic"]["easy"]["protocol"] == "textzoom"      # the default, as in tsr/defaults.yaml


class _Offsets(torch.utils.data.Dataset):
    """Sample i: HR a flat 0.5, LR a flat `offsets[i]` (the row below adds it to HR: an MSE of offsets[i]^2)."""

    def __init__(self, offsets):
        self.offsets = offsets

    def __len__(self):
        return len(self.offsets)

    def __getitem__(self, i):
        return {"lr": torch.full((3, 16, 64), self.offsets[i]), "hr": torch.full((3, 32, 128), 0.5),
                "label": "w", "index": i, "split": "easy"}


def test_batch_size_changes_textzoom_psnr_as_the_formula_says():
    offsets = [0.1, 0.2, 0.05, 0.3, 0.01]
    row = Row("offset", lambda lr, hr: hr + lr[:, :, :1, :1])
    per_image = [-20 * math.log10(d) for d in offsets]         # PSNR = 10 log10(1 / d^2)

    def textzoom_formula(batch_size):
        """Mean over the split's batches of 10 log10(1 / pooled MSE)."""
        groups = [offsets[i:i + batch_size] for i in range(0, len(offsets), batch_size)]
        return sum(10 * math.log10(len(g) / sum(d * d for d in g)) for g in groups) / len(groups)

    measured = {}
    for batch_size in (1, 2, 3, 5):
        result = dict(evaluate([row], {"easy": _Offsets(offsets)}, batch_size=batch_size))["offset"]["easy"]
        measured[batch_size] = result["psnr"]
        assert result["psnr"] == pytest.approx(textzoom_formula(batch_size), abs=1e-4)
        assert result["psnr_standard"] == pytest.approx(sum(per_image) / 5, abs=1e-4)   # no batch dependence
    # batch 1 is per image (22.09 dB); one batch of 5 pools the MSE, which the worst images dominate (15.45 dB);
    # with batches of 2 the lone last image (40 dB) weighs a third of the split, not a fifth (23.12 dB)
    assert measured[1] == pytest.approx(sum(per_image) / 5, abs=1e-4) == pytest.approx(22.0915, abs=1e-4)
    assert measured[5] == pytest.approx(10 * math.log10(5 / sum(d * d for d in offsets)), abs=1e-4)
    assert (measured[5], measured[2]) == (pytest.approx(15.4485, abs=1e-4), pytest.approx(23.1232, abs=1e-4))


def test_corrupt_records_are_reported(tmp_path, test_root):
    with shared_env(test_root / "easy").begin() as txn:
        hr, lr = txn.get(b"image_hr-000000001"), txn.get(b"image_lr-000000001")
    write_textzoom_lmdb(tmp_path / "easy", [(hr, lr, "one"), (b"broken", lr, "two"), (hr, lr, "three")])
    results = dict(evaluate([bicubic_row()], {"easy": load_test_splits(tmp_path, ["easy"])["easy"]}, batch_size=2))
    assert results["bicubic"]["easy"]["n"] == 2 and results["bicubic"]["easy"]["corrupt"] == 1


def _rows():
    return [bicubic_row(), Row("dark", lambda lr, hr: hr * 0.5),
            Row("noisy", lambda lr, hr: hr + 0.1 * F.interpolate(lr, scale_factor=2))]


def _rank_worker(rank, world, init_file, test_root, queue):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        seen = []
        results = evaluate(_rows(), load_test_splits(test_root), recognizer=first_letter_recognizer, batch_size=2,
                           on_batch=lambda split, batch, images, words: seen.append(batch["index"].tolist()))
        queue.put((rank, seen, results))
    finally:
        dist.destroy_process_group()


def test_two_ranks_take_whole_batches_and_give_the_single_process_numbers(tmp_path, test_root):
    single = evaluate(_rows(), load_test_splits(test_root), recognizer=first_letter_recognizer, batch_size=2)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    mp.start_processes(_rank_worker, args=(2, str(tmp_path / "init"), str(test_root), queue), nprocs=2,
                       start_method="spawn")
    by_rank = dict((rank, (seen, results)) for rank, seen, results in (queue.get(timeout=60) for _ in range(2)))
    # the single process's batches of 2 over 7 samples, [1,2] [3,4] [5,6] [7], dealt whole: rank 0 gets the
    # first and third, rank 1 the second and fourth (indices are the LMDB's, 1-based)
    assert by_rank[0][0][:2] == [[1, 2], [5, 6]] and by_rank[1][0][:2] == [[3, 4], [7]]
    distributed = by_rank[0][1]
    assert distributed == by_rank[1][1]                  # every rank holds the reduced figures
    assert [name for name, _ in distributed] == ["bicubic", "dark", "noisy"]
    for (_, a), (_, b) in zip(single, distributed):
        for split in a:
            assert b[split]["n"] == 7 and b[split]["batches"] == 4   # none counted twice, no batch split
            assert b[split]["protocol"] == "textzoom"
            assert b[split] == pytest.approx(a[split], abs=1e-9)     # per-batch pooled PSNR included


def test_a_row_that_reads_its_own_text_is_not_judged_by_the_shared_recognizer(test_root):
    splits = load_test_splits(test_root)
    judged = []

    def recognizer(images):
        judged.append(len(images))
        return ["zz"] * len(images)

    own = Row("feature-level", lambda lr, hr: (hr, ["own"] * len(hr)), reads_own_text=True)
    seen = {}
    results = dict(evaluate([own, hr_row()], splits, recognizer=recognizer, batch_size=4,
                            on_batch=lambda split, batch, images, words: seen.setdefault(split, words)))
    assert sum(judged) == 3 * 7                      # only the HR row went to the shared recognizer
    assert seen["easy"]["feature-level"] == ["own"] * 4 and seen["easy"]["HR"] == ["zz"] * 4
    assert results["feature-level"]["easy"]["n"] == 7 and results["feature-level"]["easy"]["psnr"] == 100.0


def test_several_judges_read_every_row_and_image_metrics_stay_once(test_root):
    splits = load_test_splits(test_root)
    seen = {}
    judges = {"A": lambda im: ["zz"] * len(im), "B": first_letter_recognizer}
    results = dict(evaluate([bicubic_row(), hr_row()], splits, judges=judges, batch_size=4,
                            on_batch=lambda split, batch, images, words: seen.setdefault(split, words)))
    single = dict(evaluate([bicubic_row(), hr_row()], splits, recognizer=first_letter_recognizer, batch_size=4))
    for row in ("bicubic", "HR"):
        for split in splits:
            r = results[row][split]
            assert r["judges"]["A"]["acc"] == 0.0 and r["acc"] == 0.0          # first judge's ACC at the top
            assert r["judges"]["B"]["acc"] == single[row][split]["acc"]       # the same as judged alone
            same = ("n", "psnr", "ssim", "psnr_textzoom", "ssim_standard", "batches", "protocol")
            assert [r[k] for k in same] == [single[row][split][k] for k in same]
    assert seen["easy"]["HR"]["A"] == ["zz"] * 4 and len(seen["easy"]["bicubic"]["B"]) == 4
    with pytest.raises(ValueError, match="either one recognizer or a mapping of judges"):
        evaluate([hr_row()], splits, recognizer=first_letter_recognizer, judges=judges)


def test_the_own_reading_is_a_judge_column_beside_the_others(test_root):
    splits = load_test_splits(test_root)
    seen = {}
    own = Row("feature-level", lambda lr, hr: (hr, ["own"] * len(hr)), reads_own_text=True)
    judges = {"A": first_letter_recognizer, "own": None}
    results = dict(evaluate([bicubic_row(), own, hr_row()], splits, judges=judges, batch_size=4,
                            on_batch=lambda split, batch, images, words: seen.setdefault(split, words)))
    single = dict(evaluate([own, hr_row()], splits, recognizer=first_letter_recognizer, batch_size=4))
    for split in splits:
        assert results["feature-level"][split]["judges"]["own"]["acc"] == 0.0        # no label reads 'own'
        # the judge A reads the row's images, not its words: as the HR row, whose images they are
        assert results["feature-level"][split]["judges"]["A"]["acc"] == single["HR"][split]["acc"]
        assert results["bicubic"][split]["judges"]["own"]["acc"] is None           # nothing reads it there
        assert results["HR"][split]["judges"]["own"]["acc"] is None
        assert results["bicubic"][split]["psnr"] is not None                        # image metrics unchanged
    assert seen["easy"]["feature-level"]["own"] == ["own"] * 4
    assert len(seen["easy"]["feature-level"]["A"]) == 4 and "own" not in seen["easy"]["HR"]


def test_rows_of_one_name_are_refused(test_root):
    # the evaluator keeps sums per row name: two rows of one name would have been summed into one row
    splits = load_test_splits(test_root)
    with pytest.raises(ValueError, match=r"rows \['bicubic'\] share a name"):
        evaluate([bicubic_row(), hr_row(), bicubic_row()], splits, batch_size=3)
