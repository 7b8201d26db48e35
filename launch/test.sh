#!/usr/bin/env bash
# The test command: set-up (see setup.sh), then the whole test suite on CPU. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$TSR_ROOT"
exec "$TSR_PY" -m pytest tests "$@"
