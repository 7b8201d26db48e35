"""Which rows an evaluation has and who reads each row's text: bicubic | one row per SR model | HR. Validation
during training and `tsr eval` both build their rows here."""
from __future__ import annotations

from typing import Sequence

from torch import nn

from tsr import inference
from tsr.engine.evaluator import Row, bicubic_row, hr_row, model_row
from tsr.images import image_channels


def evaluation_rows(models: Sequence[tuple[str, nn.Module, dict]], own_text: bool) -> list[Row]:
    """bicubic, then a row per (label, model, config) that has an sr part, then HR. With `own_text`, a model that
    has a recognizer reads its own output (feature level: its SR features, through the adapter); the other rows
    are read by the evaluator's recognizer. Test data always carries the mask channel; each model gets the
    channels it takes."""
    rows = [bicubic_row()]
    for label, model, cfg in models:
        if "sr" not in model:
            continue
        channels = image_channels(cfg["data"]["mask"])
        if own_text and "recognizer" in model:
            rows.append(model_row(label, lambda lr, m=model, c=cfg, n=channels:
                                  inference.super_resolve_and_read(m, lr[:, :n], c), reads_own_text=True))
        else:
            rows.append(model_row(label, lambda lr, m=model, n=channels: inference.super_resolve(m, lr[:, :n])))
    rows.append(hr_row())
    return rows
