#!/usr/bin/env bash
# Rebuild the extension with Cython's bounds and wraparound checks on
# (CYMLP_CYTHON_DEBUG=1), run the test suite against it, then restore the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
restore() { echo "== restoring the release build"; python setup.py build_ext --inplace --force -q >/dev/null; }
trap restore EXIT
CYMLP_CYTHON_DEBUG=1 python setup.py build_ext --inplace --force -q >/dev/null
python -c "import cymlp._mlp as m; assert m.BOUNDS_CHECKED, 'debug build not active'; print('bounds checks on')"
python -m pytest -q -p no:cacheprovider -m "not slurm" "$@"
