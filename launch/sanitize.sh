#!/usr/bin/env bash
# The unit tests again, built with a sanitizer (release optimizations, its own build folder).
#
#   launch/sanitize.sh [--thread] [--build-only] [swift test options, e.g. --filter GradientReducerTests]
#   (--thread and --build-only first, in either order; --build-only builds and runs nothing:
#   launch/test.sh builds both sanitizers' tests beside its XCTest stage; the end-to-end tests, which
#   run the release binary, are not built: Package.swift leaves them out under
#   VAE_DIST_UNIT_TESTS_ONLY)
#
# AddressSanitizer (the default; .build/asan; on a Zen 1's 2 cores a 3½-minute build, then 1½
# minutes of tests): the kernels, the reducer and the step engine work on raw pointers, where an
# index past a buffer's end corrupts the heap without a crash and can even leave the results right.
# Under ASan it fails at the line. (A 2026-12-03 bug did exactly that on rank 1 and up:
# docs/kernels.md.) Leak checking is off: XCTest keeps every test case alive to the end.
#
# --thread, ThreadSanitizer (.build/tsan; on a Zen 1 a 3-minute build, then 2½ minutes of tests):
# the tests of the threaded code, unless --filter names others: the worker threads claiming
# micro-batches, the reducer's and Adam's pieces, trainers whose ranks are threads of one process,
# the kernels' process-wide switches. It found the ranks setting the bf16 switch together
# (docs/kernels.md). Any race it reports fails the run.
# The tests see VAE_DIST_SANITIZER (address or thread); under either, where a step is 2 (ASan) to 8
# (TSan) times slower, the tests that repeat one check over many layouts run three of them (a rank's
# threads, ranks of threads, four ranks): every kind of sharing, without every combination; the
# every-layout test trains on 66 images (6 steps, the uneven last step of an epoch included), the
# early-stopping tests on epochs of 4 steps, the fast-reduction test 5 steps, not 20; the shared
# estimates take 24-48 images and the finite differences 1 entry a tensor.
set -euo pipefail
[[ "${1:-}" == -h || "${1:-}" == --help ]] && { source "$(dirname "$0")/args.sh"; usage_of "$0"; exit 0; }
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
# What the build and PNGTests need, when this runs on its own (launch/test.sh has set it up).
launch/install-packages.sh sanitize libopenblas-dev libopenmpi-dev zlib1g-dev pkg-config python3
export VAE_DIST_UNIT_TESTS_ONLY=1
sanitizer=address name=AddressSanitizer scratch=.build/asan again=""
tests=()
thread=0 build_only=0
while [[ "${1:-}" == --thread || "${1:-}" == --build-only ]]; do
  [[ "$1" == --thread ]] && thread=1 || build_only=1
  shift
done
if ((!thread)); then
  # Unless the caller names tests: every unit test but the trainer's tests of its folder's rules
  # (refusals, pruning, resumes): Swift's checked code over files, which the end-to-end tests run
  # again; the step, the reducer, the layouts and the checkpoint store's own tests stay.
  if [[ " $* " != *" --filter "* && " $* " != *" --filter="* && " $* " != *" --skip "* ]]; then
    tests+=(--skip 'TrainerTests.(testForeignCheckpointsAreNeverPruned|testUsedOutputIsRefusedOverwrittenOrResumedByItsOwnRunOnly|testARunEndedInsideAnEpochRecordsNoValidation|testAnEarlyStoppedRunResumesToItsEndNotAnotherEpoch|testARefusedResumeDoesNotRewriteRunJSON)')
  fi
else
  sanitizer=thread name=ThreadSanitizer scratch=.build/tsan again="--thread "
  # Unless the caller names tests: the threaded code's (the claim loop, the step, the reducer, the
  # evaluator on two threads, the pictures' passes, the bf16 switch, the agreements' worker threads,
  # trainers on 1-4 in-process ranks).
  if [[ " $* " != *" --filter "* && " $* " != *" --filter="* ]]; then
    tests+=(--filter 'AgreementTests|MicroBatchLoopTests|StepEngineTests|GradientReducerTests|ImportanceWeightedTests|SharedEstimateTests|HiddenActivityTests|BF16KernelTests|TrainerTests.testEveryLayoutEndsOnTheSameBits|TrainerTests.testRankZeroOnlyErrorEndsEveryRankPromptly|PicturesTests.testPassesGiveTheSameValuesOnAnyThreadCount')
  fi
fi
mkdir -p "$scratch"
echo "sanitize: building the tests with $name in $scratch"
set +e
# The unit tests' bundle alone: not the command-line tool, the benchmarks or ArgumentParser, which no
# unit test runs.
swift build -c release --product vae-distPackageTests --sanitize="$sanitizer" --scratch-path "$scratch" 2>&1 |
  grep -vE "^\[[0-9]+/[0-9]+\]|Cannot export local symbol|^Compiling|^Building|^Write swift-version"
status=${PIPESTATUS[0]}
if ((status != 0)); then
  echo "sanitize: the $name build failed (above)" >&2
  exit "$status"
fi
((build_only)) && { echo "sanitize: built the tests with $name"; exit 0; }
echo "sanitize: running the unit tests under $name"
ASAN_OPTIONS=detect_leaks=0 TSAN_OPTIONS=halt_on_error=0 VAE_DIST_SANITIZER=$sanitizer \
  swift test -c release --skip-build --sanitize="$sanitizer" --scratch-path "$scratch" "${tests[@]}" "$@" 2>&1 |
  tee "$scratch/test.log" | grep -E -A40 "ERROR: AddressSanitizer|WARNING: ThreadSanitizer|Fatal error|error: "
status=${PIPESTATUS[0]}
summary=$(grep -E "Executed [0-9]+ tests?" "$scratch/test.log" | tail -1 | sed 's/^[[:space:]]*//')
# swift test passes when --filter matches nothing (a test renamed out of the list above).
if ((status == 0)) && [[ -z "$summary" || "$summary" == "Executed 0 tests"* ]]; then
  echo "sanitize: $name ran no test (${summary:-no summary}): check the --filter" >&2
  status=1
fi
if ((status == 0)); then
  echo "sanitize: $name: $summary"
else
  echo "sanitize: $name FAILED (exit $status); the whole log is $scratch/test.log. The report above names the line;" \
    "rerun the one test with: launch/sanitize.sh ${again}--filter TEST_NAME" >&2
fi
exit "$status"
