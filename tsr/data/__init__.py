"""TextZoom LMDB datasets and the synthetic TextZoom-format generator (the charset / CTC codec is tsr.charset)."""
