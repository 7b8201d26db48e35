"""The run folder's rules (RUN = run.out_root/run.name): what an earlier run left there, whether this config may
reuse or resume it, where a stage's weights start from (train.init, resume), and which checkpoints are written
(last.pth with the training state, best_*_model.pth with weights only). Rank 0 writes; every rank reads.
One run folder belongs to one run: rank 0 holds RUN/run.lock (tsr.engine.run_lock) from `open` to `close`, and
clears what killed writes left behind (temp files of atomic writes) once it holds it.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Optional

import yaml
from torch import nn

from tsr.checkpoint import load_model_state, read_checkpoint, save_checkpoint
from tsr.checkpoint.io import check_checkpoint_path, named_by
from tsr.config import ConfigError, build_config, save_config
from tsr.config_yaml import load_yaml
from tsr import dist
from tsr.engine.rng import restore_rng_state
from tsr.engine.console_log import LOG_FILE
from tsr.engine.monitor import LOG_NAME
from tsr.engine.run_lock import LOCK, RunLock, RunLocked
from tsr.errors import TsrError
from tsr.io import remove_temp_files

log = logging.getLogger("tsr.train")

LAST, BEST_ACC, BEST_PSNR = "last.pth", "best_acc_model.pth", "best_psnr_model.pth"
CONFIG = "config.yaml"   # the resolved config the folder's checkpoints continue under
BEST = {"acc": BEST_ACC, "psnr": BEST_PSNR}     # validation score -> the file its best weights go to
# every file a run keeps in its folder (tsr.outputs never lets another command write over one)
RUN_FILES = {LAST, BEST_ACC, BEST_PSNR, CONFIG, "summary.json", LOG_NAME, LOG_FILE, LOCK}
# Settings of how fast a run goes, never of what it computes: a finished run is reused and an interrupted one
# resumed whatever they are. (eval.batch_size is not one: the textzoom protocol's PSNR/SSIM depend on it, and
# so does the best_psnr choice.)
SPEED_ONLY = {"data.num_workers", "data.cache"}
# What a resumed run may change without breaking exactness: those, how long it runs and what it reports.
# (train.steps only where the learning-rate curve does not depend on it: see _check_resume. run.out_root / run.name
# say where the folder is, which the resumed checkpoint's own place decides: a moved folder resumes where it is.)
RESUME_MAY_CHANGE = SPEED_ONLY | {"train.steps", "train.val_every", "train.val_limit", "train.save_every",
                                  "train.log_every", "train.num_images", "run.out_root", "run.name"}


def run_dir_of(cfg: dict) -> Path:
    return Path(cfg["run"]["out_root"]) / cfg["run"]["name"]


def file_label(path: str) -> str:
    """A checkpoint's name in a table label: its file stem, or its run folder's name when the stem is one that
    every run folder has (best_acc_model, best_psnr_model, last)."""
    file = Path(path)
    generic = {Path(name).stem for name in (BEST_ACC, BEST_PSNR, LAST)}
    return file.parent.name if file.stem in generic and file.parent.name else file.stem


def previous_run(cfg: dict) -> str:
    """What the run folder of `cfg` holds: "none", "finished" (summary.json written) or "interrupted" (a last.pth,
    no summary). A folder holding a run made with another config is an error naming the differing keys."""
    run_dir = run_dir_of(cfg)
    if not (run_dir / LAST).exists():
        return "none"
    differing = config_changes(read_checkpoint(run_dir / LAST, expected_format="tsr")["config"], cfg, SPEED_ONLY)
    if differing:
        raise TsrError(f"{run_dir} holds a run made with another config (differs in {', '.join(differing[:5])}); "
                       "choose another run.name, or continue it with --resume")
    return "finished" if (run_dir / "summary.json").exists() else "interrupted"


def config_changes(saved: dict, cfg: dict, allowed: set[str]) -> list[str]:
    """Keys (with both values) in which `cfg` differs from a run's saved config, except the `allowed` ones. The
    saved config gets today's defaults first: a key added to tsr since that run is no change."""
    try:
        saved = build_config(saved, source="the run's saved config")
    except ConfigError:
        pass                          # a key tsr no longer has: the comparison below names it
    return [k for k in _differing_keys(saved, cfg) if k.split(" ")[0] not in allowed]


def _differing_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            keys += _differing_keys(x, y, f"{prefix}{key}.")
        elif x != y:
            keys.append(f"{prefix}{key} ({x!r} vs {y!r})")
    return keys


def resolve_resume(resume: str) -> Path:
    """A checkpoint path, or a run folder -> its last.pth."""
    path = Path(resume)
    return path / LAST if path.is_dir() else path


class RunFolder:
    """One run's folder, for one rank: opened once (`open`), then the source of the start weights and the sink of
    every checkpoint the run writes."""

    def __init__(self, cfg: dict, is_main: bool):
        self.cfg, self.is_main = cfg, is_main
        self.path = run_dir_of(cfg)
        self.lock = RunLock(self.path)

    def open(self, resume: Optional[str]) -> Optional[dict]:
        """Check what is asked against what the folder holds (before anything is written there), lock the folder (a
        second run fails at once, on every rank), then: the checkpoint to resume from, or None for a fresh run; a
        fresh run never overwrites another's."""
        # before the lock makes the folder: a resume into another folder, a train.init that is no file (a run
        # folder, most often; init_weights reads it only after the folder holds config.yaml and train.log)
        if resume is not None:
            self._check_place(resolve_resume(resume))
        elif self.cfg["train"]["init"]:
            with named_by("train.init"):
                check_checkpoint_path(self.cfg["train"]["init"])
        problem = None
        if self.is_main:
            try:
                self.lock.acquire()
            except RunLocked as e:
                problem = str(e)
        problems = [p for p in dist.all_gather_object(problem) if p]
        if problems:
            raise RunLocked(problems[0])
        if self.is_main:
            removed = remove_temp_files(self.path)
            if removed:
                log.info("%s: removed %d unfinished write(s) of an earlier run: %s", self.path, len(removed),
                         ", ".join(p.name for p in removed))
        checkpoint = self._check_resume(resume) if resume is not None else self._check_fresh()
        if self.is_main:   # the config the folder's checkpoints continue under (a resume may lengthen the run)
            save_config(self.cfg, self.path / CONFIG)
        if checkpoint is not None:
            log.info("resuming from %s (step %d)", resolve_resume(resume), checkpoint["step"])
        return checkpoint

    def _check_place(self, path: Path) -> None:
        if path.resolve().parent != self.path.resolve():
            raise TsrError(f"--resume {path} belongs to the run folder {path.parent}, but this config's run folder "
                           f"(run.out_root/run.name) is {self.path}; resume without --config, or start a new "
                           f"run from its weights with train.init={path}")

    def _check_resume(self, resume: str) -> dict:
        """The checkpoint to resume from, once it holds a training state, of this config, short of train.steps."""
        path = resolve_resume(resume)
        checkpoint = read_checkpoint(path, expected_format="tsr")
        missing = [k for k in ("optimizer", "scheduler", "trainer") if k not in checkpoint]
        if missing:
            raise TsrError(f"cannot resume: the checkpoint has no {missing} (a best_* or converted checkpoint holds "
                           f"weights only; resume from {LAST}, or start a new run with train.init=PATH)")
        differing = config_changes(checkpoint["config"], self.cfg, RESUME_MAY_CHANGE)
        saved_train, train = checkpoint["config"].get("train", {}), self.cfg["train"]
        if saved_train.get("steps") != train["steps"] and train["lr_schedule"] == "cosine":
            # cosine's curve is drawn over train.steps: a resumed run with another length would match no run
            # trained without a stop (the learning rate falls to 0, then rises again)
            differing.insert(0, f"train.steps ({saved_train.get('steps')!r} vs {train['steps']!r}: "
                                f"train.lr_schedule cosine depends on it)")
        if differing:
            raise TsrError(f"--resume {path}: the given config differs from the run's in {', '.join(differing[:5])}; "
                           f"a resumed run may change only {', '.join(sorted(RESUME_MAY_CHANGE))} (train.steps not "
                           f"with train.lr_schedule cosine)")
        finished = (self.path / "summary.json").exists()
        # (at train.steps without summary.json: stopped by a signal in its last step, after saving it; the resume
        # finishes it, as the stop message and --reuse say)
        if checkpoint["step"] > train["steps"] or (checkpoint["step"] == train["steps"] and finished):
            raise TsrError(f"--resume {path}: the run is at step {checkpoint['step']} and train.steps is "
                           f"{train['steps']}: nothing to train (nothing was changed); to train it further, give "
                           f"train.steps above {checkpoint['step']}")
        return checkpoint

    def _check_fresh(self) -> None:
        """A fresh run takes a folder that holds no run, or one that died before saving, of this config."""
        if (self.path / LAST).exists():
            raise TsrError(f"{self.path} already holds {LAST}: continue it with --resume {self.path}, or "
                           "choose another run.name (nothing was overwritten)")
        saved, logged = self.path / CONFIG, self.path / LOG_NAME
        if saved.is_file() and logged.is_file() and logged.stat().st_size:
            # a run that trained, then died before its first checkpoint: starting it again is fine, but a run of
            # another config would mix its logs (log.jsonl, tb/, train.log) with the dead one's. (A run refused
            # before its first step logged nothing: its config.yaml is replaced as the config is corrected.)
            try:
                earlier = load_yaml(saved.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                earlier = None
            differing = (config_changes(earlier, self.cfg, SPEED_ONLY) if isinstance(earlier, dict)
                         else ["everything (it is not a readable YAML mapping)"])
            if differing:
                raise TsrError(f"{self.path} holds the logs of an earlier run of another config that saved no "
                               f"checkpoint (config.yaml differs in {', '.join(differing[:5])}); choose another "
                               f"run.name, or remove {self.path} if that run is of no use")
        return None

    def close(self) -> None:
        """Release the folder (rank 0); a run that dies without calling this leaves a stale lock, taken over later."""
        self.lock.release()

    def init_weights(self, model: nn.Module, path: str) -> None:
        """Start this stage from an earlier stage's (or a public) checkpoint: one strict=False load, reported. Fewer
        than train.init_min_loaded of the model's parameter tensors filled is an error naming what did not fit.
        Parameters, not buffers, are counted: buffers are statistics the stage re-estimates (a QAT model's observer
        and fake-quantisation buffers alone outnumber its weights, and a float checkpoint has none of them)."""
        with named_by("train.init"):
            checkpoint = read_checkpoint(path)
        report = load_model_state(model, checkpoint["model"], strict=False, source=f"train.init {path}")
        parameters = {name for name, _ in model.named_parameters()}
        filled = sum(key in parameters for key in report.loaded)
        least = self.cfg["train"]["init_min_loaded"]
        if not report.loaded or filled < least * len(parameters):
            raise TsrError(f"train.init {path}: only {filled} of this model's {len(parameters)} parameter tensors fit "
                           f"(parts {list(model.keys())}; train.init_min_loaded is {least}); what did not fit:\n{report}")
        if self.is_main:
            log.info("%s", report)

    def restore(self, checkpoint: dict, model: nn.Module, optimizer: Any, scheduler: Any, scaler: Any,
                world: int, rank: int) -> dict:
        """Load a resume checkpoint strictly into the model, optimizer, scheduler, scaler and this rank's RNG; returns
        the trainer state dict it holds. Resuming on another number of ranks is an error."""
        load_model_state(model, checkpoint["model"], strict=True, source="resume")   # (open checked its keys)
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        if "scaler" in checkpoint and scaler.is_enabled():
            scaler.load_state_dict(checkpoint["scaler"])
        trainer = checkpoint["trainer"]
        if trainer["world_size"] != world:
            raise TsrError(f"cannot resume exactly: the checkpoint was written by {trainer['world_size']} rank(s) and "
                           f"this run has {world}; each rank's position in the epoch is per rank. Resume with "
                           f"{trainer['world_size']} processes, or start a new run from its weights with train.init=PATH")
        rng = checkpoint.get("rng")
        if isinstance(rng, list) and len(rng) == world:
            restore_rng_state(rng[rank])
        else:
            log.warning("resume: the checkpoint's RNG states are for %s ranks, this run has %d; RNG re-seeded",
                        len(rng) if isinstance(rng, list) else "no", world)
        return trainer

    def save(self, name: str, model: nn.Module, step: int, metrics: Optional[dict] = None,
             **training_state: Any) -> Optional[Path]:
        """Write RUN/name on rank 0 (other ranks: nothing, None); training_state as in save_checkpoint."""
        if not self.is_main:
            return None
        return save_checkpoint(self.path / name, model, self.cfg, step, metrics=metrics, **training_state)

    def save_best(self, state: Any, score: dict, results: list, model: nn.Module) -> list[str]:
        """For each scored metric (acc, psnr) that beats `state`'s best: record it in `state` (best_<m>,
        best_<m>_step) and write its weights-only checkpoint. Returns one message per new best."""
        messages = []
        for metric, name in BEST.items():
            value, best = score[metric], getattr(state, f"best_{metric}")
            # a NaN score (weights gone wrong) never becomes best: NaN > x is False, but `best is None` is not
            if value is not None and math.isfinite(value) and (best is None or value > best):
                setattr(state, f"best_{metric}", value)
                setattr(state, f"best_{metric}_step", state.step)
                self.save(name, model, state.step, metrics={"val": dict(results), f"A-{metric}": value})
                messages.append(f"new best A-{metric.upper()} {value:.4g} at step {state.step}: {self.path / name}")
        return messages
