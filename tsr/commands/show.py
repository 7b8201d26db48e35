"""`tsr show CKPT`: what a checkpoint holds and where it came from: step, metrics, parts with parameter counts,
provenance, and (with --config) its resolved config."""
from __future__ import annotations

HELP = "describe a checkpoint: step, metrics, parts with parameter counts, provenance (command, versions, commit)"


def add_arguments(parser):
    parser.add_argument("ckpt", metavar="CKPT", help="a checkpoint file (tsr, TextZoom TSRN or crnn.pytorch)")
    parser.add_argument("--config", action="store_true", help="also print the checkpoint's resolved config (YAML)")


def part_sizes(model_state: dict) -> dict[str, int]:
    """{'sr.net.a': t, 'head.net.b': u, ...} -> {'sr': numel, 'head': numel} (first key segment; in key order)."""
    sizes: dict[str, int] = {}
    for key, tensor in model_state.items():
        part = key.split(".", 1)[0]
        sizes[part] = sizes.get(part, 0) + tensor.numel()
    return sizes


def describe(checkpoint: dict, path: str, with_config: bool) -> str:
    import json

    import yaml

    from tsr import provenance

    lines = [f"checkpoint: {path}"]
    if checkpoint.get("converted_from"):
        lines.append(f"converted from: {checkpoint['converted_from']}")
    lines.append(f"step: {checkpoint.get('step', '-')}")
    model_cfg = checkpoint["config"].get("model", {})
    lines.append("parts (values stored: parameters and buffers such as BN statistics):")
    sizes = part_sizes(checkpoint["model"])
    for part, count in sizes.items():
        settings = model_cfg.get(part, {}) if isinstance(model_cfg.get(part), dict) else {}
        kind = ", ".join(f"{k} {settings[k]}" for k in ("type", "trainable") if k in settings)
        lines.append(f"  {part:<12} {count:>12,}" + (f"  ({kind})" if kind else ""))
    lines.append(f"  {'total':<12} {sum(sizes.values()):>12,}")
    lines.append("metrics: " + (json.dumps(checkpoint["metrics"], sort_keys=True) if checkpoint.get("metrics") else "-"))
    training = [k for k in ("optimizer", "scheduler", "scaler", "trainer", "rng") if k in checkpoint]
    lines.append("training state: " + (", ".join(training) if training else "none (weights only)"))
    lines.append("provenance:")
    lines.append(provenance.render(checkpoint.get("provenance")))
    if with_config:
        lines.append("config:")
        lines.append(yaml.safe_dump(checkpoint["config"], sort_keys=False).rstrip())
    return "\n".join(lines)


def run(args):
    from tsr.checkpoint import read_checkpoint

    print(describe(read_checkpoint(args.ckpt), args.ckpt, args.config))
    return 0
