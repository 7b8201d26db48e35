"""`tsr export`: a checkpoint's SR network as an ONNX file (dynamic batch) that runs without tsr."""

HELP = "export a checkpoint's SR network (sr + head) to ONNX, dynamic batch, for onnxruntime and other runtimes"


def add_arguments(parser):
    parser.add_argument("--ckpt", required=True, help="float checkpoint with sr + head parts (tsr or TextZoom TSRN)")
    parser.add_argument("--format", default="onnx", choices=["onnx"], help="file format written")
    parser.add_argument("--out", required=True, help="file to write, e.g. sr.onnx")


def run(args):
    from tsr import inference
    from tsr.export import INPUT, OUTPUT, export_onnx
    from tsr.outputs import check_output_file

    check_output_file(args.out, "--out", inputs={"--ckpt": args.ckpt})

    model, cfg = inference.load(args.ckpt)
    path = export_onnx(model, cfg, args.out)
    data = cfg["data"]
    channels = 4 if data["mask"] else 3
    print(f"written: {path} (input '{INPUT}' [batch, {channels}, {data['lr_height']}, {data['lr_width']}] in [0,1] -> "
          f"output '{OUTPUT}' [batch, {channels}, {data['hr_height']}, {data['hr_width']}])")
    return 0
