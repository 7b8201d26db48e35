"""Task losses (sr: MSE + gradient profile; rec: CTC) and how they are combined (avg | uncertainty)."""
from tsr.losses.image import GradientProfileLoss, SRLoss
from tsr.losses.text import CTCTaskLoss
from tsr.losses.weighting import AverageWeighting, UncertaintyWeighting, build_weighting

__all__ = ["GradientProfileLoss", "SRLoss", "CTCTaskLoss", "AverageWeighting", "UncertaintyWeighting", "build_weighting"]
