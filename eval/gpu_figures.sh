#!/usr/bin/env bash
# Every figure of README's Performance section in one command, for a machine with GPUs (or DEVICE=cpu for a
# smoke run of the script itself). Run from the repository root with a Python that has tsr's dependencies:
#   bash eval/gpu_figures.sh                       # all visible GPUs
#   DEVICE=cpu BATCH=4 STEPS=1 TRAIN=96 TEST=4 SCALING_BATCH=4 SCALING_STEPS=7 STAGE_STEPS=2 STAGE_BATCH=4 \
#     DATA=/tmp/gf_data OUT_DIR=/tmp/gf_out bash eval/gpu_figures.sh   # a smoke run on CPU (1 min 48 s on 2 cores)
# 1. data of TextZoom's sizes (17,367 training pairs; test 1619/1411/1343 = 4,373), synthesised once
# 2. tsr bench: the four stages' training step, fast path vs fp32 eager at equal batch (target >= 3x on a GPU);
#    the whole 4,373-image test with ACC+PSNR+SSIM (target < 5 s); data loading; peak memory
# 3. tsr profile of the feature-level model (params, FLOPs, activations, latency on the device)
# 4. eval/bench_scaling.py: the sr stage under torchrun on 1 and all GPUs (target: 4 GPUs >= 3.6x one)
# 5. the sr stage (configs/sr.yaml) under torchrun on one device, STAGE_STEPS (150) steps of 1024 in fp32 (the
#    configs' train.amp) and in bf16 autocast: its loss every 10 steps and speed, sr_amp_{off,bf16}.log
# FONTS=DIR: a folder of .ttf fonts for the synthesis where the system has none (a bare GPU image).
# Results land in eval/results/gpu/ (bench.md|json, profile.md, scaling.md|json, sr_amp_{off,bf16}.log, runs/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${TSR_PY:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
DEVICE=${DEVICE:-cuda}
DATA=${DATA:-data/textzoom_size}
OUT=${OUT_DIR:-eval/results/gpu}
BATCH=${BATCH:-256}
STEPS=${STEPS:-10}
case "$DEVICE" in
  cuda) GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count())") ;;
  cpu) GPUS=2 ;;                                  # two gloo processes: the scaling harness, not a figure
  *) echo "DEVICE must be cuda or cpu, got '$DEVICE'" >&2; exit 2 ;;
esac
mkdir -p "$OUT"

"$PY" -m tsr synth --out "$DATA" --train "${TRAIN:-17367}" --test "${TEST:-1619,1411,1343}" ${FONTS:+--fonts "$FONTS"} --reuse
"$PY" -m tsr bench --device "$DEVICE" --batch-size "$BATCH" --steps "$STEPS" --data "$DATA" --eval-limit 0 --out "$OUT"
"$PY" -m tsr profile --config configs/joint_feature.yaml --device "$DEVICE" | tee "$OUT/profile.md"
if [ "$GPUS" -gt 1 ]; then
  "$PY" eval/bench_scaling.py --config configs/sr.yaml --procs 1 "$GPUS" --per-proc-batch "${SCALING_BATCH:-256}" \
    --steps "${SCALING_STEPS:-60}" --out "$OUT" train.device="$DEVICE" \
    "data.train_roots=[$DATA/train]" data.test_root="$DATA/test"
else
  echo "one GPU: no scaling figure (eval/bench_scaling.py needs 2 or more)"
fi
for amp in off bf16; do
  rm -rf "$OUT/runs/sr_amp_$amp"   # a fresh run each time: tsr train refuses a folder that holds one
  # a run that fails (bf16 is the one expected to: a non-finite loss stops it) is reported, not the end of the script
  "$PY" -m torch.distributed.run --standalone --nproc_per_node=1 -m tsr.train --config configs/sr.yaml \
    train.steps="${STAGE_STEPS:-150}" train.batch_size="${STAGE_BATCH:-1024}" train.val_every=0 train.log_every=10 \
    train.amp=$amp train.device="$DEVICE" "data.train_roots=[$DATA/train]" data.test_root="$DATA/test" \
    run.out_root="$OUT/runs" run.name=sr_amp_$amp > "$OUT/sr_amp_$amp.log" 2>&1 ||
    echo "sr stage, train.amp=$amp: the run failed, see $OUT/sr_amp_$amp.log"
  echo "sr stage, train.amp=$amp:"; grep -E '^step|^done' "$OUT/sr_amp_$amp.log" || true
done
echo "figures in $OUT"
