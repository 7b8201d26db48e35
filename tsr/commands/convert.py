"""`tsr convert`: a public checkpoint (TextZoom TSRN, crnn.pytorch CRNN, ASTER, MORAN, IMDN) -> a tsr checkpoint."""
from __future__ import annotations

from tsr.public_formats import PUBLIC_FORMATS

HELP = "convert a TextZoom TSRN, crnn.pytorch CRNN, ASTER, MORAN or official IMDN checkpoint into a tsr checkpoint"


def add_arguments(parser):
    parser.add_argument("--from", dest="source_format", required=True, choices=PUBLIC_FORMATS,
                        help="layout of the input file")
    parser.add_argument("input", metavar="IN", help="public checkpoint file")
    parser.add_argument("--out", required=True, help="tsr checkpoint to write")


def run(args):
    from tsr.checkpoint import load_model_state, read_checkpoint, write_checkpoint
    from tsr.models.build import build_model
    from tsr.outputs import check_output_file

    check_output_file(args.out, "--out", inputs={"IN": args.input})
    checkpoint = read_checkpoint(args.input, expected_format=args.source_format)
    # The converted tensors must fill a model built from the inferred config exactly: that is the layout check.
    model = build_model(checkpoint["config"])
    report = load_model_state(model, checkpoint["model"], strict=True, source=args.input)
    write_checkpoint(args.out, checkpoint)
    print(model.summary())
    print(f"{report}\nwritten: {args.out}")
    return 0
