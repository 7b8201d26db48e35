import os
import sys
from pathlib import Path

import torch

# Tests are collected with --import-mode=importlib (unique names, no packages); helper modules that live beside
# them, such as lmdb_records.py, are imported by name from here.
sys.path.insert(0, str(Path(__file__).parent))

# launch/test.sh runs one pytest-xdist worker per core; torch's default of one intra-op thread per core in every
# worker (and in every process a test starts) would put cores x workers threads on the cores
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    _threads = max(1, len(os.sched_getaffinity(0)) // _workers)      # the cores this job may use
    os.environ["OMP_NUM_THREADS"] = str(_threads)
    torch.set_num_threads(_threads)
