#!/usr/bin/env bash
# The efficiency table in one command: train the sr stage of every backbone with the same budget, fine-tune ABPN
# with QAT, quantise it (PTQ and QAT), then print cost (params, FLOPs, activations, CPU latency per crop at batch
# 1 and 64, peak memory) beside quality (A-PSNR, A-SSIM, E/M/H/A-ACC) per row (eval/efficiency.py).
# Re-running reuses finished runs and resumes an interrupted one (tsr train --reuse).
#   CONFIGS=configs/demo   the demo's data, budget.yaml on CPU (68 min at load 4-6 beside other jobs); CONFIGS=configs: the full
#                          configs (TextZoom in configs/textzoom.yaml) on a GPU node, with RECOGNIZER=crnn.pth
#   BACKBONES="tsrn imdn imdn_rtc rfdn abpn"
#   STEPS=N, QAT_STEPS=N, REC_STEPS=N   override train.steps of the backbones / the QAT stage / the demo's
#                          recognizer; SYNTH_TRAIN=20000 SYNTH_TEST=300 the demo data's size; REPEATS=10 timed
#                          forwards per latency figure (a quick smoke run: small values of all)
#   TSR_DEMO_DATA, TSR_DEMO_RUNS, NPROC as in launch/demo.sh; OUT=eval/results/efficiency
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
source "$(dirname "${BASH_SOURCE[0]}")/torchrun.sh"
cd "$TSR_ROOT"
configs=${CONFIGS:-configs/demo}
backbones=${BACKBONES:-tsrn imdn imdn_rtc rfdn abpn}
out=${OUT:-eval/results/efficiency}

if [[ $configs == configs/demo ]]; then
  demo_data
  stamp "the recognizer that reads every row: the demo's CRNN, 1200 steps x 64"
  train --config configs/demo/efficiency/recognizer.yaml ${REC_STEPS:+train.steps=$REC_STEPS}
  recognizer=${RECOGNIZER:-$runs/efficiency_recognizer/best_acc_model.pth}
  test_root=$data/test
else
  runs=checkpoints
  recognizer=${RECOGNIZER:?"set RECOGNIZER=crnn.pth (e.g. crnn.pytorch's weights) for the full configs"}
  test_root=$("$TSR_PY" -m tsr config --config "$configs/sr.yaml" --get data.test_root)
fi
steps=(${STEPS:+train.steps=$STEPS})
ckpts=()
for backbone in $backbones; do
  stamp "stage sr with the $backbone backbone"
  train --config "$configs/efficiency/$backbone.yaml" "${steps[@]}"
  ckpts+=("$runs/$backbone/best_psnr_model.pth:$backbone")
done
if [[ " $backbones " == *" abpn "* ]]; then
  stamp "stage qat: ABPN fine-tuned with fake quantisation; PTQ and QAT int8 models"
  train --config "$configs/qat.yaml" "train.init=$runs/abpn/best_psnr_model.pth" \
    ${QAT_STEPS:+train.steps=$QAT_STEPS}
  "$TSR_PY" -m tsr quantize --mode ptq --ckpt "$runs/abpn/best_psnr_model.pth" --out "$runs/abpn_int8_ptq.pth" \
    ${data:+--data "$data/train"}
  "$TSR_PY" -m tsr quantize --mode qat --ckpt "$runs/qat/best_psnr_model.pth" --out "$runs/abpn_int8_qat.pth"
  # the same int8 model on torch's x86 engine (fbgemm kernels here), beside the default onednn
  "$TSR_PY" -m tsr quantize --mode qat --ckpt "$runs/qat/best_psnr_model.pth" --out "$runs/abpn_int8_qat_x86.pth" \
    --engine x86
  ckpts+=("$runs/qat/best_psnr_model.pth:abpn QAT (fake-quant)" "$runs/abpn_int8_ptq.pth:abpn int8 PTQ"
          "$runs/abpn_int8_qat.pth:abpn int8 QAT" "$runs/abpn_int8_qat_x86.pth:abpn int8 QAT, x86 engine")
fi
stamp "the table: cost and quality per row (CPU latency, $test_root)"
"$TSR_PY" eval/efficiency.py --data "$test_root" --recognizer "$recognizer" --out "$out" --repeats "${REPEATS:-10}" \
  --ckpt "${ckpts[@]}"
stamp "done; $out/efficiency.md"
