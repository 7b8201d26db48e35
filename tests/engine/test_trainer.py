"""The trainer in one process (no torchrun): stage checks, schedule, sampler, non-finite stop, refusals."""
import pytest
import torch

from tsr.checkpoint import read_checkpoint
from tsr.checkpoint.integrity import tensor_digest
from tsr.cli import main as tsr_main
from tsr.config import ConfigError, load_config
from tsr.data.sampler import ResumableDistributedSampler
from tsr.data.synth import synthesize
from tsr.engine.optim import lr_factor
from tsr.engine.tasks import StageTasks
from tsr.engine.trainer import TrainingError, train
from tsr.engine.fast_path import autocast_dtype, cpu_has_fast_bf16
from tsr.errors import DataError, TsrError
from tsr.models.build import build_model
from trainer_helpers import stage_config, tiny_overrides


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("smalldata")
    synthesize(root, n_train=16, n_test=2, seed=4, workers=1)
    return root


def tiny_cfg(stage, data_root, out_root, **extra):
    return load_config(stage_config(stage), tiny_overrides(data_root, out_root, **extra))


def test_stage_checks_name_the_offending_setting(data_root, tmp_path):
    cfg = tiny_cfg("sr", data_root, tmp_path, **{"train.tasks": "[sr,rec]"})
    with pytest.raises(ConfigError, match=r"train.tasks has 'rec' but model.parts \['sr', 'head'\] lacks \['recognizer'\]"):
        StageTasks(cfg, build_model(cfg))
    cfg = tiny_cfg("joint_image", data_root, tmp_path, **{"train.tasks": "[sr]", "train.task_weights": "{}",
                                                          "model.recognizer.trainable": "head_only"})
    with pytest.raises(ConfigError, match="part 'recognizer' is trainable but no loss"):
        StageTasks(cfg, build_model(cfg))
    cfg = tiny_cfg("joint_feature", data_root, tmp_path, **{"model.recognizer.trainable": "all"})
    with pytest.raises(ConfigError, match="CNN is replaced by the adapter and never runs"):
        StageTasks(cfg, build_model(cfg))
    cfg = tiny_cfg("recognizer", data_root, tmp_path)
    assert StageTasks(cfg, build_model(cfg)).input_key == "hr"     # the recognizer stage reads HR


def test_lr_schedule_warmup_cosine_and_steps():
    base = {"warmup_steps": 0, "steps": 100, "lr_schedule": "constant", "lr_milestones": []}
    assert [lr_factor(s, base) for s in (0, 50, 99)] == [1.0, 1.0, 1.0]
    cosine = {**base, "lr_schedule": "cosine", "warmup_steps": 10}
    assert [lr_factor(s, cosine) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert lr_factor(10, cosine) == pytest.approx(1.0) and lr_factor(55, cosine) == pytest.approx(0.5)
    assert lr_factor(100, cosine) == pytest.approx(0.0, abs=1e-12)
    step = {**base, "lr_schedule": "step", "lr_milestones": [30, 60]}
    assert [lr_factor(s, step) for s in (29, 30, 60)] == pytest.approx([1.0, 0.1, 0.01])


def test_resumable_sampler_skips_exactly_what_was_used_and_ranks_are_disjoint():
    data = list(range(23))
    ranks = [ResumableDistributedSampler(data, num_replicas=2, rank=r, seed=7) for r in (0, 1)]
    for sampler in ranks:
        sampler.set_epoch(3)
    shares = [list(s) for s in ranks]
    assert len(shares[0]) == len(shares[1]) == 11                 # drop_last: equal shares, 23 -> 2 x 11
    assert not set(shares[0]) & set(shares[1])
    ranks[0].set_epoch(3, start=4)
    assert list(ranks[0]) == shares[0][4:] and len(ranks[0]) == 7
    ranks[0].set_epoch(4)
    assert list(ranks[0]) != shares[0]                            # a new epoch, a new order
    with pytest.raises(ValueError, match="start must be in"):
        ranks[0].set_epoch(4, start=12)


def test_non_finite_loss_stops_with_a_clear_message_and_an_intact_last_checkpoint(data_root, tmp_path, monkeypatch):
    cfg = tiny_cfg("sr", data_root, tmp_path, **{"train.steps": 6, "train.val_every": 0})
    real_losses, calls = StageTasks.losses, {"n": 0}

    def poisoned(self, outputs, batch, device):
        calls["n"] += 1
        losses = real_losses(self, outputs, batch, device)
        return {k: v * float("nan") for k, v in losses.items()} if calls["n"] == 4 else losses

    monkeypatch.setattr(StageTasks, "losses", poisoned)
    with pytest.raises(TrainingError, match=r"non-finite loss at step 4 \(total=nan, sr=nan\); stopped before the "
                                            r"optimizer step; the last checkpoint, .*last.pth, holds step 3"):
        train(cfg)
    checkpoint = read_checkpoint(tmp_path / "sr" / "last.pth")
    assert checkpoint["step"] == 3
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values() if v.is_floating_point())


def test_a_fresh_run_never_overwrites_a_run_folder(data_root, tmp_path):
    cfg = tiny_cfg("sr", data_root, tmp_path, **{"train.steps": 1})
    train(cfg)
    before = (tmp_path / "sr" / "last.pth").read_bytes()
    with pytest.raises(TsrError, match="already holds last.pth: continue it with --resume"):
        train(cfg)
    assert (tmp_path / "sr" / "last.pth").read_bytes() == before
    with pytest.raises(TsrError, match="weights only; resume from last.pth"):
        train(cfg, resume=str(tmp_path / "sr" / "best_psnr_model.pth"))


def test_settings_that_cannot_work_are_refused_before_training(data_root, tmp_path):
    with pytest.raises(ConfigError, match="train.batch_size 10 must be a positive multiple of ranks x "
                                          "train.accum_steps = 1 x 4"):
        train(tiny_cfg("sr", data_root, tmp_path, **{"train.batch_size": 10, "train.accum_steps": 4}))
    with pytest.raises(ConfigError, match="train.sync_bn=true needs CUDA"):
        train(tiny_cfg("sr", data_root, tmp_path, **{"train.sync_bn": "true", "run.name": "b"}))
    with pytest.raises(DataError, match="hold 16 usable samples: too few for one batch of 32"):
        train(tiny_cfg("sr", data_root, tmp_path, **{"train.batch_size": 32, "run.name": "c"}))
    with pytest.raises(ConfigError, match="train.amp=fp16 needs CUDA"):
        autocast_dtype("fp16", torch.device("cpu"))
    assert autocast_dtype("auto", torch.device("cpu")) is (torch.bfloat16 if cpu_has_fast_bf16() else None)
    assert autocast_dtype("off", torch.device("cpu")) is None


def test_train_command_needs_a_config_or_a_run_to_resume(capsys):
    assert tsr_main(["train"]) == 2
    assert "give --config CFG (a new run) or --resume RUN" in capsys.readouterr().err


def test_weights_digest_tells_equal_from_different_weights():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    assert tensor_digest(a.state_dict()) == tensor_digest(b.state_dict())
    with torch.no_grad():
        b.bias[0] += 1e-7
    assert tensor_digest(a.state_dict()) != tensor_digest(b.state_dict())


def test_lr_scale_gives_a_part_its_own_rate(data_root, tmp_path):
    from tsr.engine.optim import build_optimizer

    cfg = tiny_cfg("joint_feature", data_root, tmp_path, **{"train.lr_scale": "{adapter: 4}", "train.lr": 0.01})
    optimizer = build_optimizer(build_model(cfg), cfg["train"])
    rates = {group["name"]: group["lr"] for group in optimizer.param_groups}
    assert rates["adapter"] == pytest.approx(0.04) and rates["sr"] == pytest.approx(0.01)
    cfg = tiny_cfg("sr", data_root, tmp_path, **{"train.lr_scale": "{adaptor: 4}"})
    with pytest.raises(ConfigError, match=r"train.lr_scale names \['adaptor'\], which are not parts"):
        build_optimizer(build_model(cfg), cfg["train"])


def test_align_task_regresses_the_adapter_onto_the_recognizers_hr_sequence(data_root, tmp_path):
    from tsr.data.lmdb_dataset import build_train_dataset, collate

    cfg = tiny_cfg("joint_feature", data_root, tmp_path, **{"model.recognizer.trainable": "none",
                                                            "train.tasks": "[sr,rec,align]", "train.task_weights": "{}"})
    model = build_model(cfg)
    tasks = StageTasks(cfg, model)
    batch = collate([build_train_dataset([data_root / "train"])[i] for i in range(2)])
    outputs = model(batch["lr"])
    losses = tasks.losses(outputs, batch, torch.device("cpu"))
    target = model["recognizer"].net.encode(batch["hr"])
    assert outputs["sequence"].shape == target.shape
    assert losses["align"].item() == pytest.approx(torch.mean((outputs["sequence"] - target) ** 2).item(), rel=1e-5)
    losses["align"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model["adapter"].parameters())
    assert all(p.grad is None for p in model["recognizer"].parameters())   # the target is fixed
    cfg = tiny_cfg("joint_image", data_root, tmp_path, **{"train.tasks": "[sr,rec,align]", "train.task_weights": "{}"})
    with pytest.raises(ConfigError, match=r"train.tasks has 'align' but .* lacks \['adapter'\]"):
        StageTasks(cfg, build_model(cfg))


def test_reuse_keeps_a_finished_run_and_refuses_another_config_in_its_folder(data_root, tmp_path, capsys):
    overrides = tiny_overrides(data_root, tmp_path, **{"train.steps": 1})
    assert tsr_main(["train", "--reuse", "--config", stage_config("sr"), *overrides]) == 0
    written = (tmp_path / "sr" / "last.pth").stat().st_mtime_ns
    assert tsr_main(["train", "--reuse", "--config", stage_config("sr"), *overrides]) == 0
    assert (tmp_path / "sr" / "last.pth").stat().st_mtime_ns == written          # kept, not retrained
    # how fast a run goes is no other config: still kept
    assert tsr_main(["train", "--reuse", "--config", stage_config("sr"), *overrides, "data.cache=true",
                     "data.num_workers=1"]) == 0
    assert (tmp_path / "sr" / "last.pth").stat().st_mtime_ns == written
    assert tsr_main(["train", "--reuse", "--config", stage_config("sr"), *overrides, "train.lr=0.5"]) == 2
    assert "holds a run made with another config (differs in train.lr (0.002 vs 0.5))" in capsys.readouterr().err


def test_a_key_added_to_tsr_after_a_run_is_no_change_of_its_config():
    from tsr.config import load_defaults
    from tsr.engine.run_folder import RESUME_MAY_CHANGE, config_changes
    cfg = load_defaults()
    saved = {**cfg, "train": {k: v for k, v in cfg["train"].items() if k != "compile"}}   # a run before train.compile
    assert config_changes(saved, cfg, set()) == []
    changed = {**cfg, "train": {**cfg["train"], "lr": 0.5, "steps": 7}}
    assert config_changes(saved, changed, RESUME_MAY_CHANGE) == [f"train.lr ({cfg['train']['lr']!r} vs 0.5)"]


def test_resume_refuses_what_would_not_reproduce_the_run(data_root, tmp_path):
    import torch as _torch

    from tsr.checkpoint import write_checkpoint

    cfg = tiny_cfg("sr", data_root, tmp_path, **{"train.steps": 1})
    train(cfg)
    last = tmp_path / "sr" / "last.pth"
    changed = tiny_cfg("sr", data_root, tmp_path, **{"train.steps": 2, "train.lr": 0.5})
    with pytest.raises(TsrError, match=r"differs from the run's in train.lr \(0.002 vs 0.5\); a resumed run may "
                                       r"change only"):
        train(changed, resume=str(last))
    elsewhere = tiny_cfg("sr", data_root, tmp_path, **{"train.steps": 2, "run.name": "other"})
    with pytest.raises(TsrError, match="belongs to the run folder .*sr, but this config's run folder"):
        train(elsewhere, resume=str(last))
    checkpoint = _torch.load(last, weights_only=True)
    checkpoint["trainer"]["world_size"] = 2
    write_checkpoint(last, checkpoint)
    with pytest.raises(TsrError, match=r"written by 2 rank\(s\) and this run has 1"):
        train(tiny_cfg("sr", data_root, tmp_path, **{"train.steps": 2}), resume=str(tmp_path / "sr"))


def test_model_and_task_lists_that_cannot_train_are_named(data_root, tmp_path):
    with pytest.raises(ConfigError, match="add 'head': image level.*or the SR features \\(add 'adapter'"):
        build_model(tiny_cfg("joint_image", data_root, tmp_path, **{"model.parts": "[sr,recognizer]"}))
    with pytest.raises(ConfigError, match="train.weighting=uncertainty / train.tasks / train.task_weights: tasks must be"):
        build_model(tiny_cfg("joint_feature", data_root, tmp_path, **{"train.tasks": "[]", "train.weighting": "uncertainty"}))
    with pytest.raises(ConfigError, match=r"learns each task's weight; fixed task weights \{'rec': 0.5\} cannot apply"):
        build_model(tiny_cfg("joint_feature", data_root, tmp_path,
                             **{"train.weighting": "uncertainty", "train.task_weights": "{rec: 0.5}"}))
    cfg = tiny_cfg("sr", data_root, tmp_path, **{"train.tasks": "[]"})
    with pytest.raises(ConfigError, match="'train.tasks' is empty"):
        StageTasks(cfg, build_model(cfg))


def test_compiled_training_forward_trains_and_saves_plain_keys(data_root, tmp_path, monkeypatch):
    """train.compile=true: the training forward runs through torch.compile's graph capture (dynamo + AOTAutograd,
    backend aot_eager here: inductor's C++ code generation would add ~25 s on 2 cores and tests torch, not tsr)."""
    from tsr.engine.monitor import read_log

    compiled = []
    real_compile = torch.compile

    def aot_eager(module, **kwargs):
        compiled.append(module)
        return real_compile(module, **{**kwargs, "backend": "aot_eager"})

    monkeypatch.setattr(torch, "compile", aot_eager)
    cfg = tiny_cfg("sr", data_root, tmp_path, **{"train.compile": "true", "train.steps": 2})
    train(cfg)
    losses = [r["loss/total"] for r in read_log(tmp_path / "sr" / "log.jsonl") if "loss/total" in r]
    assert len(losses) == 2 and all(0 < v < 10 for v in losses)
    assert len(compiled) == 1
    keys = read_checkpoint(tmp_path / "sr" / "last.pth")["model"]
    assert not any("_orig_mod" in k or k.startswith("module.") for k in keys)


def test_how_often_a_run_validates_does_not_change_its_weights(data_root, tmp_path):
    """recognizer_blur draws its blur from torch's global RNG, as the evaluator's loader draws its base seed: without
    validation restoring the RNG state, validating every step gave other weights than validating at the end."""
    digests = []
    for every in (0, 1):
        cfg = tiny_cfg("recognizer_blur", data_root, tmp_path, **{"train.init": "null", "train.steps": 3,
                                                                   "train.val_every": every, "run.name": f"v{every}"})
        train(cfg)
        digests.append(tensor_digest(read_checkpoint(tmp_path / f"v{every}" / "last.pth")["model"]))
    assert digests[0] == digests[1]


def test_the_corrupt_sample_count_goes_on_after_a_resume(tmp_path):
    import json

    from tsr.data.lmdb_writer import write_textzoom_lmdb
    from lmdb_records import pair

    good = pair("abc")
    write_textzoom_lmdb(tmp_path / "d" / "train", [good if i % 4 else (None, good[1], "abc") for i in range(16)])
    for split in ("easy", "medium", "hard"):
        write_textzoom_lmdb(tmp_path / "d" / "test" / split, [good, good])
    cfg = tiny_cfg("sr", tmp_path / "d", tmp_path / "runs", **{"train.steps": 2, "train.batch_size": 4})
    train(cfg)            # 4 of the 16 records have no HR image; the seeded order meets one in each step
    resumed = tiny_cfg("sr", tmp_path / "d", tmp_path / "runs", **{"train.steps": 4, "train.batch_size": 4})
    train(resumed, resume=str(tmp_path / "runs" / "sr"))
    counts = [json.loads(line)["data/corrupt"] for line in (tmp_path / "runs" / "sr" / "log.jsonl").open()
              if "data/corrupt" in line]
    assert counts == [1, 2, 3, 4]   # cumulative across the resume (it started again at 0 before)


def test_a_training_set_with_nothing_readable_is_one_line_not_an_endless_skip(tmp_path):
    from tsr.data.lmdb_writer import write_textzoom_lmdb
    from lmdb_records import pair

    good = pair("abc")
    write_textzoom_lmdb(tmp_path / "d" / "train", [(None, good[1], "abc")] * 8)
    for split in ("easy", "medium", "hard"):
        write_textzoom_lmdb(tmp_path / "d" / "test" / split, [good])
    cfg = tiny_cfg("sr", tmp_path / "d", tmp_path / "runs", **{"train.batch_size": 2})
    with pytest.raises(DataError, match=r"^no sample of this rank's share of a training epoch was readable; the "
                                        r"LMDBs \[.*/d/train'\] look damaged$"):
        train(cfg)


def test_validation_splits_that_hold_nothing_are_refused_before_training(data_root, tmp_path):
    from tsr.data.lmdb_writer import write_textzoom_lmdb
    from lmdb_records import pair

    with pytest.raises(DataError, match=r"no test split named for .* \(data.test_splits is empty"):
        train(tiny_cfg("sr", data_root, tmp_path, **{"data.test_splits": "[]"}))
    with pytest.raises(DataError, match=r"test splits \['easy', 'easy'\] name easy more than once"):
        train(tiny_cfg("sr", data_root, tmp_path, **{"data.test_splits": "[easy,easy]"}))
    for split, label in (("easy", "!?"), ("medium", "abc"), ("hard", "abc")):   # '!?': nothing left in 'lower'
        write_textzoom_lmdb(tmp_path / "t" / split, [pair(label)] * 2)
    with pytest.raises(DataError, match=r"test split 'easy' has nothing to evaluate: .*kept 0 of 2 records"):
        train(tiny_cfg("sr", data_root, tmp_path, **{"data.test_root": tmp_path / "t"}))
