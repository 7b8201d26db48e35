"""Picture grids for tsr eval / TensorBoard: how many samples, which ones (seeded), text size."""
import torch

from tsr.engine.pictures import SampleKeeper, picture_grid


def feed(keeper, split, n_total, batch):
    """Batches of `batch` samples whose LR pixel value and label carry the sample's position."""
    for start in range(0, n_total, batch):
        n = min(batch, n_total - start)
        positions = torch.arange(start, start + n, dtype=torch.float32)
        lr = positions.view(n, 1, 1, 1).expand(n, 3, 4, 8) / 100
        labels = [f"w{int(p)}" for p in positions]
        keeper(split, {"lr": lr, "label": labels}, {"SR": lr.clone()}, {"SR": labels})


def test_first_n_by_default_and_a_seed_draws_the_same_samples_across_batches():
    keeper = SampleKeeper(3)
    feed(keeper, "easy", 10, batch=2)
    assert keeper.samples["easy"]["labels"] == ["w0", "w1", "w2"]
    drawn = []
    for _ in range(2):
        keeper = SampleKeeper(4, seed=7, sizes={"easy": 10})
        feed(keeper, "easy", 10, batch=3)
        sample = keeper.samples["easy"]
        assert len(sample["labels"]) == 4 and sample["words"]["SR"] == sample["labels"]
        # images and words stay together: each kept LR holds its own position
        assert [f"w{round(float(v) * 100)}" for v in sample["lr"][:, 0, 0, 0]] == sample["labels"]
        drawn.append(sample["labels"])
    assert drawn[0] == drawn[1] and drawn[0] != ["w0", "w1", "w2", "w3"]
    other = SampleKeeper(4, seed=8, sizes={"easy": 10})
    feed(other, "easy", 10, batch=3)
    assert other.samples["easy"]["labels"] != drawn[0]
    assert SampleKeeper(0).samples == {}


def test_a_larger_font_makes_room_for_its_text():
    images = torch.rand(2, 3, 16, 64)
    small = picture_grid([("LR", images)], ["ab", "cd"], font_size=12)
    large = picture_grid([("LR", images)], ["ab", "cd"], font_size=24)
    assert large.width - small.width == 120 and large.height - small.height == 3 * 12
    keeper = SampleKeeper(2, font_size=24)
    feed(keeper, "easy", 2, batch=2)
    assert keeper.grids()["easy"].size == picture_grid(
        [("LR", keeper.samples["easy"]["lr"]), ("SR", keeper.samples["easy"]["images"]["SR"])],
        ["w0", "w1"], {"SR": ["w0", "w1"]}, font_size=24).size
