"""TextZoom LMDB datasets, the synthetic TextZoom-format generator and the CTC charset."""
