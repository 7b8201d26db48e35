"""Tables for several judges (recognizers) at once, as the scene-text SR papers print them: one ACC table per
judge, one combined table (rows = methods; E/M/H/A columns under each recognizer), PSNR and SSIM once; the same
as markdown, CSV, JSON and LaTeX (booktabs) in results.tex.

Input is the evaluator's structure with judges: each result dict holds "judges": {name: {"acc", "ned"}}. Rows
without judges (one recognizer, or none) render exactly as tsr.metrics.tables renders them. PSNR/SSIM titles and
captions name their protocol as tsr.metrics.tables does.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Sequence

from tsr.io import atomic_write_text
from tsr.metrics import tables
from tsr.metrics.tables import AVERAGE, TABLE_METRICS, TITLES, Rows, split_prefix, with_average

SPLIT_TITLES = {"easy": "Easy", "medium": "Medium", "hard": "Hard", AVERAGE: "Average"}


def judge_names(rows: Rows) -> list[str]:
    """The judges' names in evaluation order ([] for results of one unnamed recognizer)."""
    for _, per_split in rows:
        for result in per_split.values():
            return list(result.get("judges", {}))
    return []


def for_judge(rows: Rows, judge: str) -> list[tuple[str, dict]]:
    """The rows with acc/ned of `judge` in place of the first judge's."""
    return [(name, {split: {**r, **r["judges"][judge]} for split, r in per_split.items()}) for name, per_split in rows]


def _accuracies(rows: Rows, splits: Sequence[str], judges: Sequence[str]) -> list[tuple[str, list]]:
    """[(row name, [acc of judge 1 on E, M, H, A, judge 2 on E, ...])]."""
    columns = [*splits, AVERAGE]
    by_judge = {j: {name: with_average(name, r, splits) for name, r in for_judge(rows, j)} for j in judges}
    return [(name, [by_judge[j][name][c]["acc"] for j in judges for c in columns]) for name, _ in rows]


def render_combined(rows: Rows, splits: Sequence[str], first_column: str = "method") -> str:
    """'| method | CRNN E | CRNN M | CRNN H | CRNN A | ASTER E | ... |': word accuracy (%) under each judge."""
    judges = judge_names(rows)
    header = [first_column] + [f"{j} {split_prefix(c)}" for j in judges for c in [*splits, AVERAGE]]
    body = [[name] + [tables._fmt(v, "{:.2f}") for v in values] for name, values in _accuracies(rows, splits, judges)]
    return tables._markdown(header, body)


def render_all(rows: Rows, splits: Sequence[str]) -> str:
    """One ACC table per judge, the combined table (with several judges), PSNR and SSIM, the sample counts and
    how PSNR/SSIM were made (tables.render_all without judges)."""
    judges = judge_names(rows)
    if not judges:
        return tables.render_all(rows, splits)
    parts = [f"{TITLES['ACC']}, read by {j}\n\n{tables.render_markdown(for_judge(rows, j), 'ACC', splits)}"
             for j in judges]
    if len(judges) > 1:
        parts.append(f"{TITLES['ACC']} as papers print it\n\n{render_combined(rows, splits)}")
    parts += [f"{tables._title(rows, m)}\n\n{tables.render_markdown(rows, m, splits)}" for m in ("PSNR", "SSIM")]
    parts.append("\n".join(tables._notes_lines(rows, splits)))
    return "\n\n".join(parts) + "\n"


def to_csv(rows: Rows, splits: Sequence[str]) -> str:
    """Without judges tables.to_csv; with them: row, '<judge> E-ACC' .. per judge, E-/M-/H-/A-PSNR and SSIM, n."""
    judges = judge_names(rows)
    if not judges:
        return tables.to_csv(rows, splits)
    columns = [*splits, AVERAGE]
    header = (["row"] + [f"{j} {split_prefix(c)}-ACC" for j in judges for c in columns]
              + [f"{split_prefix(c)}-{m}" for m in ("PSNR", "SSIM") for c in columns] + [f"n-{c}" for c in columns])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for (name, accs), (_, per_split) in zip(_accuracies(rows, splits, judges), rows):
        full = with_average(name, per_split, splits)
        images = [full[c][TABLE_METRICS[m][0]] for m in ("PSNR", "SSIM") for c in columns]
        writer.writerow([name] + ["" if v is None else f"{v:.6f}" for v in accs + images]
                        + [full[c]["n"] for c in columns])
    return buffer.getvalue()


def to_json(rows: Rows, splits: Sequence[str]) -> dict:
    """tables.to_json, plus with judges {"judges": [...], and per row "by_judge": {judge: {split | A: {acc, ned}}}}."""
    out = tables.to_json(rows, splits)
    judges = judge_names(rows)
    if judges:
        out["judges"] = judges
        averaged = {j: dict((name, with_average(name, r, splits)) for name, r in for_judge(rows, j)) for j in judges}
        for row in out["rows"]:
            row["by_judge"] = {j: {c: {"acc": v["acc"], "ned": v["ned"]} for c, v in averaged[j][row["name"]].items()}
                               for j in judges}
    return out


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex_table(caption: str, groups: list[tuple[str, int]], sub_columns: list[str],
                 body: list[tuple[str, list[str]]]) -> str:
    """A booktabs table: a header row of column groups (with cmidrules), a header row of sub-columns, one line
    per method."""
    spec = "l" + "".join(" " + "c" * width for _, width in groups)
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{caption}}}", rf"\begin{{tabular}}{{{spec}}}",
             r"\toprule"]
    lines.append(" & ".join([""] + [rf"\multicolumn{{{w}}}{{c}}{{{latex_escape(g)}}}" for g, w in groups]) + r" \\")
    start, rules = 2, []
    for _, width in groups:
        rules.append(rf"\cmidrule(lr){{{start}-{start + width - 1}}}")
        start += width
    lines.append(" ".join(rules))
    lines.append(" & ".join(["Method"] + sub_columns) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join([latex_escape(name)] + cells) + r" \\" for name, cells in body]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def to_latex(rows: Rows, splits: Sequence[str]) -> str:
    """results.tex: word accuracy (%) under each judge (one table, as papers print it), then PSNR / SSIM.
    Needs \\usepackage{booktabs}."""
    columns = [*splits, AVERAGE]
    sub = [SPLIT_TITLES.get(c, c) for c in columns]
    judges = judge_names(rows)
    if judges:
        accs = _accuracies(rows, splits, judges)
    else:   # one unnamed recognizer (or none): its ACC columns
        judges = ["ACC"]
        accs = [(name, [with_average(name, r, splits)[c]["acc"] for c in columns]) for name, r in rows]
    acc_table = _latex_table("Word accuracy (\\%) of each recognizer.", [(j, len(columns)) for j in judges],
                             sub * len(judges), [(n, [tables._fmt(v, "{:.2f}") for v in vs]) for n, vs in accs])
    image_body = []
    for name, per_split in rows:
        full = with_average(name, per_split, splits)
        image_body.append((name, [tables._fmt(full[c][TABLE_METRICS[m][0]], TABLE_METRICS[m][1])
                                  for m in ("PSNR", "SSIM") for c in columns]))
    image_table = _latex_table(f"PSNR (dB) and SSIM{tables._protocol_suffix(rows)}.", [("PSNR", len(columns)), ("SSIM", len(columns))],
                               sub * 2, image_body)
    return f"% written by tsr eval; needs \\usepackage{{booktabs}}\n{acc_table}\n\n{image_table}\n"


def write_tables(rows: Rows, splits: Sequence[str], out_dir, stem: str = "results") -> list[Path]:
    """stem.md, stem.csv, stem.json and stem.tex in out_dir, each written atomically."""
    out = Path(out_dir)
    return [atomic_write_text(out / f"{stem}.md", render_all(rows, splits)),
            atomic_write_text(out / f"{stem}.csv", to_csv(rows, splits)),
            atomic_write_text(out / f"{stem}.json", json.dumps(to_json(rows, splits), indent=2) + "\n"),
            atomic_write_text(out / f"{stem}.tex", to_latex(rows, splits))]
