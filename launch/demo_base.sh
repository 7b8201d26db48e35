#!/usr/bin/env bash
# Sourced by demo.sh, ablation.sh and judges.sh: set-up, then the demo's first stages, each reused when already done:
#   synthesise TextZoom-format data -> train `sr` -> train `recognizer` (the CRNN that joint training uses and that
#   reads every row, TextZoom's protocol) -> merge them -> train `reader` (the independent judge: another family,
#   another seed, trained on HR and bicubic-upscaled LR; it takes part in no training).
# Defines $data $runs $out and what launch/torchrun.sh defines (train, evaluate, stamp).
#   TSR_DEMO_DATA=data/synth     where the synthetic LMDBs go
#   TSR_DEMO_RUNS=checkpoints/demo   run folders (must match run.out_root of configs/demo/*)
#   TSR_DEMO_OUT=eval/results/demo   tables and pictures
#   NPROC                        torchrun processes (default: one per GPU, 2 on CPU)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
source "$(dirname "${BASH_SOURCE[0]}")/torchrun.sh"
cd "$TSR_ROOT"
out=${TSR_DEMO_OUT:-eval/results/demo}
demo_data

stamp "stage sr: TSRN-style SR network alone ($nproc processes)"
train --config configs/demo/sr.yaml

stamp "stage recognizer: CRNN on HR images"
train --config configs/demo/recognizer.yaml

stamp "merging the sr and recognizer stages into one full checkpoint"
"$TSR_PY" -m tsr merge --sr "$runs/sr/best_psnr_model.pth" --recognizer "$runs/recognizer/best_acc_model.pth" \
  --out "$runs/sr+recognizer.pth"

stamp "stage reader: the independent judge (ConvCTC, no LSTM, seed 1, HR + bicubic LR); used in no training"
train --config configs/demo/reader.yaml

# For the scripts that read the demo's rows beside other rows (ablation.sh, judges.sh):
# the demo's joint stages from the merged checkpoint (reused when done, e.g. after launch/demo.sh)
demo_joint_stages() {
  local stage
  for stage in joint_image joint_feature_cnn; do
    stamp "the demo's stage $stage"
    train --config "configs/demo/$stage.yaml" "train.init=$runs/sr+recognizer.pth"
  done
}
# the control sr_more: sr trained on for the joint stages' images with the SR loss alone (a joint stage pays only
# if it beats this row too)
control_sr_more() {
  stamp "control sr_more: the sr stage trained on for the joint stages' images, SR loss only"
  train --config configs/demo/sr_more.yaml "train.init=$runs/sr/best_psnr_model.pth"
}
# panel_judges ARRAY NAME...: trains each independent judge configs/demo/panel/NAME.yaml (reused when done) and
# appends its --recognizer flag to the array variable ARRAY
panel_judges() {
  local -n flags=$1
  local reader
  shift
  for reader in "$@"; do
    stamp "panel judge $reader (configs/demo/panel/$reader.yaml)"
    train --config "configs/demo/panel/$reader.yaml"
    flags+=(--recognizer "convctc:$runs/$reader/best_acc_model.pth")
  done
}
