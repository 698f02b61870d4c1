#!/usr/bin/env bash
# The unit tests again, built with AddressSanitizer (release optimizations, its own build folder):
# the kernels, the reducer and the step engine work on raw pointers, where an index past a buffer's
# end corrupts the heap without a crash and can even leave the results right. Under ASan it fails
# at the line. (A 2026-12-03 bug did exactly that on rank 1 and up: docs/kernels.md.) Leak checking
# is off: XCTest keeps every test case alive to the end. About 3 minutes on 2 cores.
#
#   launch/sanitize.sh [swift test options, e.g. --filter GradientReducerTests]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
scratch=.build/asan
mkdir -p "$scratch"
echo "sanitize: building the tests with AddressSanitizer in $scratch"
set +e
swift build -c release --build-tests --sanitize=address --scratch-path "$scratch" 2>&1 |
  grep -vE "^\[[0-9]+/[0-9]+\]|Cannot export local symbol|^Compiling|^Building|^Write swift-version"
status=${PIPESTATUS[0]}
if ((status != 0)); then
  echo "sanitize: the AddressSanitizer build failed (above)" >&2
  exit "$status"
fi
echo "sanitize: running the unit tests under AddressSanitizer"
ASAN_OPTIONS=detect_leaks=0 swift test -c release --skip-build --sanitize=address --scratch-path "$scratch" \
  --skip EndToEndTests "$@" 2>&1 | tee "$scratch/test.log" | grep -E -A12 "ERROR: AddressSanitizer|Fatal error|error: "
status=${PIPESTATUS[0]}
summary=$(grep -E "Executed [0-9]+ tests" "$scratch/test.log" | tail -1 | sed 's/^[[:space:]]*//')
if ((status == 0)); then
  echo "sanitize: $summary"
else
  echo "sanitize: FAILED (exit $status); the whole log is $scratch/test.log. The report above names the line;" \
    "rerun the one test with: launch/sanitize.sh --filter TEST_NAME" >&2
fi
exit "$status"
