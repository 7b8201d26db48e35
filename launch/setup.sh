#!/usr/bin/env bash
# All set-up on a fresh machine: create or reuse a virtual environment and install what is missing.
# Sourced by the launch scripts; afterwards $TSR_PY is the environment's python and $TSR_GPUS the number of
# visible GPUs.
#   TSR_VENV=path   where the environment lives (default: .venv in the repository)
#   PYTHON=python3  the interpreter that creates it
#   TSR_PYTHON=path an interpreter you manage (a cluster's conda environment, a GPU image without internet): used
#                   as it is, with this repository on PYTHONPATH; no environment is made and nothing installed
# torch is installed first and alone, pinned (requirements.txt), so that pip takes the local CPU wheel
# here instead of a multi-GB CUDA build; a torch that is already importable (a CUDA build on a
# cluster) is kept: the environment is then created with --system-site-packages and torch is not touched.
set -euo pipefail
TSR_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TSR_VENV=${TSR_VENV:-$TSR_ROOT/.venv}
base_python=${PYTHON:-python3}

# tsr_venv_install: under the lock, make the environment (or remake one set-up made that cannot run) and install
tsr_venv_install() {
  # A venv that cannot run (killed during `python -m venv`, made --without-pip, its interpreter's link gone) made
  # every later set-up fail ("No module named pip") without repair. Set-up marks the venvs it makes (.tsr-made):
  # those are remade; another is not deleted, the user is told which one is broken.
  if { [ -e "$TSR_PY" ] || [ -L "$TSR_PY" ] || [ -e "$TSR_VENV/pyvenv.cfg" ]; } && ! "$TSR_PY" -c "import pip" 2>/dev/null; then
    if [ ! -e "$TSR_VENV/.tsr-made" ]; then
      echo "[setup] TSR_VENV=$TSR_VENV is a virtual environment that cannot run (its python is missing or has no pip) and set-up did not make it: repair or remove it, or set TSR_VENV to another folder" >&2
      exit 2
    fi
    echo "[setup] $TSR_VENV cannot run (its python is missing or has no pip): making it again" >&2
    find "$TSR_VENV" -mindepth 1 -maxdepth 1 ! -name .tsr-setup.lock ! -name .tsr-made -exec rm -rf {} +
  fi
  if [ ! -x "$TSR_PY" ]; then
    touch "$TSR_VENV/.tsr-made"   # before the venv: a set-up killed while making it leaves it marked as its own
    if "$base_python" -c "import torch" 2>/dev/null; then
      echo "[setup] keeping the torch of $base_python: $("$base_python" -c 'import torch; print(torch.__version__)')"
      "$base_python" -m venv --system-site-packages "$TSR_VENV"
    else
      "$base_python" -m venv "$TSR_VENV"
    fi
  fi
  # --no-compile: pip would byte-compile every module of every package (torch has thousands) up front, most of
  # the set-up's time on 2 cores (29 s instead of about 80 here); Python compiles what it imports on first use
  pip_install() { "$TSR_PY" -m pip install --disable-pip-version-check -q --no-compile "$@"; }
  if ! "$TSR_PY" -c "import torch" 2>/dev/null; then
    echo "[setup] installing $(grep '^torch==' "$TSR_ROOT/requirements.txt")"
    pip_install "$(grep '^torch==' "$TSR_ROOT/requirements.txt")"
  fi
  echo "[setup] installing requirements"
  grep -v '^torch==' "$TSR_ROOT/requirements.txt" > "$TSR_VENV/.requirements-no-torch.txt"
  pip_install -r "$TSR_VENV/.requirements-no-torch.txt" -r "$TSR_ROOT/requirements-dev.txt"
  pip_install --no-deps -e "$TSR_ROOT"
  # .pyc files for what tsr's processes import: with PYTHONDONTWRITEBYTECODE set (as here) every torchrun rank and
  # test subprocess would otherwise compile torch's sources again (launch/warm_bytecode.py)
  echo "[setup] byte-compiling the modules tsr imports"
  "$TSR_PY" "$TSR_ROOT/launch/warm_bytecode.py" || echo "[setup] byte-compiling failed; tsr works, its processes start slower" >&2
  echo "$wanted" > "$stamp"
}

if [ -n "${TSR_PYTHON:-}" ]; then
  # an absolute path: the launch scripts cd to the repository after set-up
  TSR_PY=$(command -v "$TSR_PYTHON") || { echo "[setup] TSR_PYTHON=$TSR_PYTHON: no such interpreter" >&2; exit 1; }
  [[ $TSR_PY == /* ]] || TSR_PY=$PWD/$TSR_PY
  export TSR_PY PYTHONPATH="$TSR_ROOT${PYTHONPATH:+:$PYTHONPATH}"
  echo "[setup] TSR_PYTHON: $TSR_PY as it is (nothing installed), tsr from $TSR_ROOT" >&2
else
  TSR_PY=$TSR_VENV/bin/python
  export TSR_PY
  # Re-install only when the requirements or the package metadata change.
  stamp=$TSR_VENV/.tsr-setup
  wanted=$(cat "$TSR_ROOT/requirements.txt" "$TSR_ROOT/requirements-dev.txt" "$TSR_ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)
  tsr_venv_done() { [ -x "$TSR_PY" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; }
  # An environment with nothing to install is used without the lock: a complete read-only one (a shared cluster
  # install) could not hold the lock file.
  if ! tsr_venv_done; then
    # One set-up at a time per environment: two shells, or two nodes of train_multinode.sh on a shared filesystem,
    # would otherwise race (one installing torch while the other uses the half-made venv). The lock lives in the
    # environment's folder and is released at the end (this file is sourced: the caller's shell keeps running).
    mkdir -p "$TSR_VENV"
    exec {tsr_setup_lock}>"$TSR_VENV/.tsr-setup.lock"
    if command -v flock >/dev/null; then
      flock -w 3600 "$tsr_setup_lock" || { echo "[setup] waited an hour for $TSR_VENV/.tsr-setup.lock; giving up" >&2; exit 1; }
    else
      echo "[setup] flock not found: concurrent set-ups of $TSR_VENV are not serialised" >&2
    fi
    tsr_venv_done || tsr_venv_install   # again under the lock: another set-up may have finished it meanwhile
    exec {tsr_setup_lock}>&-   # closing the descriptor releases the lock
  fi
fi
# the check that the environment works also counts the GPUs (TSR_GPUS, launch/torchrun.sh's default process count):
# one torch import instead of two, ~2 s of every launch script on 2 cores
# (an environment without torch or tsr, e.g. a TSR_PYTHON of another project: one line naming it, not a traceback)
tsr_check=$(mktemp)
if TSR_GPUS=$("$TSR_PY" -c "import sys, torch, tsr; print(f'[setup] python {sys.version.split()[0]}, torch {torch.__version__}, tsr {tsr.__version__}, cuda available: {torch.cuda.is_available()}', file=sys.stderr); print(torch.cuda.device_count())" 2>"$tsr_check"); then
  cat "$tsr_check" >&2; rm -f "$tsr_check"
else
  echo "[setup] $TSR_PY cannot import torch and tsr ($(tail -n 1 "$tsr_check")); install requirements.txt there, or unset TSR_PYTHON" >&2
  rm -f "$tsr_check"; exit 2
fi
export TSR_GPUS
