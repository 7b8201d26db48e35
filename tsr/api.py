"""The Python API (public face; the functions live in tsr.inference).

    from tsr import api
    model, cfg = api.load("checkpoints/run/best_acc.pth")      # tsr, TextZoom TSRN or crnn.pytorch files
    sr = api.super_resolve(model, lr)                           # lr [B, C, 16, 64] in [0,1] -> [B, C, 32, 128]
    words = api.recognize(model, sr, cfg)                       # -> ["word", ...]
    sr, words = api.super_resolve_and_read(model, lr, cfg)      # a joint model reads its own output
"""
from tsr.inference import load, reads_features, recognize, super_resolve, super_resolve_and_read

__all__ = ["load", "reads_features", "recognize", "super_resolve", "super_resolve_and_read"]
