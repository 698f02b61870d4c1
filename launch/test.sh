#!/usr/bin/env bash
# The README's test command: set up (idempotent), then run every test, unit and end to end.
# End-to-end tests run the release binary on the real Fashion-MNIST and under mpirun.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  "") ;;
  -h | --help) source launch/args.sh; usage_of "$0"; exit 0 ;;
  *) echo "test: unknown argument '$1' (test.sh takes none; FUZZ_SECONDS sets the fuzzing time)" >&2; exit 2 ;;
esac
# Each stage's time goes to the log's end: CI must stay under 25 minutes on the slowest host kind.
started=$SECONDS stages=()
stage_done() { stages+=("$1 $((SECONDS - started)) s"); started=$SECONDS; }
launch/setup.sh --test
stage_done setup
export PATH="/opt/swift/usr/bin:$PATH"
export VAE_DIST_BINARY="$PWD/.build/release/vae-dist"
export VAE_DIST_REQUIRE_TORCH=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# A failing test must not skip the stages below (set -e would end the script on the pipeline).
set +e
# setup.sh --test built the tests; swift test's own build would compile everything again.
swift test -c release --skip-build 2>&1 | tee .build/test.log | grep -vE "^\[[0-9]+/[0-9]+\]|^Test Case .* started|^Compiling|^Building"
status=${PIPESTATUS[0]}
stage_done XCTest
set -e
# The unit tests under AddressSanitizer: an index past a buffer's end fails there, not later; the
# threaded code's under ThreadSanitizer: a data race fails the run.
launch/sanitize.sh || status=1
stage_done ASan
launch/sanitize.sh --thread || status=1
stage_done TSan
# The readers of user-supplied files, fuzzed for a bounded time (FUZZ_SECONDS per target).
launch/fuzz.sh "${FUZZ_SECONDS:-30}" || status=1
stage_done fuzz
summary=$(grep -E "Executed [0-9]+ tests" .build/test.log | tail -1 || true)
echo "test.sh: ${summary:-no XCTest summary found}"
echo "test.sh: $(IFS=,; echo "${stages[*]}" | sed 's/,/, /g'); $SECONDS s in all"
exit "$status"
