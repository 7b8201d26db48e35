#!/usr/bin/env bash
# The test command: set-up (see setup.sh), then the whole test suite on CPU, one pytest-xdist worker per core
# (-n auto; every test keeps to its own tmp_path and free ports). --dist loadscope: the tests of one module run in
# one worker, so that a module fixture costing tens of seconds (a trained run) is made once, not in each worker
# that gets one of its tests. Extra arguments go to pytest (-n 0: serial).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$TSR_ROOT"
exec "$TSR_PY" -m pytest -n auto --dist loadscope tests "$@"
