"""Deterministic weights in the public layouts users bring (built here: the real files cannot be downloaded):
aster.pytorch's demo.pth.tar ({'state_dict': ..., 'epoch', 'best_res'}), MORAN_v2's moran.pth (DataParallel
`module.` keys) and crnn.pytorch's crnn.pth (a plain state dict)."""
import torch

from tsr.models.aster import Aster
from tsr.models.crnn import CRNN
from tsr.models.moran import Moran


def aster_state(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    return Aster().state_dict()


def moran_state(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    return Moran().state_dict()


def write_public_files(folder) -> dict:
    """-> {"aster": path, "moran": path, "crnn": path} of files in the public layouts."""
    paths = {"aster": folder / "demo.pth.tar", "moran": folder / "moran.pth", "crnn": folder / "crnn.pth"}
    torch.save({"state_dict": aster_state(), "epoch": 5, "best_res": 0.9}, paths["aster"])
    torch.save({f"module.{k}": v for k, v in moran_state().items()}, paths["moran"])
    torch.manual_seed(0)
    torch.save(CRNN(37, 256).state_dict(), paths["crnn"])
    return paths
