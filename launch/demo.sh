#!/usr/bin/env bash
# The main job on a fresh machine, on CPU with torchrun and 2 gloo processes (GPUs are used when present):
#   set-up (setup.sh) -> synthesise TextZoom-format data -> train `sr` -> train `recognizer` -> merge them ->
#   train `joint_feature` (sidernn adapter, uncertainty weighting) -> evaluate all and print the tables.
# Re-running reuses what is done (data with the same arguments, finished stages with the same config) and
# resumes an interrupted stage.
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
train() { "$TSR_PY" -m torch.distributed.run --standalone --nproc_per_node="$nproc" -m tsr.train --reuse "$@"; }
SECONDS=0
stamp() { printf '[demo] %02d:%02d %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$1"; }

stamp "1/6 synthesising TextZoom-format data in $data"
"$TSR_PY" -m tsr synth --out "$data" --train 20000 --test 300 --seed 0 --reuse

stamp "2/6 stage sr: TSRN-style SR network alone ($nproc processes)"
train --config configs/demo/sr.yaml "${paths[@]}"

stamp "3/6 stage recognizer: CRNN on HR images"
train --config configs/demo/recognizer.yaml "${paths[@]}"

stamp "4/6 merging the sr and recognizer stages into one full checkpoint"
"$TSR_PY" -m tsr merge --sr "$runs/sr/best_psnr_model.pth" --recognizer "$runs/recognizer/best_acc_model.pth" \
  --out "$runs/sr+recognizer.pth"

stamp "5/6 stage joint_feature: SR features -> sidernn adapter -> CRNN, uncertainty weighting"
train --config configs/demo/joint_feature.yaml "${paths[@]}" "train.init=$runs/sr+recognizer.pth"

stamp "6/6 evaluating on $data/test (every row read by the recognizer stage's CRNN)"
"$TSR_PY" -m tsr eval --data "$data/test" --out "$out" --recognizer "$runs/recognizer/best_acc_model.pth" \
  --ckpt "$runs/sr/best_psnr_model.pth:TSRN (sr stage)" \
         "$runs/joint_feature/best_psnr_model.pth:TSRN + sidernn, uncertainty (joint_feature)"
stamp "done; tables and pictures in $out"
