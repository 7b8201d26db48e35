"""The public checkpoint layouts tsr converts, by name: the choices of `tsr convert --from` and the keys of
tsr.checkpoint.public.CONVERTERS (a test holds the two equal). Torch-free, so that the CLI lists them without
importing torch at load."""

TEXTZOOM_TSRN = "textzoom-tsrn"   # TextZoom's TSRN (state_dict_G)
CRNN_PYTORCH = "crnn-pytorch"     # crnn.pytorch's CRNN
ASTER = "aster"                   # aster.pytorch's demo.pth.tar
MORAN = "moran"                   # MORAN_v2's moran.pth
IMDN = "imdn"                     # Zheng222/IMDN's IMDN_x2.pth

PUBLIC_FORMATS = (TEXTZOOM_TSRN, CRNN_PYTORCH, ASTER, MORAN, IMDN)
