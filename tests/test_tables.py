import csv
import json

from tsr.metrics.tables import render_all, render_markdown, write_tables

SPLITS = ["easy", "medium", "hard"]


def result(n, acc, psnr, ssim, corrupt=0):
    return {"n": n, "corrupt": corrupt, "acc": acc, "ned": None if acc is None else 0.0, "psnr": psnr, "ssim": ssim}


ROWS = [
    ("bicubic", {"easy": result(3, 100.0, 22.0, 0.8), "medium": result(1, 0.0, 20.0, 0.6),
                 "hard": result(1, 0.0, 18.0, 0.4, corrupt=2)}),
    ("HR", {"easy": result(3, 100.0, None, None), "medium": result(1, 100.0, None, None),
            "hard": result(1, None, None, None)}),
]


def test_markdown_header_and_values():
    lines = render_markdown(ROWS, "ACC", SPLITS).splitlines()
    assert [c.strip() for c in lines[0].strip("|").split("|")] == ["arch", "E-ACC", "M-ACC", "H-ACC", "A-ACC"]
    assert set(lines[1]) <= {"|", "-"}
    assert [c.strip() for c in lines[2].strip("|").split("|")] == ["bicubic", "100.00", "0.00", "0.00", "60.00"]
    assert [c.strip() for c in lines[3].strip("|").split("|")] == ["HR", "100.00", "100.00", "-", "-"]
    ssim_line = render_markdown(ROWS, "SSIM", SPLITS).splitlines()[2]
    assert [c.strip() for c in ssim_line.strip("|").split("|")] == ["bicubic", "0.8000", "0.6000", "0.4000", "0.6800"]
    assert len({len(line) for line in lines}) == 1  # padded columns line up


def test_render_all_has_three_tables_counts_and_corrupt():
    text = render_all(ROWS, SPLITS)
    assert text.count("| arch ") == 3
    assert "samples per split: easy=3, medium=1, hard=1, A=5" in text
    assert "corrupt records left out: hard=2" in text


def test_written_files_round_trip(tmp_path):
    paths = write_tables(ROWS, SPLITS, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["results.csv", "results.json", "results.md"]
    assert [p.name for p in paths] == ["results.md", "results.csv", "results.json"]
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["rows"][0]["results"]["A"]["psnr"] == 20.8
    assert data["rows"][0]["results"]["A"]["n"] == 5
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert rows[0]["row"] == "bicubic" and float(rows[0]["A-ACC"]) == 60.0 and rows[0]["n-A"] == "5"
    assert rows[1]["H-ACC"] == ""
