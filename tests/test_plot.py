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


def test_out_never_replaces_an_input_or_a_file_that_is_not_a_png(tmp_path, capsys):
    """--out was written with no check: `tsr plot RUN --out RUN/log.jsonl` (or RUN/last.pth) replaced the log or a
    checkpoint with a picture, and --out naming a folder failed after drawing, naming an internal temp file."""
    run = tmp_path / "run"
    write_log(run, RECORDS)
    (run / "last.pth").write_bytes(b"PK\x03\x04 a checkpoint")
    kept = {p.name: p.read_bytes() for p in run.iterdir()}
    for out, message in (
            (run / "log.jsonl", f"--out {run / 'log.jsonl'} is the RUN {run / 'log.jsonl'} file: writing it would "
                                f"replace that input; choose another --out"),
            (tmp_path / "run" / ".." / "run" / "log.jsonl", "writing it would replace that input"),
            (run / "last.pth", f"--out {run / 'last.pth'} exists and is not a PNG image; only a PNG image is replaced "
                               f"there. Choose another --out (or move that file away)"),
            (run, f"--out {run} is a folder; expected a file name (e.g. {run / 'curves.png'})")):
        assert main(["plot", str(run), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("tsr plot: error: ") and err.count("\n") == 1 and message in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == kept
    # an earlier plot is what --out names on purpose: it is replaced
    png = tmp_path / "curves.png"
    Image.new("RGB", (4, 4)).save(png)
    assert main(["plot", str(run), "--out", str(png)]) == 0
    with Image.open(png) as image:
        assert image.size == (1200, 800)


def test_a_log_cut_short_is_plotted_and_a_damaged_one_is_one_line(tmp_path, capsys):
    """A run killed mid-write leaves its last line cut short: that line is left out (said on stderr) and the rest
    plotted. Any other bad line is a one-line error naming file:line (these were tracebacks: JSONDecodeError,
    KeyError 'step', AttributeError)."""
    killed = tmp_path / "killed"
    write_log(killed, RECORDS)
    with open(killed / "log.jsonl", "a") as f:
        f.write('{"step": 3, "loss/total": 0.9, "loss/s')
    out = tmp_path / "killed.png"
    assert main(["plot", str(killed), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"tsr plot: note: {killed / 'log.jsonl'}:4: last line cut short (a run killed while " \
                           f"writing it); left out, the rest is plotted\n"
    assert f"written: {out}" in captured.out and out.is_file()
    for name, line, message in (("text", "garbage", "not a JSON line (Expecting value at column 1)"),
                                ("nostep", '{"loss/sr": 1.0}', 'a record without "step"'),
                                ("list", "[1, 2]", "a JSON list, not an object")):
        write_log(tmp_path / name, [RECORDS[0]])
        with open(tmp_path / name / "log.jsonl", "a") as f:
            f.write(line + "\n" + json.dumps(RECORDS[1]) + "\n")
        assert main(["plot", str(tmp_path / name), "--out", str(tmp_path / f"{name}.png")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"tsr plot: error: {tmp_path / name / 'log.jsonl'}:2: {message}") and \
            err.count("\n") == 1
        assert not (tmp_path / f"{name}.png").exists()
