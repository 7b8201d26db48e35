#!/usr/bin/env bash
# The test command: set-up (see setup.sh), then the whole test suite on CPU, one pytest-xdist worker per core
# (-n auto; every test keeps to its own tmp_path and free ports). --dist loadscope: the tests of one module run in
# one worker, so that a module fixture costing tens of seconds (a trained run) is made once, not in each worker
# that gets one of its tests. Extra arguments go to pytest (-n 0: serial); a test file or folder among them runs
# instead of the suite.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$TSR_ROOT"
# the whole suite unless an argument names a test file or folder (tests/test_launch.py, tests/x.py::test_y, tests/engine):
# pytest runs every path it is given, so adding `tests` beside one ran everything. A .py file or a folder holding
# test_*.py files, not any existing path: an option's value may name one too (-k launch)
where=(tests)
for arg in "$@"; do
  path=${arg%%::*}
  if [[ $arg != -* && ( ( -f $path && $path == *.py ) || ( -d $path && -n $(find "$path" -name 'test_*.py' -print -quit) ) ) ]]; then
    where=()
  fi
done
exec "$TSR_PY" -m pytest -n auto --dist loadscope "${where[@]}" "$@"
