import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The suite is the CPU / gloo behaviour CI checks (ranks with bit-identical weights, exact resume, the one-line
# errors of settings that need CUDA): on a GPU node it checks the same, so the GPUs are hidden from it and from every
# process it starts. Seen on a 1-GPU node otherwise: 22 tests failed, the two-rank torchrun tests among them (each rank takes
# cuda:LOCAL_RANK; more ranks than GPUs is refused by design). GPU paths: eval/gpu_figures.sh. Set before torch
# looks for CUDA (importing torch does not).
os.environ["CUDA_VISIBLE_DEVICES"] = ""
# The processes tests start (torchrun ranks, `python -m tsr` from a tmp_path, the launch scripts) import this
# checkout's tsr, as the tests themselves do, also where tsr is not installed (TSR_PYTHON's interpreter, a GPU image)
os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])

import torch  # noqa: E402  (after the environment above)

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
