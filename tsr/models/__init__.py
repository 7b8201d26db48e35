"""Networks (one per file: tsrn, heads, crnn, adapters), the uniform wrapper (`Part`, `FullModel`) and the
builder (`tsr.models.build.build_model`: config -> FullModel). Public weights map in through tsr.checkpoint.public."""
from tsr.models.wrapper import FullModel, Part

__all__ = ["FullModel", "Part"]
