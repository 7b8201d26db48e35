"""`tsr plot`: curves read from log.jsonl, one PNG for several runs."""
import json

from PIL import Image

from tsr.cli import main
from tsr.commands.plot import curves


def write_log(folder, records):
    folder.mkdir(parents=True)
    (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


RECORDS = [{"step": 1, "loss/total": 2.0, "loss/sr": 0.5, "loss/rec": 1.5, "sigma/sr": 1.0, "lr": 1e-3},
           {"step": 2, "loss/total": 1.0, "loss/sr": 0.25, "loss/rec": 0.75, "sigma/sr": 0.9, "lr": 1e-3},
           {"step": 2, "val/A/acc": 0.4, "val/A/psnr": 20.5, "val/easy/acc": 0.5}]


def test_curves_pick_tasks_by_prefix_and_metrics_by_name():
    assert curves(RECORDS, "loss/") == {"loss/sr": ([1, 2], [0.5, 0.25]), "loss/rec": ([1, 2], [1.5, 0.75])}
    assert curves(RECORDS, "val/A/acc") == {"val/A/acc": ([2], [0.4])}
    assert curves(RECORDS, "sigma/") == {"sigma/sr": ([1, 2], [1.0, 0.9])}
    assert curves(RECORDS, "val/A/ssim") == {}


def test_plot_writes_one_png_for_several_runs(tmp_path, capsys):
    write_log(tmp_path / "a", RECORDS)
    write_log(tmp_path / "b", RECORDS[:2])
    out = tmp_path / "figs" / "curves.png"
    assert main(["plot", str(tmp_path / "a"), str(tmp_path / "b" / "log.jsonl"), "--out", str(out)]) == 0
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (1200, 800)
    assert f"written: {out}" in capsys.readouterr().out
    assert main(["plot", str(tmp_path / "nothing")]) == 2
    assert "no log.jsonl there" in capsys.readouterr().err
