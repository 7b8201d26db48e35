"""`torchrun --nproc_per_node=N -m tsr.train --config CFG [key=value ...]`: the same as `tsr train`."""
import sys

from tsr.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train", *sys.argv[1:]]))
