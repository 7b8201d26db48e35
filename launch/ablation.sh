#!/usr/bin/env bash
# The adapter x weighting ablation of the joint_feature stage in one command: adapter dense / mlp / sidernn /
# sidernn+mlp x weighting avg / uncertainty, each run evaluated from its best_acc_model.pth (chosen in validation by
# the fixed recognizer reading its SR images, eval.recognizer) and its best_psnr_model.pth, read (a) by each model
# itself through its adapter, (b) by the fixed recognizer (TextZoom's protocol; the demo's recognizer_blur CRNN, or
# RECOGNIZER with the full configs) and, on the demo data, (c) by the independent reader.
# Finished runs are reused (tsr train --reuse); an interrupted one resumes.
#   CONFIGS=configs/demo (default): demo-size models and data on CPU (2 gloo processes); first runs the demo's
#       stages (launch/demo_base.sh, joint_image, joint_feature_cnn; reused when done), the control sr_more and the
#       joint_image methods (variants of configs/demo/joint_image.yaml), evaluated on the whole test set by the
#       judges (methods/); the judges' table of the grid shows the demo's rows above its own; and a panel of four
#       independent readers (configs/demo/panel/: seeds, training images) reads the demo's rows (panel/); an
#       adapter stage (configs/demo/adapter.yaml, sidernn) and configs/demo/joint_feature.yaml from it for 300 steps
#       (configs/demo/joint_feature_adapted.yaml; its own reading: adapted/).
#   CONFIGS=configs: the full configs under torchrun, one process per GPU (NPROC, launch/torchrun.sh); needs the
#       merged checkpoint of configs/joint_feature.yaml's train.init (checkpoints/sr+recognizer.pth, see README)
#       and RECOGNIZER=the fixed recognizer as KIND:PATH or PATH, see tsr/judges.py (default
#       checkpoints/recognizer/best_acc_model.pth).
#   ABLATION_LIMIT=100 (demo; full configs: all)  evaluate the first N pairs of each test split: on 2 CPU cores the
#       two evaluations of 16 checkpoints are most of the grid's time, and the demo's 300 per split would triple them
#   ABLATION_OUT=eval/results/ablation  tables: own/ (each model reads itself), judges/ (one tsr eval with the
#       fixed recognizer and, on the demo data, the reader as judges: one ACC table each + the combined table) and
#       (demo) methods/ and panel/ (results.md/csv/json) + ablation.md
set -euo pipefail
configs=${CONFIGS:-configs/demo}
results=${ABLATION_OUT:-eval/results/ablation}   # not $out: demo_base.sh sets that to the demo's folder
if [ "$configs" = configs/demo ]; then
  source "$(dirname "${BASH_SOURCE[0]}")/demo_base.sh"
  recognizer=crnn:$crnn   # the fixed recognizer, KIND:PATH (demo_base.sh)
  judges=(--recognizer "$recognizer" --recognizer "convctc:$runs/reader/best_acc_model.pth")
  test_root=$data/test
  limit=${ABLATION_LIMIT:-100}
  # the grid's 100-step runs validate at step 50 too, so best_acc and best_psnr can be different checkpoints
  grid_overrides=(train.val_every=50 "train.init=$merged")
  # the demo's rows beside the grid, on the same pairs: sr, the control sr_more and the joint stages (reused
  # from a demo run; launch/torchrun.sh)
  control_sr_more
  demo_joint_stages
  # a sidernn adapter reads its own features only after an adapter stage (a 100-step stage holds too few steps for
  # a new sequence adapter; the demo's joint_feature uses the cnn adapter instead): an adapter stage with the SR
  # network frozen (configs/demo/adapter.yaml), then configs/demo/joint_feature.yaml from it for 300 steps
  # (configs/demo/joint_feature_adapted.yaml); the joint_feature models read their own features on the whole test
  # set (adapted/), and the judges and the panel read its images
  stamp "adapter stage: SR frozen, a new sidernn adapter + the CRNN's BiLSTMs learn to read the SR features"
  train --config configs/demo/adapter.yaml "train.init=$merged"
  stamp "joint_feature (sidernn) for 300 steps, starting from the adapter stage"
  train --config configs/demo/joint_feature_adapted.yaml "train.init=$runs/adapter/last.pth"
  adapted="$runs/joint_feature-adapted/last.pth:joint_feature, 300 steps after the adapter stage"
  stamp "evaluating on the whole test set: the joint_feature models read their own features (through their adapters)"
  evaluate --data "$test_root" --out "$results/adapted" \
    --ckpt "$runs/joint_feature_cnn/last.pth:joint_feature (demo)" "$runs/adapter/last.pth:adapter stage" "$adapted"
  demo_rows=("$runs/sr/best_psnr_model.pth:sr (demo)" "$runs/sr_more/last.pth:sr_more (control)"
             "$runs/joint_image/last.pth:joint_image (demo)" "$runs/joint_feature_cnn/last.pth:joint_feature (demo)"
             "$adapted")
  # the methods tried for joint_image, each a variant of configs/demo/joint_image.yaml (README, "Joint training
  # that pays?"), evaluated with the demo's rows on the whole test set
  method_rows=()
  method() {
    local name=$1 label=$2; shift 2
    stamp "joint_image variant $name: $*"
    train --config configs/demo/joint_image.yaml "train.init=$merged" "run.name=$name" "$@"
    method_rows+=("$runs/$name/last.pth:$label")
  }
  method method-lr1e-4 "joint_image at lr 1e-4, content 0.25" train.lr=1e-4 "train.task_weights={content: 0.25}"
  method method-content0.25 "joint_image, content 0.25" "train.task_weights={content: 0.25}"
  method method-content-final "joint_image, content of the final CNN sequence only" "train.content_layers=[]"
  method method-warmup "joint_image, 20 warm-up steps" train.warmup_steps=20
  method method-ctc "joint_image, CTC of the frozen CRNN" "train.tasks=[sr,rec]" "train.task_weights={}"
  method method-distill "joint_image, distillation" "train.tasks=[sr,distill]" "train.task_weights={}"
  stamp "evaluating the demo's rows and the methods on the whole test set, read by the judges"
  evaluate --data "$test_root" --out "$results/methods" --ckpt "${demo_rows[@]}" "${method_rows[@]}" "${judges[@]}"
  # a panel of independent judges (configs/demo/panel/): the demo's reader, the same recipe with another seed, and
  # two readers that learned HR blurred by another pipeline than the test LR instead of the bicubic row's images:
  # how much a verdict of one 500-step reader depends on which reader it is
  panel=(--recognizer "convctc:$runs/reader/best_acc_model.pth")
  panel_judges panel reader_seed2 reader_blur reader_blur_seed2
  stamp "evaluating the demo's rows on the whole test set, read by the panel of independent judges"
  evaluate --data "$test_root" --out "$results/panel" --ckpt "${demo_rows[@]}" "${panel[@]}"
else
  source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
  source "$(dirname "${BASH_SOURCE[0]}")/torchrun.sh"
  cd "$TSR_ROOT"
  runs=$("$TSR_PY" -m tsr config --config "$configs/joint_feature.yaml" --get run.out_root)
  test_root=$("$TSR_PY" -m tsr config --config "$configs/joint_feature.yaml" --get data.test_root)
  recognizer=${RECOGNIZER:-$runs/recognizer/best_acc_model.pth}
  judges=(--recognizer "$recognizer")
  limit=${ABLATION_LIMIT:-}
  grid_overrides=()
  demo_rows=()
fi
subset=(${limit:+--limit "$limit"})
# best_acc_model.pth is chosen by the fixed recognizer reading each run's SR images (eval.recognizer), the same
# reader for every run; a new adapter's own reading is near 0 for many steps and would choose at random
grid_overrides+=("eval.recognizer=$recognizer")

ckpts=()
for adapter in dense mlp sidernn sidernn+mlp; do
  for weighting in avg uncertainty; do
    name=ablation-${adapter/+/-}-$weighting
    stamp "joint_feature: adapter $adapter, weighting $weighting (run $runs/$name)"
    # uncertainty learns every task's weight, so the config's fixed task_weights are dropped with it
    weights=(); [ "$weighting" = uncertainty ] && weights=("train.task_weights={}")
    train --config "$configs/joint_feature.yaml" "model.adapter.type=$adapter" "train.weighting=$weighting" \
      "${weights[@]}" "${grid_overrides[@]}" "run.name=$name"
    for best in acc psnr; do
      ckpts+=("$runs/$name/best_${best}_model.pth:$adapter, $weighting (best $best)")
    done
  done
done

combined=$results/ablation.md
mkdir -p "$results"
stamp "evaluating every run, read by each model itself (through its adapter)"
evaluate --data "$test_root" --out "$results/own" "${subset[@]}" --ckpt "${ckpts[@]}"
stamp "evaluating every run, read by the judges: ${judges[*]}"
evaluate --data "$test_root" --out "$results/judges" "${subset[@]}" --ckpt "${demo_rows[@]}" "${ckpts[@]}" "${judges[@]}"
{ echo "# joint_feature ablation: adapter x weighting ($configs${limit:+; the first $limit pairs of each test split})"; echo
  echo "## each model reads its own output (through its adapter)"; echo; cat "$results/own/results.md"; echo
  echo "## the judges read every row (${judges[*]})"; echo; cat "$results/judges/results.md"; echo
  if [ -f "$results/methods/results.md" ] && [ "$configs" = configs/demo ]; then
    echo "## the demo's rows and the joint_image methods, whole test set, read by the judges"; echo
    cat "$results/methods/results.md"; echo
    echo "## the demo's rows, whole test set, read by a panel of independent readers (configs/demo/panel/)"; echo
    cat "$results/panel/results.md"; echo
    echo "## joint_feature's own reading after an adapter stage (configs/demo/adapter.yaml), whole test set"; echo
    cat "$results/adapted/results.md"; echo
  fi; } > "$combined.tmp"
mv "$combined.tmp" "$combined"
stamp "done; combined tables in $combined"
