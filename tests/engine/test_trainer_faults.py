"""The trainer under faults, in one process: non-finite weights are never saved, a NaN score never becomes best,
one run per run folder (lock), train.init that fills too little stops, SIGTERM / SIGINT save last.pth and --resume
continues exactly, leftovers of killed writes are removed."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from tsr.checkpoint import read_checkpoint, save_checkpoint
from tsr.config import load_config
from tsr.data.synth import synthesize
from tsr.engine.monitor import read_log
from tsr.engine.run_folder import RunFolder
from tsr.engine.trainer import TrainerState, TrainingError, train
from tsr.errors import TsrError
from tsr.models.build import build_model
from trainer_helpers import REPO, stage_config, tiny_overrides


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("faultdata")
    synthesize(root, n_train=16, n_test=2, seed=4, workers=1)
    return root


def tiny_cfg(data_root, out_root, stage="sr", **extra):
    return load_config(stage_config(stage), tiny_overrides(data_root, out_root, **extra))


def test_non_finite_weights_are_never_saved(data_root, tmp_path, monkeypatch):
    real_step, calls = torch.optim.Adam.step, {"n": 0}

    def poisoned(self, *args, **kwargs):          # step 2's update turns one weight into NaN; its loss was finite
        result = real_step(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            self.param_groups[0]["params"][0].data.fill_(float("nan"))
        return result

    monkeypatch.setattr(torch.optim.Adam, "step", poisoned)
    cfg = tiny_cfg(data_root, tmp_path, **{"train.steps": 4, "train.val_every": 2})
    with pytest.raises(TrainingError, match=r"non-finite weights after step 2 in 1 tensor\(s\) \(sr\..*\); nothing was "
                                            r"saved from this step; the last checkpoint, .*last.pth, holds step 1"):
        train(cfg)
    run = tmp_path / "sr"
    assert read_checkpoint(run / "last.pth")["step"] == 1
    assert not (run / "best_psnr_model.pth").exists() and not (run / "summary.json").exists()


def test_a_nan_score_never_becomes_best(tmp_path):
    cfg = load_config(None, [f"run.out_root={tmp_path}"])
    folder, state = RunFolder(cfg, is_main=True), TrainerState(step=5)
    model = build_model(cfg)
    assert folder.save_best(state, {"acc": None, "psnr": float("nan")}, [], model) == []
    assert state.best_psnr is None and not (tmp_path / "default" / "best_psnr_model.pth").exists()
    assert len(folder.save_best(state, {"acc": None, "psnr": 20.0}, [], model)) == 1 and state.best_psnr == 20.0


def test_one_run_folder_one_run(data_root, tmp_path, capsys):
    args = ["--config", stage_config("sr"), *tiny_overrides(data_root, tmp_path, **{"train.steps": 400,
                                                                                   "train.val_every": 0})]
    first = subprocess.Popen([sys.executable, "-m", "tsr", "train", *args], cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        lock = tmp_path / "sr" / "run.lock"
        deadline = time.time() + 120
        while not (tmp_path / "sr" / "log.jsonl").exists() and time.time() < deadline:
            time.sleep(0.1)
        holder = json.loads(lock.read_text())
        assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
        second = subprocess.run([sys.executable, "-m", "tsr", "train", *args], cwd=REPO, capture_output=True, text=True)
        assert second.returncode == 2 and first.poll() is None           # refused while the first one runs
        assert second.stderr.strip().splitlines() == [
            f"tsr train: error: run folder {tmp_path / 'sr'} is in use by another run (process {first.pid} on host "
            f"{socket.gethostname()}, since {holder['since']}); choose another run.name, or wait for it to end. If "
            f"that run is dead (e.g. its node crashed), delete {lock}"]
    finally:
        first.kill()                                       # kill -9: the lock stays behind, stale
        first.wait()
    assert lock.exists()
    killed_at = read_checkpoint(tmp_path / "sr" / "last.pth")["step"]
    summary = train(tiny_cfg(data_root, tmp_path, **{"train.steps": killed_at + 1}), resume=str(tmp_path / "sr"))
    assert summary["steps"] == killed_at + 1
    assert not lock.exists()                               # taken over, then released at the end


def test_two_runs_taking_over_one_stale_lock_do_not_both_hold_it(tmp_path):
    """B judges the lock of a dead process stale, A takes it over meanwhile; B must not remove A's new lock."""
    import threading

    from tsr.engine.run_lock import RunLock, RunLocked

    dead = subprocess.Popen(["true"])
    dead.wait()                                            # a pid that no longer runs
    stale = {"host": socket.gethostname(), "pid": dead.pid, "ticks": None, "since": "then"}
    (tmp_path / "run.lock").write_text(json.dumps(stale))
    a, b = RunLock(tmp_path), RunLock(tmp_path)
    b_read, a_done, outcome = threading.Event(), threading.Event(), {}
    read = RunLock._holder

    def b_reads_then_waits(self):
        holder = read(self)
        if holder == stale:
            b_read.set()
            a_done.wait(10)                                 # B is descheduled here until A holds the lock
        return holder

    b._holder = b_reads_then_waits.__get__(b)

    def b_acquires():
        try:
            b.acquire()
        except RunLocked as e:
            outcome["b"] = str(e)

    thread = threading.Thread(target=b_acquires)
    thread.start()
    assert b_read.wait(10)
    a.acquire()
    a_done.set()
    thread.join(10)
    assert a.held and not b.held and "is in use by another run" in outcome["b"]
    assert json.loads((tmp_path / "run.lock").read_text())["since"] != "then"      # A's lock, in place
    assert [p.name for p in tmp_path.iterdir()] == ["run.lock"]                     # no claim file left
    a.release()
    assert not (tmp_path / "run.lock").exists()


def test_train_init_that_fills_too_little_stops(data_root, tmp_path):
    wide = tiny_cfg(data_root, tmp_path, **{"model.sr.channels": 16})
    save_checkpoint(tmp_path / "wide.pth", build_model(wide), wide, step=0)
    cfg = tiny_cfg(data_root, tmp_path, **{"train.init": tmp_path / "wide.pth", "train.steps": 1})
    with pytest.raises(TsrError, match=r"train.init .*wide.pth: only \d+ of this model's \d+ parameter tensors fit \(parts "
                                       r"\['sr', 'head'\]; train.init_min_loaded is 0.5\); what did not fit:\n"
                                       r"(.|\n)*wrong shape \(skipped\): sr.net"):
        train(cfg)
    cfg = tiny_cfg(data_root, tmp_path, **{"train.init": tmp_path / "wide.pth", "train.steps": 1,
                                           "train.init_min_loaded": 0.0, "run.name": "anyway"})
    assert train(cfg)["steps"] == 1


def _train_process(args):
    # one thread in every run compared here: CPU kernels may sum in another order with another thread count
    return subprocess.Popen([sys.executable, "-m", "tsr", "train", *args], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _finished(args):
    process = _train_process(args)
    err = process.communicate(timeout=300)[1]
    assert process.returncode == 0, err[-3000:]


SIGNAL_RUN = {"train.steps": 20, "train.val_every": 0, "train.save_every": 1000}


@pytest.fixture(scope="module")
def uninterrupted(data_root, tmp_path_factory):
    """The run both signal tests are compared with, trained once (the run folder's place does not enter training)."""
    out = tmp_path_factory.mktemp("uninterrupted")
    _finished(["--config", stage_config("sr"), *tiny_overrides(data_root, out, **SIGNAL_RUN)])
    return out / "sr"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_last_and_resume_continues_exactly(data_root, uninterrupted, tmp_path, signum):
    args = ["--config", stage_config("sr"), *tiny_overrides(data_root, tmp_path, **SIGNAL_RUN)]
    victim = _train_process(args)
    log = tmp_path / "sr" / "log.jsonl"
    deadline = time.time() + 120
    while not (log.exists() and read_log(log)) and time.time() < deadline and victim.poll() is None:
        time.sleep(0.05)
    victim.send_signal(signum)
    _, err = victim.communicate(timeout=120)
    assert victim.returncode == 128 + signum, err[-3000:]
    last = tmp_path / "sr" / "last.pth"
    stopped_at = read_checkpoint(last)["step"]
    assert 0 < stopped_at < 20, "the run ended before the signal; make it longer"
    name = signal.Signals(signum).name
    assert "Traceback" not in err and err.strip().splitlines()[-1] == (
        f"tsr train: stopped: {name} after step {stopped_at}: saved {last}; continue with tsr train --resume "
        f"{tmp_path / 'sr'}")
    assert not (tmp_path / "sr" / "run.lock").exists()
    _finished(["--resume", str(tmp_path / "sr")])
    losses = [r["loss/total"] for r in read_log(log) if "loss/total" in r]
    assert losses == [r["loss/total"] for r in read_log(uninterrupted / "log.jsonl") if "loss/total" in r]
    resumed = read_checkpoint(last)["model"]
    reference = read_checkpoint(uninterrupted / "last.pth")["model"]
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)       # bit-identical


def test_leftovers_of_killed_writes_are_removed_on_the_next_start(data_root, tmp_path):
    run = tmp_path / "sr"
    run.mkdir()
    (run / ".last.pth.k1ll3d.tmp").write_bytes(b"half a checkpoint")
    train(tiny_cfg(data_root, tmp_path, **{"train.steps": 1}))
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []
    from tsr.data.lmdb_writer import write_textzoom_lmdb
    (tmp_path / ".train.x1y2.writing").mkdir()
    (tmp_path / ".train.x1y2.writing" / "data.mdb").write_bytes(b"half an lmdb")
    write_textzoom_lmdb(tmp_path / "train", [(None, None, "a")])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
