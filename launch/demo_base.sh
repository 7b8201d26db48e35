#!/usr/bin/env bash
# Sourced by demo.sh, ablation.sh and judges.sh: set-up, then the demo's first stages, each reused when already done:
#   synthesise TextZoom-format data -> train `sr` -> train `recognizer` (a CRNN on HR) -> fine-tune it on HR and
#   blurred HR (`recognizer_blur`: the CRNN that joint training uses and that reads every row, TextZoom's protocol)
#   -> merge `sr` and `recognizer_blur`; beside these, `reader` trains in the background (the independent judge:
#   another family, another seed, trained on HR and bicubic-upscaled LR; it takes part in no training).
# Defines $data $runs $out, $crnn (the fixed recognizer's checkpoint), $merged (the joint stages' train.init) and
# what launch/torchrun.sh defines (train, evaluate, stamp).
#   TSR_DEMO_DATA=data/synth     where the synthetic LMDBs go
#   TSR_DEMO_RUNS=checkpoints/demo   run folders (must match run.out_root of configs/demo/*)
#   TSR_DEMO_OUT=eval/results/demo   tables and pictures
#   NPROC                        torchrun processes (default: one per GPU, 2 on CPU)
#   STEPS_X=K                    every stage trains K times its steps (launch/torchrun.sh; e.g. on a GPU)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
source "$(dirname "${BASH_SOURCE[0]}")/torchrun.sh"
cd "$TSR_ROOT"
out=${TSR_DEMO_OUT:-eval/results/demo}
writable_folder TSR_DEMO_OUT "$out"
demo_data

# The reader needs only the data: it trains beside the sr and recognizer stages, filling the cores where they leave
# them idle (these first stages took 500 s instead of 526 s one after the other on 2 cores, and 493 s against 558 s
# measured in the other order; the same weights, rank checksums equal); its output goes to $out/reader.log.
stamp "stage reader, in the background: the independent judge (ConvCTC, no LSTM, seed 1, HR + bicubic LR); used in no training; its output in $out/reader.log"
in_background reader "$out/reader.log" train --config configs/demo/reader.yaml

stamp "stage sr: TSRN-style SR network alone ($nproc processes)"
train --config configs/demo/sr.yaml

stamp "stage recognizer: CRNN on HR images"
train --config configs/demo/recognizer.yaml

stamp "stage recognizer_blur: the CRNN fine-tuned on HR and blurred HR (the teacher of joint training, the fixed judge)"
train --config configs/demo/recognizer_blur.yaml "train.init=$runs/recognizer/best_acc_model.pth"
crnn=$runs/recognizer_blur/best_acc_model.pth
merged=$runs/sr+recognizer_blur.pth

stamp "merging the sr and recognizer_blur stages into one full checkpoint"
"$TSR_PY" -m tsr merge --sr "$runs/sr/best_psnr_model.pth" --recognizer "$crnn" --out "$merged"

wait_background reader
stamp "stage reader: $(tail -n 1 "$out/reader.log")"   # its last line: done (steps, images/s) or reused
