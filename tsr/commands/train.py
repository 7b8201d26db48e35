"""`tsr train` (the same as `python -m tsr.train`): one stage from a config; under torchrun one process per GPU
(or CPU slot), each reading RANK / LOCAL_RANK / WORLD_SIZE from the environment torchrun sets."""

HELP = "train a stage (sr, recognizer, joint_image, joint_feature) from a config; run under torchrun for DDP"


def add_arguments(parser):
    parser.add_argument("--config", help="stage config, e.g. configs/sr.yaml (optional with --resume: the "
                                         "checkpoint's own config is used)")
    parser.add_argument("--resume", metavar="PATH", help="continue a run strictly from its last.pth (or the run "
                                                         "folder): weights, optimizer, schedule, step, RNG")
    parser.add_argument("--reuse", action="store_true",
                        help="pipelines: a run folder holding a finished run with this config is kept as it is; an "
                             "interrupted one is resumed (another config there is still an error)")
    parser.add_argument("--dry-run", action="store_true",
                        help="check config, data, checkpoints and run folder, run one forward/backward on one batch, "
                             "print the plan; write nothing")
    from tsr.commands import options

    options.add_overrides(parser, "train.steps=2000 run.name=sr_try2")


def run(args):
    import logging

    from tsr import dist
    from tsr.checkpoint import read_checkpoint
    from tsr.config import build_config, load_config, parse_override
    from tsr.engine.run_folder import previous_run, resolve_resume, run_dir_of
    from tsr.engine.trainer import train
    from tsr.errors import TsrError
    from tsr.outputs import check_output_dir

    # rank 0 tells the story; the other ranks speak only when something is wrong
    logging.basicConfig(level=logging.INFO if dist.is_main() else logging.WARNING,
                        format=f"[tsr rank {dist.rank()}] %(message)s" if dist.world_size() > 1 else "[tsr] %(message)s")
    if args.config:
        cfg = load_config(args.config, args.overrides)
    elif args.resume:
        path = resolve_resume(args.resume)
        cfg = build_config(read_checkpoint(path, expected_format="tsr")["config"], args.overrides,
                           source=f"config stored in {path}")
        # the run folder is where the checkpoint is now: the folder may have moved since, or its run.out_root be
        # relative to another working directory. Only then, and not where run.* are given (RunFolder refuses a
        # resume into another folder): the saved spelling stays, so --reuse still recognises the run
        given = {parse_override(item)[0] for item in args.overrides}
        if run_dir_of(cfg).resolve() != path.parent.resolve() and not given & {"run.out_root", "run.name"}:
            cfg["run"]["out_root"], cfg["run"]["name"] = str(path.parent.parent), path.parent.name
    else:
        raise TsrError("give --config CFG (a new run) or --resume RUN (continue one)")
    check_output_dir(run_dir_of(cfg), "run folder (run.out_root/run.name)")
    resume = args.resume
    if args.reuse and not resume:
        found = previous_run(cfg)
        if found == "finished":
            logging.getLogger("tsr.train").info("%s: finished with this config already, %s", run_dir_of(cfg),
                                                "--reuse would keep it (dry run)" if args.dry_run else "reused")
            return 0
        if found == "interrupted":
            resume = str(run_dir_of(cfg))
    if args.dry_run:
        from tsr.engine.dry_run import dry_run

        with dist.session(cfg["train"]["device"], setting="train.device") as device:
            print(dry_run(cfg, device, dist.world_size(), resume))
        return 0
    train(cfg, resume=resume)
    return 0
