"""The one renderer of result tables: rows = runs (checkpoints, variants, baselines), columns E-/M-/H-/A- per
metric, where A is the sample-weighted average over splits. Markdown for the terminal and README, plus .csv and
.json files with the full numbers.

Input is the evaluator's plain structure: rows = [(row name, {split: dict(n, corrupt, acc, ned, psnr, ssim, ...)})].
Results that name their PSNR/SSIM protocol (the evaluator's do) get it in the PSNR and SSIM titles, a line saying
how those figures were made, and a "protocol" entry in the .json.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Sequence

from tsr.io import atomic_write_text
from tsr.metrics import protocol as protocols
from tsr.metrics.aggregate import average_splits

Rows = Sequence[tuple[str, dict]]  # [(row name, {split: result dict})]

# table name -> (result key, format): ACC in percent, PSNR in dB, SSIM in [0, 1]
TABLE_METRICS = {"ACC": ("acc", "{:.2f}"), "PSNR": ("psnr", "{:.2f}"), "SSIM": ("ssim", "{:.4f}")}
TITLES = {"ACC": "word accuracy (%)", "PSNR": "PSNR (dB)", "SSIM": "SSIM"}
AVERAGE = "A"


def split_prefix(split: str) -> str:
    """'easy' -> 'E'; the sample-weighted average column is 'A'."""
    return split[:1].upper()


def with_average(name: str, per_split: dict, splits: Sequence[str]) -> dict:
    """The row's results in `splits` order plus 'A' (sample-weighted over those splits)."""
    missing = [s for s in splits if s not in per_split]
    if missing:
        raise ValueError(f"row '{name}' has no result for split(s) {missing}; it has {sorted(per_split)}")
    ordered = {s: per_split[s] for s in splits}
    return {**ordered, AVERAGE: average_splits(ordered)}


def _fmt(value, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def _markdown(header: list[str], body: list[list[str]]) -> str:
    """Padded so the raw text lines up in a terminal; first column left-aligned, numbers right-aligned."""
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells):
        padded = [cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return "| " + " | ".join(padded) + " |"

    sep = "|" + "-" * (widths[0] + 2) + "|" + "|".join("-" * (w + 1) + ":" for w in widths[1:]) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in body)])


def render_markdown(rows: Rows, metric: str, splits: Sequence[str], first_column: str = "arch") -> str:
    """metric 'ACC' | 'PSNR' | 'SSIM' -> '| arch | E-ACC | M-ACC | H-ACC | A-ACC |', a separator and one line per
    row; a value that was not measured reads '-'."""
    if metric not in TABLE_METRICS:
        raise ValueError(f"metric must be one of {list(TABLE_METRICS)}, got {metric!r}")
    key, pattern = TABLE_METRICS[metric]
    columns = [*splits, AVERAGE]
    header = [first_column] + [f"{split_prefix(c)}-{metric}" for c in columns]
    body = []
    for name, per_split in rows:
        full = with_average(name, per_split, splits)
        body.append([name] + [_fmt(full[c][key], pattern) for c in columns])
    return _markdown(header, body)


def _counts_lines(rows: Rows, splits: Sequence[str]) -> list[str]:
    """'samples per split: easy=.., A=..' (one line per row if rows were judged on different counts), and the
    corrupt records left out when there are any."""
    columns = [*splits, AVERAGE]
    counts = []
    for name, per_split in rows:
        full = with_average(name, per_split, splits)
        counts.append((name, ", ".join(f"{c}={full[c]['n']}" for c in columns),
                       ", ".join(f"{c}={full[c]['corrupt']}" for c in splits if full[c]["corrupt"])))
    if len({(n, k) for _, n, k in counts}) == 1:
        _, n, corrupt = counts[0]
        return [f"samples per split: {n}"] + ([f"corrupt records left out: {corrupt}"] if corrupt else [])
    return [f"samples per split ({name}): {n}" + (f"; corrupt records left out: {corrupt}" if corrupt else "")
            for name, n, corrupt in counts]


def protocols_of(rows: Rows) -> list[tuple[str, int]]:
    """The distinct (PSNR/SSIM protocol, evaluation batch size) the rows' results name, in order of appearance;
    [] for results that name none."""
    found = []
    for _, per_split in rows:
        for result in per_split.values():
            if result.get("protocol") is not None and (result["protocol"], result["batch_size"]) not in found:
                found.append((result["protocol"], result["batch_size"]))
    return found


def _protocol_suffix(rows: Rows) -> str:
    """' (textzoom protocol, batches of 64)' for PSNR/SSIM titles; '' for results that name no protocol."""
    used = protocols_of(rows)
    return f" ({'; '.join(protocols.title(*p) for p in used)})" if used else ""


def _title(rows: Rows, metric: str) -> str:
    """A table's one-line title: PSNR and SSIM with their protocol."""
    return TITLES[metric] + (_protocol_suffix(rows) if metric != "ACC" else "")


def _notes_lines(rows: Rows, splits: Sequence[str]) -> list[str]:
    """The lines under the tables: sample (and corrupt) counts, then how PSNR/SSIM were made."""
    return _counts_lines(rows, splits) + [protocols.describe(*p) for p in protocols_of(rows)]


def render_all(rows: Rows, splits: Sequence[str]) -> str:
    """The ACC, PSNR and SSIM tables, each under a one-line title (PSNR and SSIM with their protocol), then the
    sample (and corrupt) counts and how PSNR/SSIM were made."""
    parts = [f"{_title(rows, m)}\n\n{render_markdown(rows, m, splits)}" for m in TABLE_METRICS]
    if rows:
        parts.append("\n".join(_notes_lines(rows, splits)))
    return "\n\n".join(parts) + "\n"


def to_json(rows: Rows, splits: Sequence[str]) -> dict:
    """{'splits': [...], 'protocol': [{'name', 'batch_size', 'description'}] (when the results name one),
    'rows': [{'name', 'results': {split | 'A': result dict}}]} with the full numbers (the evaluator's result
    dicts hold both protocols' psnr_* / ssim_*)."""
    used = [{"name": name, "batch_size": batch_size, "description": protocols.describe(name, batch_size)}
            for name, batch_size in protocols_of(rows)]
    return {"splits": list(splits), **({"protocol": used} if used else {}),
            "rows": [{"name": name, "results": with_average(name, r, splits)} for name, r in rows]}


def to_csv(rows: Rows, splits: Sequence[str]) -> str:
    """One wide table: row, E/M/H/A columns per metric (6 decimals, empty when not measured), n per split and A."""
    columns = [*splits, AVERAGE]
    header = (["row"] + [f"{split_prefix(c)}-{m}" for m in TABLE_METRICS for c in columns]
              + [f"n-{c}" for c in columns])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for name, per_split in rows:
        full = with_average(name, per_split, splits)
        values = [full[c][key] for key, _ in TABLE_METRICS.values() for c in columns]
        writer.writerow([name] + ["" if v is None else f"{v:.6f}" for v in values] + [full[c]["n"] for c in columns])
    return buffer.getvalue()


def write_tables(rows: Rows, splits: Sequence[str], out_dir, stem: str = "results") -> list[Path]:
    """Write stem.md (render_all), stem.csv and stem.json into out_dir, each atomically (readers never see a
    partial file); returns the three paths."""
    out = Path(out_dir)
    return [atomic_write_text(out / f"{stem}.md", render_all(rows, splits)),
            atomic_write_text(out / f"{stem}.csv", to_csv(rows, splits)),
            atomic_write_text(out / f"{stem}.json", json.dumps(to_json(rows, splits), indent=2) + "\n")]
