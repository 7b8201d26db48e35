import csv
import json

import pytest

from tsr.metrics.tables import render_all, render_markdown, write_tables

SPLITS = ["easy", "medium", "hard"]


def result(n, acc, psnr, ssim, corrupt=0):
    return {"n": n, "corrupt": corrupt, "acc": acc, "ned": None if acc is None else 0.0, "psnr": psnr, "ssim": ssim}


ROWS = [
    ("bicubic", {"easy": result(3, 100.0, 22.0, 0.8), "medium": result(1, 0.0, 20.0, 0.6),
                 "hard": result(1, 0.0, 18.0, 0.4, corrupt=2)}),
    ("HR", {"easy": result(3, 100.0, None, None), "medium": result(1, 100.0, None, None),
            "hard": result(1, None, None, None, corrupt=2)}),
]


def test_markdown_exact_text():
    assert render_markdown(ROWS, "ACC", SPLITS).splitlines() == [
        "| arch    |  E-ACC |  M-ACC | H-ACC | A-ACC |",
        "|---------|-------:|-------:|------:|------:|",
        "| bicubic | 100.00 |   0.00 |  0.00 | 60.00 |",  # A = (3 * 100 + 0 + 0) / 5
        "| HR      | 100.00 | 100.00 |     - |     - |",
    ]
    assert render_markdown(ROWS, "SSIM", SPLITS).splitlines()[2] == "| bicubic | 0.8000 | 0.6000 | 0.4000 | 0.6800 |"
    assert render_markdown(ROWS, "PSNR", SPLITS).splitlines()[2] == "| bicubic |  22.00 |  20.00 |  18.00 |  20.80 |"


def test_markdown_rejects_unknown_metric_and_missing_split():
    with pytest.raises(ValueError, match="metric must be one of"):
        render_markdown(ROWS, "NED", SPLITS)
    with pytest.raises(ValueError, match=r"row 'x' has no result for split\(s\) \['hard'\]"):
        render_markdown([("x", {"easy": result(1, 1.0, 1.0, 1.0), "medium": result(1, 1.0, 1.0, 1.0)})], "ACC", SPLITS)


def test_render_all_titles_tables_and_counts():
    text = render_all(ROWS, SPLITS)
    blocks = text.rstrip("\n").split("\n\n")
    assert blocks[0::2][:3] == ["word accuracy (%)", "PSNR (dB)", "SSIM"]
    assert [b.splitlines()[0].split()[3] for b in blocks[1:6:2]] == ["E-ACC", "E-PSNR", "E-SSIM"]
    assert blocks[-1] == "samples per split: easy=3, medium=1, hard=1, A=5\ncorrupt records left out: hard=2"
    clean = [(name, {s: {**r, "corrupt": 0} for s, r in per_split.items()}) for name, per_split in ROWS]
    assert "corrupt" not in render_all(clean, SPLITS)
    uneven = [ROWS[0], ("other", {**ROWS[1][1], "easy": result(2, 50.0, None, None)})]
    assert "samples per split (other): easy=2, medium=1, hard=1, A=4" in render_all(uneven, SPLITS)


def test_written_files_round_trip_without_temp_files(tmp_path):
    paths = write_tables(ROWS, SPLITS, tmp_path / "out", stem="run1")
    assert [p.name for p in paths] == ["run1.md", "run1.csv", "run1.json"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["run1.csv", "run1.json", "run1.md"]
    assert paths[0].read_text() == render_all(ROWS, SPLITS)
    data = json.loads(paths[2].read_text())
    assert data["splits"] == SPLITS and [r["name"] for r in data["rows"]] == ["bicubic", "HR"]
    assert data["rows"][0]["results"]["A"] == pytest.approx(
        {"n": 5, "corrupt": 2, "acc": 60.0, "ned": 0.0, "psnr": 20.8, "ssim": 0.68})
    assert data["rows"][1]["results"]["hard"]["acc"] is None
    with paths[1].open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["row", "E-ACC", "M-ACC", "H-ACC", "A-ACC", "E-PSNR", "M-PSNR", "H-PSNR", "A-PSNR",
                             "E-SSIM", "M-SSIM", "H-SSIM", "A-SSIM", "n-easy", "n-medium", "n-hard", "n-A"]
    assert rows[0]["row"] == "bicubic" and float(rows[0]["A-ACC"]) == 60.0 and float(rows[0]["A-PSNR"]) == 20.8
    assert rows[0]["n-easy"] == "3" and rows[0]["n-A"] == "5"
    assert rows[1]["H-ACC"] == "" and rows[1]["E-PSNR"] == ""


def test_tables_and_json_say_which_protocol_made_them(tmp_path):
    def named(per_split, protocol, batch_size):
        return {s: {**r, "protocol": protocol, "batch_size": batch_size} for s, r in per_split.items()}

    rows = [(name, named(per_split, "textzoom", 48)) for name, per_split in ROWS]
    text = render_all(rows, SPLITS)
    blocks = text.rstrip("\n").split("\n\n")
    assert blocks[0::2][:3] == ["word accuracy (%)", "PSNR (dB) (textzoom protocol, batches of 48)",
                                "SSIM (textzoom protocol, batches of 48)"]
    assert blocks[-1].splitlines()[-1].startswith("PSNR/SSIM: eval.protocol=textzoom (TextZoom's code): per batch "
                                                  "of 48 in split order, PSNR of the pooled MSE")
    data = json.loads(write_tables(rows, SPLITS, tmp_path)[2].read_text())
    assert [(p["name"], p["batch_size"]) for p in data["protocol"]] == [("textzoom", 48)]
    assert data["rows"][0]["results"]["A"]["protocol"] == "textzoom"
    standard = render_all([(name, named(per_split, "standard", 48)) for name, per_split in ROWS], SPLITS)
    assert "PSNR (dB) (standard protocol)\n" in standard and "eval.protocol=standard: per image" in standard
    assert "protocol" not in render_all(ROWS, SPLITS) and "protocol" not in json.loads(
        write_tables(ROWS, SPLITS, tmp_path / "plain")[2].read_text())
