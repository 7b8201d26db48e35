"""`tsr merge`: per-module checkpoints -> one full-model checkpoint (e.g. an SR stage + a recognizer stage)."""
from __future__ import annotations

HELP = "merge per-module checkpoints (tsr or public) into one full-model tsr checkpoint"


def add_arguments(parser):
    parser.add_argument("--sr", help="checkpoint giving the sr part (and its head, unless --head is given)")
    parser.add_argument("--head", help="checkpoint giving the head part (default: the --sr checkpoint's)")
    parser.add_argument("--recognizer", help="checkpoint giving the recognizer part")
    parser.add_argument("--adapter", help="checkpoint giving the adapter part (feature-level models)")
    parser.add_argument("--out", required=True, help="merged checkpoint to write")


def run(args):
    from tsr.checkpoint import merge_checkpoints, write_checkpoint
    from tsr.errors import TsrError
    from tsr.outputs import check_output_file

    sources = {"sr": args.sr, "head": args.head, "recognizer": args.recognizer, "adapter": args.adapter}
    if all(value is None for value in sources.values()):
        raise TsrError("give at least one of --sr, --head, --recognizer, --adapter")
    check_output_file(args.out, "--out", inputs={f"--{part}": path for part, path in sources.items()})
    merged = merge_checkpoints(**sources)
    write_checkpoint(args.out, merged)
    for part, source in merged["merged_from"].items():
        count = sum(1 for key in merged["model"] if key.startswith(f"{part}."))
        print(f"{part:<11} {count:>4} tensors  from {source}")
    print(f"written: {args.out} (parts: {', '.join(merged['config']['model']['parts'])})")
    return 0
