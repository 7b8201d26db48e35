"""Data-parallel scaling of the trainer itself: the same stage under torchrun on 1 and N processes (GPUs, or gloo CPU
processes) at a fixed per-process batch, so N processes see N times the images per step. Each run is a real
`tsr.train` run (DDP, data loading, the fast path); its figure is summary.json's images_per_s_steady (training
steps after the first 5, validation and saving excluded).

    python eval/bench_scaling.py --config configs/sr.yaml --procs 1 4 --per-proc-batch 256 --steps 60
    python eval/bench_scaling.py --config configs/demo/sr.yaml --procs 1 2 --per-proc-batch 16 --steps 12 train.device=cpu

Target: 4 GPUs >= 3.6x one GPU (90% efficiency). On a CPU machine the processes share its cores, so
the ratio there only shows that the harness works.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tsr.io import atomic_write_text  # noqa: E402


def run_stage(config: str, procs: int, per_proc_batch: int, steps: int, overrides: list[str], out_root: Path) -> dict:
    name = f"scaling_{procs}"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
           "-m", "tsr.train", "--config", config, *overrides,
           f"train.batch_size={procs * per_proc_batch}", f"train.steps={steps}", "train.accum_steps=1",
           "train.val_every=0", "train.val_limit=32", f"train.save_every={steps}", f"train.log_every={steps}",
           f"run.out_root={out_root}", f"run.name={name}"]
    # torchrun gives each of several processes 1 thread and a lone one all cores: the same cores for every count
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // procs))
    print(f"[scaling] {procs} process(es), {threads} thread(s) each: {' '.join(cmd[2:])}", flush=True)
    if subprocess.run(cmd, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": threads}).returncode != 0:
        raise SystemExit(f"bench_scaling: the run on {procs} process(es) failed (its output is above)")
    return json.loads((out_root / name / "summary.json").read_text())


def render(rows: list[dict]) -> str:
    base = rows[0]
    lines = ["| processes | global batch | images/s (steady) | speed-up | efficiency |", "|---:|---:|---:|---:|---:|"]
    for row in rows:
        speedup = row["images_per_s"] / base["images_per_s"]
        efficiency = speedup / (row["procs"] / base["procs"])
        lines.append(f"| {row['procs']} | {row['global_batch']} | {row['images_per_s']:.1f} | {speedup:.2f}x "
                     f"| {efficiency:.0%} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 4], help="process counts, the first is the base")
    parser.add_argument("--per-proc-batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=60, help="training steps per run (the first 5 are not timed)")
    parser.add_argument("--out", default="eval/results/scaling")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    if args.steps <= 5 or min(args.procs) < 1 or args.per_proc_batch < 1:
        parser.error("--steps must be > 5 (the first 5 are warm-up), --procs and --per-proc-batch >= 1")
    rows = []
    with tempfile.TemporaryDirectory(prefix="tsr_scaling_") as runs:
        for procs in args.procs:
            summary = run_stage(args.config, procs, args.per_proc_batch, args.steps, args.overrides, Path(runs))
            rows.append({"procs": procs, "global_batch": procs * args.per_proc_batch, "device": summary["device"],
                         "images_per_s": summary["images_per_s_steady"]})
    table = render(rows)
    print(f"config {args.config}, {args.steps} steps, device {rows[0]['device']}\n{table}")
    out = ROOT / args.out
    atomic_write_text(out / "scaling.md", f"config {args.config}, {args.steps} steps, device {rows[0]['device']}\n\n"
                                          f"{table}\n")
    atomic_write_text(out / "scaling.json", json.dumps({"config": args.config, "steps": args.steps, "rows": rows},
                                                       indent=2) + "\n")
    print(f"written: {out / 'scaling.md'}, {out / 'scaling.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
