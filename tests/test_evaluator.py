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
from tsr.metrics.image import psnr, ssim


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
    results = dict(evaluate([bicubic_row(), hr_row()], splits, recognizer=lambda im: ["zz"] * len(im), batch_size=3))
    for split in ("easy", "medium", "hard"):
        assert results["bicubic"][split]["n"] == 7 and results["HR"][split]["n"] == 7
        assert results["bicubic"][split]["acc"] == 0.0
        assert results["HR"][split]["psnr"] is None and results["HR"][split]["ssim"] is None
        ds = splits[split]
        hr = torch.stack([ds[i]["hr"] for i in range(7)])
        lr = torch.stack([ds[i]["lr"] for i in range(7)])
        up = F.interpolate(lr, size=(32, 128), mode="bicubic", align_corners=False).clamp(0, 1)
        assert results["bicubic"][split]["psnr"] == pytest.approx(psnr(up[:, :3], hr[:, :3]).mean().item(), abs=1e-4)
        assert results["bicubic"][split]["ssim"] == pytest.approx(ssim(up[:, :3], hr[:, :3]).mean().item(), abs=1e-5)
    no_recognizer = dict(evaluate([bicubic_row()], splits, batch_size=4))
    assert no_recognizer["bicubic"]["easy"]["acc"] is None


def test_corrupt_records_are_reported(tmp_path, test_root):
    with shared_env(test_root / "easy").begin() as txn:
        hr, lr = txn.get(b"image_hr-000000001"), txn.get(b"image_lr-000000001")
    write_textzoom_lmdb(tmp_path / "easy", [(hr, lr, "one"), (b"broken", lr, "two"), (hr, lr, "three")])
    results = dict(evaluate([bicubic_row()], {"easy": load_test_splits(tmp_path, ["easy"])["easy"]}, batch_size=2))
    assert results["bicubic"]["easy"]["n"] == 2 and results["bicubic"]["easy"]["corrupt"] == 1


def _rank_worker(rank, world, init_file, test_root, queue):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        rows = [bicubic_row(), Row("dark", lambda lr, hr: hr * 0.5)]
        results = evaluate(rows, load_test_splits(test_root), recognizer=first_letter_recognizer, batch_size=2)
        if rank == 0:
            queue.put(results)
    finally:
        dist.destroy_process_group()


def test_two_ranks_give_exact_counts_and_the_same_numbers(tmp_path, test_root):
    rows = [bicubic_row(), Row("dark", lambda lr, hr: hr * 0.5)]
    single = evaluate(rows, load_test_splits(test_root), recognizer=first_letter_recognizer, batch_size=2)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    mp.start_processes(_rank_worker, args=(2, str(tmp_path / "init"), str(test_root), queue), nprocs=2,
                       start_method="spawn")
    distributed = queue.get(timeout=60)
    assert [name for name, _ in distributed] == ["bicubic", "dark"]
    for (_, a), (_, b) in zip(single, distributed):
        for split in a:
            assert b[split]["n"] == 7                    # 7 samples over 2 ranks: 4 + 3, none counted twice
            assert b[split] == pytest.approx(a[split], abs=1e-6)


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
            assert (r["n"], r["psnr"], r["ssim"]) == (single[row][split]["n"], single[row][split]["psnr"],
                                                      single[row][split]["ssim"])
    assert seen["easy"]["HR"]["A"] == ["zz"] * 4 and len(seen["easy"]["bicubic"]["B"]) == 4
    with pytest.raises(ValueError, match="either one recognizer or a mapping of judges"):
        evaluate([hr_row()], splits, recognizer=first_letter_recognizer, judges=judges)
