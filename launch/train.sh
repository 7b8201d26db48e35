#!/usr/bin/env bash
# Train a stage on one node with torchrun: one process per GPU (nccl), or NPROC CPU processes (gloo) without CUDA.
#   bash launch/train.sh --config configs/sr.yaml [key=value ...]
#   NPROC=2 bash launch/train.sh --config configs/demo/sr.yaml
#   NPROC    processes on this node (default: the number of visible GPUs, or 2 on a CPU-only machine)
# Set-up as in setup.sh (a cluster's CUDA torch is kept).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
source "$(dirname "${BASH_SOURCE[0]}")/torchrun.sh"
cd "$TSR_ROOT"
torchrun -m tsr.train "$@"
