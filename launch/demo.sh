#!/usr/bin/env bash
# The main job on a fresh machine, on CPU with torchrun and 2 gloo processes (GPUs are used when present):
#   set-up (setup.sh) -> synthesise TextZoom-format data -> train `sr` -> train `recognizer` -> fine-tune it on
#   blurred crops too (`recognizer_blur`) -> merge `sr` and `recognizer_blur`; `reader` (the independent judge)
#   trains beside these in the background -> train `joint_image` and `joint_feature`
#   (configs/demo/joint_feature_cnn.yaml: the cnn adapter, which reads within the stage) from the merged checkpoint
#   -> evaluate all in one `tsr eval` with two judges and each model's own reading, printing one ACC table per
#   judge and the combined table: the recognizer_blur stage's CRNN (the recognizer joint training used; TextZoom's
#   protocol), the independent reader (ConvCTC, used in no training) and `own` (joint_feature: its SR features
#   through its adapter). The control `sr_more` (the sr stage trained on for as many steps as the joint stages)
#   is in launch/ablation.sh: the demo keeps to 15 minutes on 2 cores.
# Re-running reuses what is done (data with the same arguments, finished stages with the same config) and
# resumes an interrupted stage. Environment: see launch/demo_base.sh (TSR_DEMO_DATA, TSR_DEMO_RUNS, TSR_DEMO_OUT,
# NPROC).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/demo_base.sh"
demo_joint_stages   # launch/torchrun.sh

rows=("$runs/sr/best_psnr_model.pth:sr"
      "$runs/joint_image/last.pth:joint_image (content loss of the frozen CRNN)"
      "$runs/joint_feature_cnn/last.pth:joint_feature (cnn adapter + the CRNN; content loss)")
stamp "evaluating on $data/test: every row read by both judges (the recognizer_blur CRNN, the reader) and by itself"
# `own`: each model's own reading (joint_feature: its SR features through its adapter; joint_image: the frozen
# CRNN on its SR image, the CRNN column again), '-' for rows without a recognizer
evaluate --data "$data/test" --out "$out/judges" --ckpt "${rows[@]}" \
  --recognizer "crnn:$crnn" --recognizer "convctc:$runs/reader/best_acc_model.pth" \
  --recognizer own
stamp "done; tables and pictures in $out/judges"
