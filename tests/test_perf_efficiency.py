"""The efficiency table: cost columns (the int8 row counted as its float network) beside quality columns."""
import pytest
import torch

from tsr.checkpoint import save_checkpoint
from tsr.config import load_config
from tsr.data.synth import synthesize
from tsr.engine.quantize import quantize_checkpoint
from tsr.models.build import build_model
from tsr.perf import efficiency
from trainer_helpers import REPO, tiny_overrides


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("effdata")
    synthesize(root, n_train=8, n_test=2, seed=6, workers=1)
    return root


def test_rows_hold_cost_and_quality_and_int8_counts_as_its_float_network(data_root, tmp_path):
    cfg = load_config(str(REPO / "configs" / "demo" / "efficiency" / "abpn.yaml"),
                      tiny_overrides(data_root, tmp_path, **{"model.sr.channels": 8}))
    torch.manual_seed(0)
    fp32 = str(save_checkpoint(tmp_path / "abpn.pth", build_model(cfg), cfg, step=0))
    quantize_checkpoint(fp32, "ptq", tmp_path / "int8.pth", calib_pairs=8)
    rows = efficiency.efficiency_rows([(fp32, "abpn"), (str(tmp_path / "int8.pth"), "abpn int8")],
                                      str(data_root / "test"), recognizer=None, out_dir=str(tmp_path / "out"), repeats=1)
    float_row, int8_row = rows
    # 4 -> 8 conv, 8 -> 8 conv (blocks 1), head 8 -> 16, 16 -> 16: weights + biases
    params = (4 * 8 * 9 + 8) + (8 * 8 * 9 + 8) + (8 * 16 * 9 + 16) + (16 * 16 * 9 + 16)
    assert float_row["params"] == int8_row["params"] == params
    assert float_row["flops"] == int8_row["flops"] > 0 and int8_row["quantization"] == "int8"
    assert all(row[f"ms_per_crop_b{b}"] > 0 for row in rows for b in (1, 64))
    assert float_row["psnr"] > 0 and float_row["A-ACC"] is None         # no recognizer: ACC reads '-'
    table = efficiency.render(rows)
    assert table.splitlines()[0].startswith("| arch") and "| abpn int8" in table and f"{params:,}" in table
    assert (tmp_path / "out" / "results.md").is_file()
    assert [p.name for p in efficiency.write(rows, str(tmp_path / "out"))] == ["efficiency.md", "efficiency.json"]
