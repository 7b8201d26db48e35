#!/usr/bin/env bash
# The demo's rows read by three stronger independent judges, beside the demo's reader. The demo's reader trains
# for 500 steps (about 2 minutes) and reads HR at ~53%: a noisy judge. Here the same family trains for 1,500 steps
# on three diets (configs/demo/panel/): reader1500 (HR + the bicubic upscaling of training LR, the demo's recipe),
# reader_blur1500 (HR + HR blurred by another pipeline: it never saw a bicubic image) and reader_hr1500 (HR only,
# the kind issue 12 names). None takes part in any training. The rows: bicubic, sr, the control sr_more (sr trained
# on with the SR loss alone for the joint stages' images) and the two joint stages, whole test set.
# Runs the demo's stages first when missing (launch/demo_base.sh; finished runs are reused), then ~15 minutes on 2
# CPU cores for the judges.
#   JUDGES_OUT=eval/results/judges   tables (results.md/csv/json)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/demo_base.sh"
results=${JUDGES_OUT:-eval/results/judges}

demo_joint_stages
control_sr_more
judges=(--recognizer "convctc:$runs/reader/best_acc_model.pth")
panel_judges judges reader1500 reader_blur1500 reader_hr1500

stamp "evaluating the demo's rows on the whole test set, read by the demo's reader and the three stronger judges"
evaluate --data "$data/test" --out "$results" "${judges[@]}" \
  --ckpt "$runs/sr/best_psnr_model.pth:sr" "$runs/sr_more/last.pth:sr_more (control)" \
         "$runs/joint_image/last.pth:joint_image" "$runs/joint_feature_cnn/last.pth:joint_feature"
stamp "done; tables in $results"
