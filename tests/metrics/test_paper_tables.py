"""Tables for several judges: per-judge ACC, the combined table papers print, CSV / JSON / LaTeX."""
import csv
import json

from tsr.metrics.paper_tables import for_judge, judge_names, render_all, render_combined, to_latex, write_tables

SPLITS = ["easy", "medium", "hard"]


def result(n, accs, psnr, ssim):
    judges = {name: {"acc": acc, "ned": 0.0} for name, acc in accs.items()}
    return {"n": n, "corrupt": 0, "acc": next(iter(accs.values())), "ned": 0.0, "psnr": psnr, "ssim": ssim,
            "judges": judges}


ROWS = [
    ("bicubic", {"easy": result(3, {"CRNN": 100.0, "ASTER": 0.0}, 22.0, 0.8),
                 "medium": result(1, {"CRNN": 0.0, "ASTER": 100.0}, 20.0, 0.6),
                 "hard": result(1, {"CRNN": 0.0, "ASTER": 0.0}, 18.0, 0.4)}),
    ("TSRN_x&y", {"easy": result(3, {"CRNN": 100.0, "ASTER": 100.0}, 24.0, 0.9),
                  "medium": result(1, {"CRNN": 100.0, "ASTER": 0.0}, 21.0, 0.7),
                  "hard": result(1, {"CRNN": 0.0, "ASTER": 100.0}, 19.0, 0.5)}),
]


def test_judges_and_projection():
    assert judge_names(ROWS) == ["CRNN", "ASTER"]
    assert for_judge(ROWS, "ASTER")[0][1]["medium"]["acc"] == 100.0


def test_combined_table_exact_text():
    assert render_combined(ROWS, SPLITS).splitlines() == [
        "| method   | CRNN E | CRNN M | CRNN H | CRNN A | ASTER E | ASTER M | ASTER H | ASTER A |",
        "|----------|-------:|-------:|-------:|-------:|--------:|--------:|--------:|--------:|",
        "| bicubic  | 100.00 |   0.00 |   0.00 |  60.00 |    0.00 |  100.00 |    0.00 |   20.00 |",
        "| TSRN_x&y | 100.00 | 100.00 |   0.00 |  80.00 |  100.00 |    0.00 |  100.00 |   80.00 |",
    ]


def test_render_all_has_one_acc_table_per_judge_and_image_metrics_once():
    text = render_all(ROWS, SPLITS)
    assert "word accuracy (%), read by CRNN" in text and "word accuracy (%), read by ASTER" in text
    assert "as papers print it" in text
    assert text.count("PSNR (dB)") == 1 and text.count("| TSRN_x&y |  24.00 |") == 1


def test_latex_is_booktabs_with_escaped_names():
    tex = to_latex(ROWS, SPLITS)
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"& \multicolumn{4}{c}{CRNN} & \multicolumn{4}{c}{ASTER} \\" in tex
    assert r"\cmidrule(lr){2-5} \cmidrule(lr){6-9}" in tex
    assert r"TSRN\_x\&y & 100.00 & 100.00 & 0.00 & 80.00 & 100.00 & 0.00 & 100.00 & 80.00 \\" in tex
    assert r"bicubic & 22.00 & 20.00 & 18.00 & 20.80 & 0.8000 & 0.6000 & 0.4000 & 0.6800 \\" in tex


def test_files(tmp_path):
    paths = write_tables(ROWS, SPLITS, tmp_path)
    assert [p.name for p in paths] == ["results.md", "results.csv", "results.json", "results.tex"]
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))   # A-PSNR = (3 * 24 + 21 + 19) / 5
    assert rows[1]["ASTER A-ACC"] == "80.000000" and rows[1]["A-PSNR"] == "22.400000" and rows[1]["n-A"] == "5"
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["judges"] == ["CRNN", "ASTER"] and data["rows"][0]["by_judge"]["ASTER"]["A"]["acc"] == 20.0
