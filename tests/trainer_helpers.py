"""Shared by the trainer tests: a tiny version of every stage config (same files as the demo, narrow models,
few steps) and a torchrun launcher."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def tiny_overrides(data_root: Path, out_root: Path, **extra) -> list[str]:
    values = {
        "data.train_roots": f"[{data_root / 'train'}]", "data.test_root": str(data_root / "test"),
        "data.num_workers": 0, "model.sr.channels": 8, "model.sr.blocks": 1, "model.recognizer.hidden": 8,
        "model.recognizer.cnn_channels": "[4,8,8,8,16,16,16]", "model.adapter.hidden": 8,
        "train.batch_size": 8, "train.steps": 3, "train.save_every": 1, "train.log_every": 1,
        "train.val_limit": 4, "train.num_images": 2, "run.out_root": str(out_root), "eval.batch_size": 4,
    }
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


def stage_config(stage: str) -> str:
    return str(REPO / "configs" / "demo" / f"{stage}.yaml")


def tiny_stage(stage: str, data_root: Path, out_root: Path, **extra):
    """(resolved config, built FullModel) of the tiny version of demo stage `stage`."""
    from tsr.config import load_config
    from tsr.models.build import build_model

    cfg = load_config(stage_config(stage), tiny_overrides(data_root, out_root, **extra))
    return cfg, build_model(cfg)


def torchrun(args: list[str], nproc: int = 2, timeout: int = 300, wait: bool = True):
    """`torchrun --standalone --nproc_per_node=N -m tsr.train ARGS` from the repository root."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "tsr.train", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    if not wait:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def check(result) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output
