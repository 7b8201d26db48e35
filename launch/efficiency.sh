#!/usr/bin/env bash
# The efficiency table in one command: train the sr stage of every backbone with the same budget, fine-tune ABPN
# with QAT, quantise it (PTQ and QAT), then print cost (params, FLOPs, activations, CPU latency per crop at batch
# 1 and 64, peak memory) beside quality (A-PSNR, A-SSIM, E/M/H/A-ACC) per row (eval/efficiency.py).
# Re-running reuses finished runs and resumes an interrupted one (tsr train --reuse).
#   CONFIGS=configs/demo   the demo's data and budget on CPU (68 min at load 4-6 beside other jobs); CONFIGS=configs: the full
#                          configs (TextZoom in configs/textzoom.yaml) on a GPU node, with RECOGNIZER=crnn.pth
#   BACKBONES="tsrn imdn imdn_rtc rfdn abpn"
#   STEPS=N, QAT_STEPS=N, REC_STEPS=N   override train.steps of the backbones / the QAT stage / the demo's
#                          recognizer; SYNTH_TRAIN=20000 SYNTH_TEST=300 the demo data's size; REPEATS=10 timed
#                          forwards per latency figure (a quick smoke run: small values of all)
#   TSR_DEMO_DATA, TSR_DEMO_RUNS, NPROC as in launch/demo.sh; OUT=eval/results/efficiency
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$TSR_ROOT"
configs=${CONFIGS:-configs/demo}
backbones=${BACKBONES:-tsrn imdn imdn_rtc rfdn abpn}
nproc=${NPROC:-2}
out=${OUT:-eval/results/efficiency}
train() { "$TSR_PY" -m torch.distributed.run --standalone --nproc_per_node="$nproc" -m tsr.train --reuse "$@"; }
SECONDS=0
stamp() { printf '[efficiency] %02d:%02d %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$1"; }

if [[ $configs == configs/demo ]]; then
  data=${TSR_DEMO_DATA:-data/synth}
  runs=${TSR_DEMO_RUNS:-checkpoints/demo}
  paths=("data.train_roots=[$data/train]" "data.test_root=$data/test" "run.out_root=$runs")
  stamp "synthesising TextZoom-format data in $data (the demo's)"
  "$TSR_PY" -m tsr synth --out "$data" --train "${SYNTH_TRAIN:-20000}" --test "${SYNTH_TEST:-300}" --seed 0 --reuse
  stamp "the recognizer that reads every row: the demo's recognizer stage"
  train --config configs/demo/recognizer.yaml "${paths[@]}" ${REC_STEPS:+train.steps=$REC_STEPS}
  recognizer=${RECOGNIZER:-$runs/recognizer/best_acc_model.pth}
  test_root=$data/test
else
  runs=checkpoints
  paths=()
  recognizer=${RECOGNIZER:?"set RECOGNIZER=crnn.pth (e.g. crnn.pytorch's weights) for the full configs"}
  test_root=$("$TSR_PY" -m tsr config --config "$configs/sr.yaml" | "$TSR_PY" -c \
    "import sys, yaml; print(yaml.safe_load(sys.stdin)['data']['test_root'])")
fi
steps=(${STEPS:+train.steps=$STEPS})
ckpts=()
for backbone in $backbones; do
  stamp "stage sr with the $backbone backbone"
  train --config "$configs/efficiency/$backbone.yaml" "${paths[@]}" "${steps[@]}"
  ckpts+=("$runs/$backbone/best_psnr_model.pth:$backbone")
done
if [[ " $backbones " == *" abpn "* ]]; then
  stamp "stage qat: ABPN fine-tuned with fake quantisation; PTQ and QAT int8 models"
  train --config "$configs/qat.yaml" "${paths[@]}" "train.init=$runs/abpn/best_psnr_model.pth" \
    ${QAT_STEPS:+train.steps=$QAT_STEPS}
  "$TSR_PY" -m tsr quantize --mode ptq --ckpt "$runs/abpn/best_psnr_model.pth" --out "$runs/abpn_int8_ptq.pth" \
    ${paths[0]:+--data "$data/train"}
  "$TSR_PY" -m tsr quantize --mode qat --ckpt "$runs/qat/best_psnr_model.pth" --out "$runs/abpn_int8_qat.pth"
  ckpts+=("$runs/qat/best_psnr_model.pth:abpn QAT (fake-quant)" "$runs/abpn_int8_ptq.pth:abpn int8 PTQ"
          "$runs/abpn_int8_qat.pth:abpn int8 QAT")
fi
stamp "the table: cost and quality per row (CPU latency, $test_root)"
"$TSR_PY" eval/efficiency.py --data "$test_root" --recognizer "$recognizer" --out "$out" --repeats "${REPEATS:-10}" \
  --ckpt "${ckpts[@]}"
stamp "done; $out/efficiency.md"
