"""tsr checkpoints: files (`io`: save, sanitise, read), public layouts converted on read (`public`), loading
with a report (`report`), and merging per-module checkpoints (`merge`).

Layout of a tsr checkpoint (everything loads with `torch.load(weights_only=True)`):
    {"format": "tsr", "version": 1, "model": {<part>.net.<key>: CPU tensor}, "config": resolved config tree,
     "step": int, "metrics": dict | None, "provenance": dict (tsr.provenance.collect), [optimizer, scheduler, scaler, trainer, rng]: state dicts}
(learned loss weights are model tensors: the `weighting` part, keys weighting.net.*)
Public checkpoints (TextZoom TSRN, crnn.pytorch CRNN, ASTER, MORAN) are converted into this layout when read.
"""
from tsr.checkpoint.io import FORMAT, TRAINING_STATE_KEYS, VERSION, read_checkpoint, save_checkpoint, unwrap, write_checkpoint
from tsr.checkpoint.merge import merge_checkpoints
from tsr.checkpoint.report import LoadReport, group_keys, load_model_state
from tsr.keys import strip_key, strip_prefixes

__all__ = ["FORMAT", "VERSION", "TRAINING_STATE_KEYS", "LoadReport", "group_keys", "load_model_state",
           "merge_checkpoints", "read_checkpoint", "save_checkpoint", "strip_key", "strip_prefixes", "unwrap",
           "write_checkpoint"]
