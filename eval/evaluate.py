"""Thin entry point over tsr's evaluator; the same as `tsr eval ...` (see `python eval/evaluate.py --help`)."""
import sys

from tsr.cli import exit_process, main

if __name__ == "__main__":
    exit_process(main(["eval", *sys.argv[1:]]))
