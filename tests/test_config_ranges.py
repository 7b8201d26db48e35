"""Every numeric key has a declared range, checked once when a config is built (tsr.config_ranges)."""
import pytest

from tsr.config import ConfigError, get, load_config, load_defaults
from tsr.config_ranges import RANGES, range_problem


@pytest.mark.parametrize("override, message", [
    ("train.lr=-1", r"'train.lr' must be in \(0, 1\], got -1.0"),
    ("train.lr=.nan", r"'train.lr' must be in \(0, 1\], got nan"),
    ("train.lr=1e30", r"'train.lr' must be in \(0, 1\], got 1e\+30"),
    ("train.lr_scale={sr: -5}", r"'train.lr_scale' must hold numbers that are each > 0, got \{'sr': -5\} \(bad: sr: -5\)"),
    ("train.weight_decay=-1", r"'train.weight_decay' must be >= 0, got -1.0"),
    ("train.warmup_steps=-3", r"'train.warmup_steps' must be >= 0, got -3"),
    ("train.val_limit=0", r"'train.val_limit' must be >= 1, got 0"),
    ("train.betas=[2,3]", r"'train.betas' must hold numbers that are each in \[0, 1\), got \[2, 3\] \(bad: 2, 3\)"),
    ("train.betas=[0.9,1]", r"\(bad: 1\)"),
    ("model.sr.channels=0", r"'model.sr.channels' must be >= 1, got 0"),
    ("data.max_len=0", r"'data.max_len' must be >= 1, got 0"),
    ("data.num_workers=-1", r"'data.num_workers' must be >= 0, got -1"),
    ("eval.batch_size=0", r"'eval.batch_size' must be >= 1, got 0"),
    # these passed (--dry-run too) and failed inside the run: torch's seed overflow, DistillationLoss's ValueError
    ("run.seed=100000000000000000000", r"'run.seed' must be in \[0, 4294967296\), got 100000000000000000000"),
    ("run.seed=-1", r"'run.seed' must be in \[0, 4294967296\), got -1"),
    ("train.distill_temperature=0", r"'train.distill_temperature' must be > 0, got 0.0"),
])
def test_values_outside_their_range_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_edges_of_the_ranges_are_accepted():
    cfg = load_config(None, ["train.betas=[0, 0.999]", "train.weight_decay=0", "train.warmup_steps=0",
                             "train.val_limit=1", "train.val_limit=null", "data.num_workers=0", "train.lr=1e-8",
                             "run.seed=4294967295", "train.distill_temperature=0.01"])
    assert cfg["train"]["betas"] == [0, 0.999] and cfg["train"]["val_limit"] is None
    assert cfg["run"]["seed"] == 2**32 - 1
    assert load_config(None, ["run.seed=0"])["run"]["seed"] == 0


def test_every_range_names_a_schema_key_and_the_defaults_fit():
    defaults = load_defaults()
    for dotted in RANGES:
        assert range_problem(dotted, get(defaults, dotted)) is None, dotted   # KeyError: not in the schema


def test_every_numeric_key_has_a_range():
    """A number without a range passes any value, which then fails inside the run (run.seed=1e20: an overflow in
    torch.manual_seed after the run folder was made)."""
    from tsr.config import value_type

    def numeric(kind):
        kinds = kind if isinstance(kind, list) else list(kind.values()) if isinstance(kind, dict) else [kind]
        return any(k in (int, float) for k in kinds)

    def keys(tree, prefix=""):
        for key, value in tree.items():
            if isinstance(value, dict) and value:
                yield from keys(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value
    # checked with the stage's tasks when the run builds them (tsr.engine.tasks: a step >= 0 of a task in train.tasks)
    elsewhere = {"train.task_start", "train.feature_grad_start"}
    missing = [dotted for dotted, default in keys(load_defaults()) if numeric(value_type(dotted, default))
               and dotted not in set(RANGES) | elsewhere]
    assert missing == []
