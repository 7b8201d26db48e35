"""The one renderer of result tables: rows = runs (checkpoints, variants, baselines), columns E-/M-/H-/A- per
metric, where A is the sample-weighted average over splits. Markdown for the terminal and README, plus .csv and
.json files with the full numbers."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Sequence

from tsr.io import atomic_write_text
from tsr.metrics.aggregate import average_splits

Rows = Sequence[tuple[str, dict]]  # [(row name, {split: result dict})]

# table title, result key, format
TABLE_METRICS = {"ACC": ("acc", "{:.2f}"), "PSNR": ("psnr", "{:.2f}"), "SSIM": ("ssim", "{:.4f}")}
TITLES = {"ACC": "word accuracy (%)", "PSNR": "PSNR (dB)", "SSIM": "SSIM"}


def split_prefix(split: str) -> str:
    """'easy' -> 'E'; the sample-weighted average is 'A'."""
    return split[:1].upper()


def with_average(splits_result: dict, splits: Sequence[str]) -> dict:
    """The per-split results in `splits` order plus 'A' (sample-weighted)."""
    ordered = {s: splits_result[s] for s in splits}
    return {**ordered, "A": average_splits(ordered)}


def _fmt(value, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def _markdown(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in body)])


def render_markdown(rows: Rows, metric: str, splits: Sequence[str], first_column: str = "arch") -> str:
    """e.g. metric 'ACC' -> '| arch | E-ACC | M-ACC | H-ACC | A-ACC |' and one line per row."""
    key, pattern = TABLE_METRICS[metric]
    columns = [*splits, "A"]
    header = [first_column] + [f"{split_prefix(c)}-{metric}" for c in columns]
    body = []
    for name, per_split in rows:
        full = with_average(per_split, splits)
        body.append([name] + [_fmt(full[c][key], pattern) for c in columns])
    return _markdown(header, body)


def render_all(rows: Rows, splits: Sequence[str]) -> str:
    """The ACC, PSNR and SSIM tables, each under a title, then the sample counts per split."""
    parts = [f"{TITLES[m]}\n\n{render_markdown(rows, m, splits)}" for m in TABLE_METRICS]
    if rows:
        first = with_average(rows[0][1], splits)
        counts = ", ".join(f"{c}={first[c]['n']}" for c in [*splits, "A"])
        parts.append(f"samples per split: {counts}")
        corrupt = {c: first[c]["corrupt"] for c in splits if first[c]["corrupt"]}
        if corrupt:
            parts.append("corrupt records left out: " + ", ".join(f"{c}={k}" for c, k in corrupt.items()))
    return "\n\n".join(parts) + "\n"


def to_json(rows: Rows, splits: Sequence[str]) -> dict:
    return {"splits": list(splits), "rows": [{"name": name, "results": with_average(r, splits)} for name, r in rows]}


def to_csv(rows: Rows, splits: Sequence[str]) -> str:
    columns = [*splits, "A"]
    header = ["row"] + [f"{split_prefix(c)}-{m}" for m in TABLE_METRICS for c in columns] + [f"n-{c}" for c in columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for name, per_split in rows:
        full = with_average(per_split, splits)
        metrics = [full[c][TABLE_METRICS[m][0]] for m in TABLE_METRICS for c in columns]
        writer.writerow([name] + ["" if v is None else f"{v:.6f}" for v in metrics] + [full[c]["n"] for c in columns])
    return buffer.getvalue()


def write_tables(rows: Rows, splits: Sequence[str], out_dir, stem: str = "results") -> list[Path]:
    """Write stem.md, stem.csv and stem.json into out_dir, each atomically; returns the three paths."""
    out = Path(out_dir)
    return [atomic_write_text(out / f"{stem}.md", render_all(rows, splits)),
            atomic_write_text(out / f"{stem}.csv", to_csv(rows, splits)),
            atomic_write_text(out / f"{stem}.json", json.dumps(to_json(rows, splits), indent=2) + "\n")]
