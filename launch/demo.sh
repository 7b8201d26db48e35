#!/usr/bin/env bash
# The main job on a fresh machine: set-up (see setup.sh), synthesise a TextZoom-format dataset, evaluate and
# print the result tables.
#   TSR_DEMO_DATA=data/synth   where the synthetic LMDBs go (reused when they match the arguments below)
#   TSR_DEMO_OUT=eval/results/demo
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$TSR_ROOT"
data=${TSR_DEMO_DATA:-data/synth}
out=${TSR_DEMO_OUT:-eval/results/demo}

echo "[demo] 1/2 synthesising TextZoom-format data in $data"
"$TSR_PY" -m tsr synth --out "$data" --train 20000 --test 300 --seed 0 --reuse

echo "[demo] 2/2 evaluating the bicubic and HR baselines on $data/test"
"$TSR_PY" -m tsr eval --data "$data/test" --out "$out"
