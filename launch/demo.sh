#!/usr/bin/env bash
# The main job on a fresh machine, on CPU with torchrun and 2 gloo processes (GPUs are used when present):
#   set-up (setup.sh) -> synthesise TextZoom-format data -> train `sr` -> train `recognizer` -> merge them ->
#   train `reader` (the independent judge) -> train `joint_image` and `joint_feature` (configs/demo/
#   joint_feature_cnn.yaml: the cnn adapter, which reads within the stage) from the merged checkpoint
#   -> evaluate all in one `tsr eval` with two judges, printing one ACC table per judge and the combined table:
#   the recognizer stage's CRNN (the recognizer joint training used; TextZoom's protocol) and the independent
#   reader (ConvCTC, used in no training); then joint_feature reading its own features. The control `sr_more`
#   (the sr stage trained on for as many steps as the joint stages) is in launch/ablation.sh: the demo keeps to
#   15 minutes on 2 cores.
# Re-running reuses what is done (data with the same arguments, finished stages with the same config) and
# resumes an interrupted stage. Environment: see launch/demo_base.sh (TSR_DEMO_DATA, TSR_DEMO_RUNS, TSR_DEMO_OUT,
# NPROC).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/demo_base.sh"
init=("train.init=$runs/sr+recognizer.pth")

stamp "stage joint_image: SR image -> frozen CRNN; content loss (CRNN features of SR vs HR) + SR loss"
train --config configs/demo/joint_image.yaml "${init[@]}"

stamp "stage joint_feature: SR features -> cnn adapter -> the CRNN from its first pooling on; content loss on the SR image"
train --config configs/demo/joint_feature_cnn.yaml "${init[@]}"

rows=("$runs/sr/best_psnr_model.pth:sr"
      "$runs/joint_image/last.pth:joint_image (content loss of the frozen CRNN)"
      "$runs/joint_feature_cnn/last.pth:joint_feature (cnn adapter + the CRNN; content loss)")
stamp "evaluating on $data/test: every row read by both judges, the recognizer stage's CRNN and the reader (ConvCTC)"
evaluate --data "$data/test" --out "$out/judges" --ckpt "${rows[@]}" \
  --recognizer "crnn:$runs/recognizer/best_acc_model.pth" --recognizer "convctc:$runs/reader/best_acc_model.pth"
# with judges every row is read by them; a model's own reading (joint_feature: through its adapter) needs a
# tsr eval without --recognizer
stamp "evaluating on $data/test: the joint_feature model reads its own features (through its adapter)"
evaluate --data "$data/test" --out "$out/own" --ckpt "${rows[2]}"
stamp "done; tables and pictures in $out/{judges,own}"
