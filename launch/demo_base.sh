#!/usr/bin/env bash
# Sourced by demo.sh and ablation.sh: set-up, then the demo's first stages, each reused when already done:
#   synthesise TextZoom-format data -> train `sr` -> train `recognizer` (the CRNN that joint training uses and that
#   reads every row, TextZoom's protocol) -> merge them -> train `reader` (the independent judge: another family,
#   another seed, trained on HR and bicubic-upscaled LR; it takes part in no training).
# Defines $data $runs $out $nproc, `train` (torchrun -m tsr.train --reuse with the demo's paths), `evaluate`
# (torchrun -m tsr eval) and `stamp`.
#   TSR_DEMO_DATA=data/synth     where the synthetic LMDBs go
#   TSR_DEMO_RUNS=checkpoints/demo   run folders (must match run.out_root of configs/demo/*)
#   TSR_DEMO_OUT=eval/results/demo   tables and pictures
#   NPROC=2                      torchrun processes
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$TSR_ROOT"
data=${TSR_DEMO_DATA:-data/synth}
runs=${TSR_DEMO_RUNS:-checkpoints/demo}
out=${TSR_DEMO_OUT:-eval/results/demo}
nproc=${NPROC:-2}
paths=("data.train_roots=[$data/train]" "data.test_root=$data/test" "run.out_root=$runs")
train() { "$TSR_PY" -m torch.distributed.run --standalone --nproc_per_node="$nproc" -m tsr.train --reuse "$@" "${paths[@]}"; }
# tsr eval under torchrun too: each rank reads whole batches with one thread; same tables as one process, which
# took 4x as long with 2 threads on a busy 2-core machine (TSRN's GRUs and small convs scale poorly over threads)
evaluate() { "$TSR_PY" -m torch.distributed.run --standalone --nproc_per_node="$nproc" -m tsr eval "$@"; }
SECONDS=0
stamp() { printf '[demo] %02d:%02d %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$1"; }

stamp "synthesising TextZoom-format data in $data"
"$TSR_PY" -m tsr synth --out "$data" --train 20000 --test 300 --seed 0 --reuse

stamp "stage sr: TSRN-style SR network alone ($nproc processes)"
train --config configs/demo/sr.yaml

stamp "stage recognizer: CRNN on HR images"
train --config configs/demo/recognizer.yaml

stamp "merging the sr and recognizer stages into one full checkpoint"
"$TSR_PY" -m tsr merge --sr "$runs/sr/best_psnr_model.pth" --recognizer "$runs/recognizer/best_acc_model.pth" \
  --out "$runs/sr+recognizer.pth"

stamp "stage reader: the independent judge (ConvCTC, no LSTM, seed 1, HR + bicubic LR); used in no training"
train --config configs/demo/reader.yaml
