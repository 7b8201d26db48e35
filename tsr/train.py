"""`torchrun --nproc_per_node=N -m tsr.train --config CFG [key=value ...]`: the same as `tsr train`."""
import sys

from tsr.cli import exit_process, main

if __name__ == "__main__":
    exit_process(main(["train", *sys.argv[1:]]))
