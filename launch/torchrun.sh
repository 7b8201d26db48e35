#!/usr/bin/env bash
# Sourced by the launch scripts after setup.sh: the one way they start tsr on this node, and their time stamps.
#   NPROC   processes on this node (default: one per visible GPU, nccl; 2 gloo processes on a CPU-only machine)
#   paths   (array, may stay empty) overrides that every `train` appends, e.g. the demo's data and run folders
#   STEPS_X=K  every `train` runs K times its config's train.steps (the cosine schedules stretch with it): the demo's
#              stages trained longer, e.g. on a GPU where the CPU demo's steps take seconds; K=1 (default) as written
# Defines nproc, `torchrun ARGS` (--standalone: a private rendezvous on this node, no MASTER_ADDR/PORT to choose
# and no clash between jobs), `train` (tsr.train --reuse: a finished run with the same config is reused, an
# interrupted one resumes), `evaluate` (tsr eval), `stamp MESSAGE` (minutes since the script began),
# `in_background` / `wait_background` (a stage beside the next ones); the demo's
# data (demo_data) and the runs that ablation.sh and judges.sh add to the demo's (demo_joint_stages,
# control_sr_more, panel_judges).
# the GPU count comes from setup.sh's check (TSR_GPUS); asked of torch only where this file is sourced without it
[ -n "${NPROC:-}${TSR_GPUS:-}" ] || TSR_GPUS=$("$TSR_PY" -c "import torch; print(torch.cuda.device_count())")
nproc=${NPROC:-$(( TSR_GPUS > 0 ? TSR_GPUS : 2 ))}
# checked here, before any work: torchrun would stop with a traceback (AssertionError / ValueError) not naming NPROC
[[ $nproc =~ ^[1-9][0-9]*$ ]] || { echo "NPROC must be a whole number >= 1, got '$nproc'" >&2; exit 2; }
paths=()
# launch/torchrun.py: torchrun, without its traceback after a rank's own one-line error (and with the rank's status)
tsr_torchrun=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/torchrun.py
torchrun() { "$TSR_PY" "$tsr_torchrun" --standalone --nproc_per_node="$nproc" "$@"; }
# tsr_train ARGS: tsr.train under torchrun with `paths` and STEPS_X applied (launch/train.sh); `train`: the same with
# --reuse, for the pipelines
tsr_train() {
  local steps
  steps=$(scaled_steps "$@") || return
  torchrun -m tsr.train "$@" "${paths[@]}" ${steps:+"$steps"}
}
train() { tsr_train --reuse "$@"; }
# scaled_steps ARGS: train.steps=K x the steps that `tsr config` resolves for train's ARGS (--dry-run set aside),
# where STEPS_X=K is set and not 1; nothing printed and a failure where they resolve to no steps
scaled_steps() {
  [ "${STEPS_X:-1}" != 1 ] || return 0
  check_steps_x || return
  local arg args=() steps
  for arg in "$@"; do
    case $arg in
      --dry-run|--reuse) ;;
      --resume|--resume=*) echo "STEPS_X: a resumed run keeps its checkpoint's steps; unset STEPS_X to resume" >&2; return 2 ;;
      *) args+=("$arg") ;;
    esac
  done
  steps=$("$TSR_PY" -m tsr config --get train.steps "${args[@]}" "${paths[@]}") || steps=
  [[ $steps =~ ^[0-9]+$ ]] || { echo "STEPS_X: no train.steps resolved for: ${args[*]}" >&2; return 2; }
  echo "train.steps=$((steps * STEPS_X))"
}
check_steps_x() {
  [ "${STEPS_X:-1}" = 1 ] || [[ $STEPS_X =~ ^[1-9][0-9]*$ ]] ||
    { echo "STEPS_X must be a whole number >= 1, got '$STEPS_X'" >&2; return 2; }
}
# writable_folder VAR PATH: PATH is a folder, or can be made one, where files can be written; else one line naming
# VAR and exit 2: checked before a pipeline's work, not minutes later by its first write. A probe file is made, as
# tsr/outputs.py does, because root passes every permission test on a read-only filesystem.
writable_folder() {
  local existing=$2 probe=
  while [ ! -e "$existing" ]; do existing=$(dirname "$existing"); done
  [ -d "$existing" ] && probe=$(mktemp -p "$existing" .tsr-write-check.XXXXXX 2>/dev/null) ||
    { echo "$1=$2: cannot write there ($existing is not a writable folder)" >&2; exit 2; }
  rm -f "$probe"
}
# tsr eval under torchrun too: each rank reads whole batches with one thread; same tables as one process, which
# took 4x as long with 2 threads on a busy 2-core machine (TSRN's GRUs and small convs scale poorly over threads)
evaluate() { torchrun -m tsr eval "$@"; }
SECONDS=0
stamp() { printf '[%s] %02d:%02d %s\n' "$(basename "$0" .sh)" $((SECONDS / 60)) $((SECONDS % 60)) "$1"; }

# in_background NAME LOG COMMAND...: COMMAND (e.g. `train ...`) runs beside the script's next steps, its output in
# LOG (two stages' lines interleaved would be unreadable); wait_background NAME waits for it, and fails the script
# with the end of LOG if it failed. For a stage that nothing before its wait needs: on 2 CPU cores a second job
# fills the cores where the first leaves them idle (start-up, validation, checkpoints, its loader's waits), and
# each run's weights are the same as alone (deterministic ranks; demo_base.sh's reader: the same rank checksums).
# A script that ends before the wait (an error, Ctrl-C) stops the job and waits for it to end (its ranks save
# last.pth on TERM, so a re-run resumes it): it would otherwise train on unseen. (A TERM to the script itself ends
# bash at once, as for any script: only the background job is stopped then, not a foreground stage.)
declare -gA background_pids=() background_logs=()
in_background() {
  local name=$1 log=$2
  shift 2
  mkdir -p "$(dirname "$log")"
  "$@" > "$log" 2>&1 &
  background_pids[$name]=$!
  background_logs[$name]=$log
  trap stop_background EXIT
}
wait_background() {
  local name=$1 pid=${background_pids[$1]} status=0
  unset "background_pids[$name]"     # waited for: its pid may be reused, the EXIT trap must not signal it
  wait "$pid" || status=$?
  if [ "$status" != 0 ]; then
    echo "[$(basename "$0" .sh)] $name failed (exit status $status); the end of ${background_logs[$name]}:" >&2
    tail -n 20 "${background_logs[$name]}" >&2
    exit 1
  fi
}
# The job is a subshell running a function (`train`) whose child is torchrun: TERM to that child makes torchrun
# stop its ranks and return, then the subshell ends; TERM to the subshell only where it has no child (yet).
stop_background() {
  local pid
  for pid in "${background_pids[@]}"; do
    pkill -TERM -P "$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# The demo's synthetic TextZoom-format data (reused when made with the same arguments) and its run folders:
#   TSR_DEMO_DATA=data/synth  TSR_DEMO_RUNS=checkpoints/demo (must match run.out_root of configs/demo/*)
#   SYNTH_TRAIN=20000, SYNTH_TEST=300  its size: training pairs, test pairs per split
# Sets data, runs and paths.
demo_data() {
  data=${TSR_DEMO_DATA:-data/synth}
  runs=${TSR_DEMO_RUNS:-checkpoints/demo}
  paths=("data.train_roots=[$data/train]" "data.test_root=$data/test" "run.out_root=$runs")
  check_steps_x || exit
  writable_folder TSR_DEMO_DATA "$data"
  writable_folder TSR_DEMO_RUNS "$runs"
  stamp "synthesising TextZoom-format data in $data"
  "$TSR_PY" -m tsr synth --out "$data" --train "${SYNTH_TRAIN:-20000}" --test "${SYNTH_TEST:-300}" --seed 0 --reuse
}

# For demo.sh and the scripts that read the demo's rows beside other rows (ablation.sh, judges.sh), after
# demo_data and the demo's first stages (demo_base.sh); each run is reused when done (e.g. by launch/demo.sh).
# The demo's joint stages, from the merged checkpoint ($merged, demo_base.sh):
demo_joint_stages() {
  stamp "stage joint_image: SR image -> frozen CRNN; content loss (CRNN features of SR vs HR) + SR loss"
  train --config configs/demo/joint_image.yaml "train.init=$merged"
  stamp "stage joint_feature: SR features -> cnn adapter -> the CRNN from its first pooling on; content loss on SR"
  train --config configs/demo/joint_feature_cnn.yaml "train.init=$merged"
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
