"""`tsr plot RUN [RUN ...]`: the training curves of several runs in one PNG (matplotlib), from each run's log.jsonl:
loss per task, validation A-ACC and A-PSNR, and the learned sigmas of uncertainty weighting."""
from __future__ import annotations

import sys
from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HELP = "draw training curves of runs (loss per task, val A-ACC / A-PSNR, sigmas) into one PNG"

# panel title -> which log.jsonl keys it draws (a prefix ends with '/')
PANELS = [("training loss per task", "loss/"), ("validation A-ACC", "val/A/acc"),
          ("validation A-PSNR (dB)", "val/A/psnr"), ("sigma per task (uncertainty weighting)", "sigma/")]


def add_arguments(parser):
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders (holding log.jsonl) or log.jsonl files")
    parser.add_argument("--out", default="curves.png", help="PNG to write")


def curves(records: list[dict], key: str) -> dict[str, tuple[list[int], list[float]]]:
    """{log key: (steps, values)} for `key` (a prefix when it ends with '/'; loss/total is left out of loss/)."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for record in records:
        for name, value in record.items():
            matches = name.startswith(key) and name != "loss/total" if key.endswith("/") else name == key
            if matches and value is not None:
                steps, values = out.setdefault(name, ([], []))
                steps.append(record["step"])
                values.append(value)
    return out


def log_of(run: str) -> Path:
    from tsr.engine.monitor import LOG_NAME
    from tsr.errors import TsrError

    path = Path(run)
    path = path / LOG_NAME if path.is_dir() else path
    if not path.is_file():
        raise TsrError(f"RUN {run}: no {LOG_NAME} there (expected a run folder or its {LOG_NAME})")
    return path


def is_png(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE


def run(args):
    from tsr.engine.monitor import read_log
    from tsr.io import atomic_write
    from tsr.outputs import check_output_file

    paths = [log_of(r) for r in args.runs]
    # before reading anything: never over a log this reads, nor over a file that is not an earlier plot (a
    # checkpoint named by mistake); an existing PNG is what --out names on purpose, and is replaced
    out = check_output_file(args.out, "--out", inputs={f"RUN {path}": path for path in paths}, example="curves.png",
                            replaces=("a PNG image", is_png))

    def torn(path: Path):
        return lambda line: print(f"tsr plot: note: {path}:{line}: last line cut short (a run killed while writing "
                                  f"it); left out, the rest is plotted", file=sys.stderr)

    logs = [(path.parent.name, read_log(path, on_torn=torn(path))) for path in paths]

    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(12, 8))
    for axis, (title, key) in zip(axes.flat, PANELS):
        drawn = 0
        for name, records in logs:
            for log_key, (steps, values) in curves(records, key).items():
                label = name if not key.endswith("/") else f"{name}: {log_key[len(key):]}"
                axis.plot(steps, values, marker="o" if len(steps) < 20 else None, markersize=3, label=label)
                drawn += 1
        axis.set_title(title)
        axis.set_xlabel("step")
        if key == "loss/" and drawn:
            axis.set_yscale("log")
        if drawn:
            axis.legend(fontsize=7)
        else:
            axis.text(0.5, 0.5, "not logged", ha="center", va="center", transform=axis.transAxes, color="grey")
    figure.tight_layout()
    path = atomic_write(out, lambda f: figure.savefig(f, format="png", dpi=100))
    plt.close(figure)
    print(f"written: {path}")
    return 0
