"""tsr bench --judges: the three judges time one evaluator pass."""
from tsr.cli import main


def test_bench_judges_only(tmp_path, capsys):
    from tsr.data.synth import synthesize

    synthesize(tmp_path / "data", n_train=0, n_test=1, seed=2, workers=1)
    out = tmp_path / "bench"
    assert main(["bench", "--judges-only", "--data", str(tmp_path / "data"), "--eval-limit", "1", "--device", "cpu",
                 "--out", str(out)]) == 0
    table = (out / "bench.md").read_text()
    for name in ("CRNN", "ASTER", "MORAN", "all three, one evaluator pass"):
        assert f"| {name} | 3 |" in table
    assert "train" not in capsys.readouterr().out
    # an empty split is timed as what it is, as tsr bench's evaluation figure does: 2 images, not a refusal
    from tsr.data.lmdb_writer import write_textzoom_lmdb

    write_textzoom_lmdb(tmp_path / "data" / "test" / "easy", [], overwrite=True)
    assert main(["bench", "--judges-only", "--data", str(tmp_path / "data"), "--eval-limit", "0", "--device", "cpu",
                 "--out", str(tmp_path / "bench2")]) == 0
    assert "| CRNN | 2 |" in (tmp_path / "bench2" / "bench.md").read_text()
