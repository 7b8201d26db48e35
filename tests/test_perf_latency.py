"""Latency per crop: the median of single calls, the compared models timed in turns."""
import pytest
import torch

from tsr.perf import latency


def test_models_are_timed_in_turns_and_each_figure_is_the_median_per_crop(monkeypatch):
    order = []
    monkeypatch.setattr(latency.inference, "super_resolve", lambda model, lr: order.append((model, lr.shape[0])))
    # seconds per call, in call order: A B A B A B A B (the first turn is the warm-up)
    durations = iter([9.0, 9.0, 0.004, 0.010, 0.100, 0.012, 0.002, 0.011])
    monkeypatch.setattr(latency, "call_seconds", lambda call, device: (call(), next(durations))[1])
    ms = latency.compare_sr_latency_ms({"A": "a", "B": "b"}, (3, 16, 64), batch=2, repeats=3)
    assert order == [("a", 2), ("b", 2)] * 4
    assert ms == pytest.approx({"A": 0.004 * 1e3 / 2, "B": 0.011 * 1e3 / 2})   # medians of 3 timed calls, per crop


def test_a_real_model_gets_a_positive_latency_and_bad_counts_are_refused():
    from tsr.config import load_config
    from tsr.models.build import build_model

    cfg = load_config(None, ["model.parts=[sr,head]", "model.sr.type=abpn", "model.head.type=anchor",
                             "model.sr.channels=4", "model.sr.blocks=1", "model.sr.stn=false",
                             "data.mask=false"])
    model = build_model(cfg).eval()
    ms = latency.compare_sr_latency_ms({"abpn": model}, (3, 16, 64), batch=2, repeats=2)
    assert ms["abpn"] > 0
    with pytest.raises(ValueError, match="repeats and batch must be >= 1"):
        latency.compare_sr_latency_ms({"abpn": model}, (3, 16, 64), batch=2, repeats=0)
