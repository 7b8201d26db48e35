"""Every stage under torchrun with 2 gloo processes: trains, ranks agree, checkpoints load; kill -9 + --resume
reproduces the uninterrupted run, and so does SIGTERM to one rank + --resume; an unreadable batch on one rank stops
every rank with one line; the multi-node launcher works (2 'nodes' on this machine)."""
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tsr import api
from tsr.checkpoint import merge_checkpoints, read_checkpoint, write_checkpoint
from tsr.data.synth import synthesize
from tsr.engine.monitor import read_log
from trainer_helpers import REPO, check, stage_config, tiny_overrides, torchrun


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("traindata")
    synthesize(root, n_train=48, n_test=4, seed=3, workers=1)
    return root


@pytest.fixture(scope="module")
def stages(data_root, tmp_path_factory):
    """sr -> recognizer -> merge -> joint_image (accumulation 2) and joint_feature (sidernn+mlp, uncertainty over
    sr, rec, align: the demo config itself now uses avg with content and task_start)."""
    out = tmp_path_factory.mktemp("runs")
    outputs = {}
    for stage in ("sr", "recognizer"):
        outputs[stage] = check(torchrun(["--config", stage_config(stage), *tiny_overrides(data_root, out)]))
    merged = out / "sr+recognizer.pth"
    write_checkpoint(merged, merge_checkpoints(sr=out / "sr" / "last.pth", recognizer=out / "recognizer" / "last.pth"))
    outputs["joint_image"] = check(torchrun(["--config", stage_config("joint_image"), *tiny_overrides(
        data_root, out, **{"train.init": merged, "train.accum_steps": 2})]))
    outputs["joint_feature"] = check(torchrun(["--config", stage_config("joint_feature"), *tiny_overrides(
        data_root, out, **{"train.init": merged, "model.adapter.type": "sidernn+mlp", "train.weighting": "uncertainty",
                           "train.tasks": "[sr,rec,align]", "train.task_weights": "{}", "train.task_start": "{}"})]))
    return out, outputs


STAGES = ("sr", "recognizer", "joint_image", "joint_feature")


@pytest.mark.parametrize("stage", STAGES)
def test_stage_trains_on_two_ranks_with_identical_weights(stages, stage):
    out, _ = stages
    summary = json.loads((out / stage / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 3
    assert len(summary["rank_checksums"]) == 2 and len(set(summary["rank_checksums"])) == 1
    losses = [r["loss/total"] for r in read_log(out / stage / "log.jsonl") if "loss/total" in r]
    assert len(losses) == 3 and all(math.isfinite(v) and v > 0 for v in losses)
    checkpoint = read_checkpoint(out / stage / "last.pth")
    assert checkpoint["step"] == 3 and {"optimizer", "scheduler", "trainer", "rng"} <= set(checkpoint)
    assert len(checkpoint["rng"]) == 2                       # one RNG state per rank
    assert not any(k.startswith("module.") for k in checkpoint["model"])
    model, cfg = api.load(out / stage / "last.pth")          # strict load of its own config
    assert set(model.keys()) >= set(cfg["model"]["parts"])


def test_best_checkpoints_follow_what_each_stage_can_measure(stages):
    out, _ = stages
    present = {stage: sorted(p.name for p in (out / stage).glob("best_*.pth")) for stage in STAGES}
    assert present["sr"] == ["best_psnr_model.pth"]         # no recognizer: no accuracy
    assert present["recognizer"] == ["best_acc_model.pth"]  # HR only: no PSNR
    assert present["joint_image"] == present["joint_feature"] == ["best_acc_model.pth", "best_psnr_model.pth"]
    best = read_checkpoint(out / "joint_image" / "best_psnr_model.pth")
    assert "optimizer" not in best and best["metrics"]["A-psnr"] > 0
    assert set(best["metrics"]["val"]) == {"bicubic", "model", "HR"}
    assert best["metrics"]["val"]["model"]["easy"]["n"] == 4   # val_limit, counted once over 2 ranks


def test_stage_starts_from_merged_checkpoint_with_a_report(stages):
    _, outputs = stages
    assert "train.init" in outputs["joint_image"] and "loaded" in outputs["joint_image"]
    assert "missing (left as initialised): adapter.net" in outputs["joint_feature"]
    assert "weighting.net.log_vars" in outputs["joint_feature"]


def test_uncertainty_weights_are_learned_logged_and_saved(stages):
    out, _ = stages
    log_vars = read_checkpoint(out / "joint_feature" / "last.pth")["model"]["weighting.net.log_vars"]
    assert log_vars.shape == (3,) and bool((log_vars != 0).all())      # tasks sr, rec, align
    records = [r for r in read_log(out / "joint_feature" / "log.jsonl") if "sigma/sr" in r]
    assert len(records) == 3 and records[0]["sigma/rec"] != records[-1]["sigma/rec"]
    assert all(math.exp(float(s) / 2) == pytest.approx(records[-1][f"sigma/{t}"], rel=1e-5)
               for s, t in zip(log_vars, ("sr", "rec", "align")))


def test_tensorboard_has_losses_metrics_and_pictures(stages):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, _ = stages
    events = EventAccumulator(str(out / "joint_feature" / "tb")).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"loss/total", "loss/sr", "loss/rec", "loss/align", "lr", "sigma/sr", "sigma/rec", "val/A/acc",
            "val/easy/psnr"} <= scalars
    assert {"val/easy", "val/medium", "val/hard"} <= set(events.Tags()["images"])


STEPS = 24


def interruptible(data_root, out_root):
    """A 24-step joint stage (SR + CTC through a trainable recognizer) saving every 2 steps: the kill -9 and
    SIGTERM tests run it and compare with one uninterrupted run of it."""
    return ["--config", stage_config("joint_image"), *tiny_overrides(
        data_root, out_root, **{"model.parts": "[sr,head,recognizer]", "train.init": "null", "train.steps": STEPS,
                                "train.save_every": 2, "train.val_every": 0, "model.recognizer.trainable": "all",
                                "train.tasks": "[sr,rec]", "train.task_weights": "{}"})]


@pytest.fixture(scope="module")
def uninterrupted(data_root, tmp_path_factory):
    """The run never stopped (the run folder's place does not enter training)."""
    out = tmp_path_factory.mktemp("uninterrupted")
    assert f"done: {STEPS} steps" in check(torchrun([*interruptible(data_root, out), "run.name=reference"]))
    return out / "reference"


def test_kill_minus_9_then_resume_reproduces_the_uninterrupted_run(data_root, uninterrupted, tmp_path):
    victim = torchrun([*interruptible(data_root, tmp_path), "run.name=victim"], wait=False)
    last = tmp_path / "victim" / "last.pth"
    deadline = time.time() + 240
    while not last.exists() and time.time() < deadline and victim.poll() is None:
        time.sleep(0.02)
    for pid in [victim.pid, *descendants(victim.pid)]:     # the launcher and both ranks at once, no clean-up
        os.kill(pid, signal.SIGKILL)
    victim.wait()
    time.sleep(0.5)
    killed_at = read_checkpoint(last)["step"]
    assert 0 < killed_at < STEPS, "the run ended before it could be killed; make it longer"
    resumed = check(torchrun(["--resume", str(tmp_path / "victim")]))
    assert f"resuming from {last} (step {killed_at})" in resumed
    ref_log = [r for r in read_log(uninterrupted / "log.jsonl") if "loss/total" in r]
    res_log = [r for r in read_log(tmp_path / "victim" / "log.jsonl") if "loss/total" in r]
    assert [r["step"] for r in res_log] == list(range(1, STEPS + 1))
    assert [r["loss/total"] for r in res_log] == [r["loss/total"] for r in ref_log]     # bit-identical
    ref_sum = json.loads((uninterrupted / "summary.json").read_text())
    res_sum = json.loads((tmp_path / "victim" / "summary.json").read_text())
    assert res_sum["rank_checksums"] == ref_sum["rank_checksums"]
    assert torch.equal(read_checkpoint(tmp_path / "victim" / "last.pth")["model"]["sr.net.block1.0.weight"],
                       read_checkpoint(uninterrupted / "last.pth")["model"]["sr.net.block1.0.weight"])


def test_sigterm_to_one_rank_then_resume_reproduces_the_uninterrupted_run(data_root, uninterrupted, tmp_path):
    """A scheduler's SIGTERM reaching one rank only: both ranks stop after the same step, last.pth is saved, and
    --resume ends with weights bit-identical to a run never stopped. (That a signal saves last.pth between
    periodic saves is tested in one process: test_trainer_faults.)"""
    victim = torchrun([*interruptible(data_root, tmp_path), "run.name=victim"], wait=False)
    log = tmp_path / "victim" / "log.jsonl"
    deadline = time.time() + 240
    while not (log.exists() and read_log(log)) and time.time() < deadline and victim.poll() is None:
        time.sleep(0.05)
    ranks = [pid for pid in descendants(victim.pid) if "tsr.train" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert len(ranks) == 2
    os.kill(ranks[-1], signal.SIGTERM)
    output = victim.communicate(timeout=240)[0]
    assert victim.returncode != 0 and "tsr train (rank 1)" not in output         # one line, from rank 0
    last = tmp_path / "victim" / "last.pth"
    stopped_at = read_checkpoint(last)["step"]
    assert 0 < stopped_at < STEPS, "the run ended before the signal; make it longer"
    assert (f"tsr train (rank 0): stopped: SIGTERM after step {stopped_at}: saved {last}; continue with tsr train --resume "
            f"{tmp_path / 'victim'}") in output
    check(torchrun(["--resume", str(tmp_path / "victim")]))
    ref_sum = json.loads((uninterrupted / "summary.json").read_text())
    res_sum = json.loads((tmp_path / "victim" / "summary.json").read_text())
    assert res_sum["rank_checksums"] == ref_sum["rank_checksums"]          # every weight and buffer, bit for bit
    resumed, reference = (read_checkpoint(run / "last.pth")["model"] for run in (tmp_path / "victim", uninterrupted))
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)


def test_an_unreadable_batch_on_one_rank_stops_every_rank_with_one_line(tmp_path):
    """Rank 1's third batch holds nothing readable, rank 0's does: both stop before that step's update, rank 1
    says why in one line, rank 0 says nothing (it used to end in gloo's "Connection reset by peer" traceback)."""
    from torch.utils.data import DistributedSampler

    from tsr.data.lmdb_writer import write_textzoom_lmdb
    from lmdb_records import pair

    args = ["--config", stage_config("sr"), *tiny_overrides(tmp_path / "d", tmp_path, **{
        "train.batch_size": 2, "train.steps": 6, "train.val_every": 0})]   # one sample per rank and step
    seed = int(subprocess.run([sys.executable, "-m", "tsr", "config", *args, "--get", "run.seed"], cwd=REPO,
                              capture_output=True, text=True, check=True).stdout)
    rank1 = list(DistributedSampler(range(16), num_replicas=2, rank=1, shuffle=True, seed=seed, drop_last=True))
    good = pair("abc")
    write_textzoom_lmdb(tmp_path / "d" / "train",
                        [(None, good[1], "abc") if i == rank1[2] else good for i in range(16)])
    for split in ("easy", "medium", "hard"):
        write_textzoom_lmdb(tmp_path / "d" / "test" / split, [good])
    result = torchrun(args)
    output = result.stdout + result.stderr
    last = tmp_path / "sr" / "last.pth"
    assert result.returncode != 0
    assert (f"tsr train (rank 1): error: every sample of a training batch (1) was unreadable; the LMDBs "
            f"['{tmp_path / 'd' / 'train'}'] look damaged; stopped before step 3's update; the last checkpoint, "
            f"{last}, holds step 2\n") in output
    assert "tsr train (rank 0)" not in output and "[rank0]" not in output and "[rank1]" not in output
    assert read_checkpoint(last)["step"] == 2


def descendants(pid: int) -> list[int]:
    """Child processes, recursively, from /proc (torchrun's workers run in their own process groups, so killing
    the launcher's group would leave them running)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *descendants(int(child))]
    return found


def test_multinode_launcher_runs_two_nodes(data_root, tmp_path):
    """Two 'nodes' of one process each on this machine, static rendezvous, through launch/train_multinode.sh."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["bash", str(REPO / "launch" / "train_multinode.sh"), "--config", stage_config("sr"),
            *tiny_overrides(data_root, tmp_path, **{"train.steps": 2})]
    nodes = [subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "NNODES": "2", "NODE_RANK": str(rank), "NPROC_PER_NODE": "1",
                                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"})
             for rank in (0, 1)]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    summary = json.loads((tmp_path / "sr" / "summary.json").read_text())
    assert summary["world_size"] == 2 and len(set(summary["rank_checksums"])) == 1


@pytest.mark.parametrize("stage", ["joint_image", "joint_feature"])
def test_tsr_eval_of_a_best_checkpoint_gives_the_numbers_validation_saved(stages, data_root, stage):
    """One evaluator: `tsr eval` on best_acc_model.pth reproduces the validation results stored in it (a
    feature-level model reads its words from SR features through its adapter in both)."""
    from tsr.engine.run_eval import run_eval

    out, _ = stages
    best = out / stage / "best_acc_model.pth"
    saved = read_checkpoint(best)["metrics"]["val"]["model"]
    results = dict(run_eval(str(data_root / "test"), [(str(best), "model")], out_dir=None, num_workers=0))
    for split in ("easy", "medium", "hard"):
        for metric in ("n", "acc", "psnr", "ssim"):
            assert results["model"][split][metric] == pytest.approx(saved[split][metric], abs=1e-6), (split, metric)


def _copy_split(src: Path, dst: Path, count: int) -> None:
    """The first `count` records of one TextZoom LMDB into a new one."""
    from tsr.data.lmdb_dataset import shared_env
    from tsr.data.lmdb_writer import write_textzoom_lmdb

    with shared_env(src).begin() as txn:   # py-lmdb opens a path once per process: share the evaluator's env
        records = [(txn.get(b"image_hr-%09d" % i), txn.get(b"image_lr-%09d" % i), txn.get(b"label-%09d" % i).decode())
                   for i in range(1, count + 1)]
    write_textzoom_lmdb(dst, records)


def test_eval_tables_weight_the_average_by_split_sizes_and_agree_under_torchrun(stages, data_root, tmp_path):
    """Splits of 1, 2 and 4 samples: counts, the sample-weighted A column and the baseline rows; then the same
    evaluation under torchrun with 2 ranks (1 sample can only be on one rank) gives the same tables."""
    out, _ = stages
    for split, count in (("easy", 1), ("medium", 2), ("hard", 4)):
        _copy_split(data_root / "test" / split, tmp_path / "test" / split, count)
    ckpt = f"{out / 'joint_image' / 'last.pth'}:joint"
    single = subprocess.run([sys.executable, "eval/evaluate.py", "--data", str(tmp_path / "test"), "--ckpt", ckpt,
                             "--out", str(tmp_path / "single"), "--workers", "0"], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    tables = json.loads((tmp_path / "single" / "results.json").read_text())
    rows = {row["name"]: row["results"] for row in tables["rows"]}
    assert list(rows) == ["bicubic", "joint", "HR"]
    for name, results in rows.items():
        assert [results[s]["n"] for s in ("easy", "medium", "hard", "A")] == [1, 2, 4, 7]
        for metric in ("acc", "psnr", "ssim"):
            if results["easy"][metric] is None:
                assert results["A"][metric] is None
                continue
            weighted = (results["easy"][metric] + 2 * results["medium"][metric] + 4 * results["hard"][metric]) / 7
            assert results["A"][metric] == pytest.approx(weighted)
    assert rows["HR"]["A"]["psnr"] is None and rows["HR"]["A"]["acc"] is not None
    assert {p.name for p in (tmp_path / "single").glob("pictures_*.png")} == {
        "pictures_easy.png", "pictures_medium.png", "pictures_hard.png"}
    distributed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "eval/evaluate.py",
         "--data", str(tmp_path / "test"), "--ckpt", ckpt, "--out", str(tmp_path / "ddp"), "--workers", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert distributed.returncode == 0, distributed.stderr[-3000:]
    ddp_rows = {r["name"]: r["results"] for r in json.loads((tmp_path / "ddp" / "results.json").read_text())["rows"]}
    for name, results in rows.items():
        for split in ("easy", "medium", "hard", "A"):
            for metric, value in results[split].items():
                assert ddp_rows[name][split][metric] == pytest.approx(value, abs=1e-6), (name, split, metric)
