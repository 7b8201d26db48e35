#!/usr/bin/env bash
# Train a stage on one node with torchrun: one process per GPU (nccl), or NPROC CPU processes (gloo) without CUDA.
#   bash launch/train.sh --config configs/sr.yaml [key=value ...]
#   NPROC=2 bash launch/train.sh --config configs/demo/sr.yaml
#   NPROC    processes on this node (default: the number of visible GPUs, or 2 on a CPU-only machine)
#   STEPS_X=K  K times the config's train.steps (launch/torchrun.sh)
# Set-up as in setup.sh (a cluster's CUDA torch is kept).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
source "$(dirname "${BASH_SOURCE[0]}")/torchrun.sh"
cd "$TSR_ROOT"
# help from one process: under torchrun every rank printed it
for arg in "$@"; do
  case $arg in -h|--help) exec "$TSR_PY" -m tsr.train --help ;; esac
done
tsr_train "$@"   # launch/torchrun.sh: STEPS_X applies here as in the demo
