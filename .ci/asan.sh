#!/usr/bin/env bash
# Build the extension with AddressSanitizer and run the kernel-level tests under it:
# any invalid read or write in cymlp's compiled code aborts the run with a report.
# CPython, NumPy and OpenBLAS are not instrumented; libasan is preloaded so that the
# instrumented extension can load into the ordinary interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
restore() { echo "== restoring the release build"; python setup.py build_ext --inplace --force -q >/dev/null; }
trap restore EXIT
CYMLP_SANITIZE=address python setup.py build_ext --inplace --force -q >/dev/null
libasan=$(gcc -print-file-name=libasan.so)
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:allocator_may_return_null=1"
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(tests/test_kernels.py tests/test_gradients.py tests/test_text.py tests/test_bad_input.py tests/test_properties.py tests/test_text_path.py tests/test_vocab.py
                                    tests/test_sparse.py tests/test_multilabel.py tests/test_weights.py
                                    tests/test_embedding_kernels.py tests/test_threads.py)
existing=()
for t in "${tests[@]}"; do [ -e "$t" ] && existing+=("$t"); done
LD_PRELOAD="$libasan" python -m pytest -q -p no:cacheprovider -x "${existing[@]}"
