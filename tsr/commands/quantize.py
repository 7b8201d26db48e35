"""`tsr quantize`: a trained checkpoint -> an int8 checkpoint (PTQ calibrated on training pairs, or a QAT stage's
fake-quantised network converted)."""

HELP = "int8 version of a checkpoint: --mode ptq (calibrate a float checkpoint) or qat (convert a QAT-stage one)"


def add_arguments(parser):
    from tsr.commands import options

    parser.add_argument("--ckpt", required=True, help="float checkpoint (ptq) or a checkpoint of configs/qat.yaml (qat)")
    parser.add_argument("--mode", required=True, choices=["ptq", "qat"],
                        help="ptq: calibrate a float checkpoint; qat: convert a quantization-aware stage's checkpoint")
    parser.add_argument("--out", required=True, help="int8 checkpoint to write")
    parser.add_argument("--calib-pairs", type=int, default=512, help="training pairs PTQ calibrates on (default 512)")
    options.add_batch_size(parser, 64, "calibration batch")
    parser.add_argument("--engine", help="int8 kernels, one of tsr.models.quantization.ENGINES: onednn | x86 | "
                                         "fbgemm | qnnpack (default: the checkpoint's model.int8_engine, onednn "
                                         "unless set)")
    parser.add_argument("--data", nargs="+", help="training LMDBs to calibrate on (default: the checkpoint's "
                                                  "data.train_roots)")


def run(args):
    from tsr.engine.quantize import quantize_checkpoint
    from tsr.outputs import check_output_file

    check_output_file(args.out, "--out", inputs={"--ckpt": args.ckpt})

    written = quantize_checkpoint(args.ckpt, args.mode, args.out, calib_pairs=args.calib_pairs,
                                  batch_size=args.batch_size, train_roots=args.data,
                                  engine=args.engine)
    info = written["quantized"]
    extra = f", calibrated on {info['calibration_pairs']} training pairs" if "calibration_pairs" in info else ""
    print(f"int8 ({info['mode']}, engine {info['engine']}{extra}) written: {args.out}")
    return 0
