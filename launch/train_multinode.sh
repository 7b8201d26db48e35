#!/usr/bin/env bash
# Train a stage on several nodes: run this on every node, with the same arguments and environment except NODE_RANK.
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 bash launch/train_multinode.sh --config configs/sr.yaml   # on node0
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=node0 bash launch/train_multinode.sh --config configs/sr.yaml   # on node1
# or, with a rendezvous endpoint (c10d; nodes may start in any order, no NODE_RANK needed):
#   NNODES=2 RDZV_ENDPOINT=node0:29400 RDZV_ID=sr_run1 bash launch/train_multinode.sh --config configs/sr.yaml
#   NNODES          number of nodes (required)
#   NPROC_PER_NODE  processes per node (default: the number of visible GPUs, or 1 without CUDA)
#   MASTER_ADDR / MASTER_PORT (default 29500) and NODE_RANK   static rendezvous
#   RDZV_ENDPOINT (host:port) and RDZV_ID (default tsr)        dynamic rendezvous, used when RDZV_ENDPOINT is set
# Every node must see the same data paths and the same run folder (a shared filesystem): rank 0 writes the
# checkpoints, and a resume reads them on every node (ranks that start from different states stop with an error).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$TSR_ROOT"
: "${NNODES:?set NNODES (the number of nodes)}"
nproc=${NPROC_PER_NODE:-$(( TSR_GPUS > 0 ? TSR_GPUS : 1 ))}   # TSR_GPUS: setup.sh
# checked here: torchrun would stop with a traceback (AssertionError / ValueError) not naming NPROC_PER_NODE
[[ $nproc =~ ^[1-9][0-9]*$ ]] || { echo "NPROC_PER_NODE must be a whole number >= 1, got '$nproc'" >&2; exit 2; }
# STEPS_X is launch/torchrun.sh's (train.sh, the demo): refused rather than ignored here
[ "${STEPS_X:-1}" = 1 ] || { echo "STEPS_X is not applied by train_multinode.sh; give train.steps=N instead" >&2; exit 2; }
if [ -n "${RDZV_ENDPOINT:-}" ]; then
  rendezvous=(--rdzv_backend=c10d --rdzv_endpoint="$RDZV_ENDPOINT" --rdzv_id="${RDZV_ID:-tsr}")
else
  : "${NODE_RANK:?set NODE_RANK (0 .. NNODES-1), or RDZV_ENDPOINT for a rendezvous}"
  : "${MASTER_ADDR:?set MASTER_ADDR (the address of the node with NODE_RANK 0), or RDZV_ENDPOINT}"
  rendezvous=(--node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" --master_port="${MASTER_PORT:-29500}")
fi
# launch/torchrun.py: torchrun, without its traceback after a rank's own one-line error (and with the rank's status)
exec "$TSR_PY" "$TSR_ROOT/launch/torchrun.py" --nnodes="$NNODES" --nproc_per_node="$nproc" "${rendezvous[@]}" -m tsr.train "$@"
