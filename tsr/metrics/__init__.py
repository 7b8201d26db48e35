"""Word accuracy, edit distance, PSNR, SSIM, their per-split sums and the result tables."""
