#!/usr/bin/env bash
# Fuzzes the readers of files a user hands over (IDX, safetensors) with libFuzzer for a bounded
# time each, and fails, keeping the input as a regression test, if any run crashes.
#
#   launch/fuzz.sh [seconds per target, default 60]
#   launch/fuzz.sh --build-only   (builds the targets and runs nothing: launch/test.sh builds them
#                                   beside its XCTest stage; a target newer than its sources is kept)
set -euo pipefail
cd "$(dirname "$0")/.."
build_only=0
[[ "${1:-}" == --build-only ]] && { build_only=1; shift; }
seconds="${1:-60}"
# libFuzzer reads a -max_total_time it cannot parse as no limit at all.
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: the seconds per target must be a positive integer, not '$seconds'" >&2; exit 2; }
export PATH="/opt/swift/usr/bin:$PATH"
build=.build/fuzz
mkdir -p "$build"

compile() {  # target, sources…
  local target=$1
  shift
  local newer
  # find fails on a source that is missing: then it is built (and the build says what is missing).
  if [[ -x "$build/fuzz-$target" ]] && newer=$(find "$@" Sources/_CZlib launch/fuzz.sh -newer "$build/fuzz-$target") &&
    [[ -z "$newer" ]]; then
    echo "fuzz: $target is built (newer than its sources)"
    return
  fi
  echo "fuzz: building $target"
  rm -f "$build/fuzz-$target"  # a failed build must not leave the last one to pass the check below
  # -Onone keeps every check the sanitizers can see; gold's "cannot export local symbol" notes are noise.
  swiftc -sanitize=fuzzer,address -parse-as-library -module-name "Fuzz_$target" -I Sources/_CZlib \
    "$@" -o "$build/fuzz-$target" 2>&1 | grep -v "Cannot export local symbol" || true
  [[ -x "$build/fuzz-$target" ]] || { echo "fuzz: building $target failed" >&2; exit 1; }
}

compile idx Sources/VAEData/GzipReader.swift Sources/VAEData/DataError.swift Sources/VAEData/IDXFile.swift \
  Tests/Fuzz/FuzzIDX.swift
# VAEFiles' format layer (FileError, AtomicFile, RegularFile, SafeTensors) needs nothing but the standard library;
# its ModelFile (the model's tensors, which needs VAECore's layout) is exercised by the unit tests.
compile safetensors Sources/VAEFiles/{FileError,AtomicFile,RegularFile,SafeTensors}.swift Tests/Fuzz/FuzzSafeTensors.swift

((build_only)) && exit 0
failed=0
for target in idx safetensors; do
  corpus="$build/corpus-$target"
  mkdir -p "$corpus"
  cp Tests/Fuzz/seeds/"$target"/* "$corpus"/
  find Tests/Fuzz/crashes/"$target" -type f ! -name '.keep' -exec cp {} "$corpus"/ \;
  echo "fuzz: $target for ${seconds} s"
  # Each target's artifacts in a folder of its own, emptied first: libFuzzer names them crash-<sha1>,
  # so only the folder tells which target (and which run) found one.
  artifacts="$build/artifacts-$target"
  rm -rf "$artifacts" && mkdir -p "$artifacts"
  if ! ASAN_OPTIONS=detect_leaks=0 "$build/fuzz-$target" "$corpus" -max_total_time="$seconds" -max_len=8192 \
      -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/" >"$build/$target.log" 2>&1; then
    failed=1
    for artifact in "$artifacts"/crash-* "$artifacts"/oom-* "$artifacts"/timeout-*; do
      [[ -f "$artifact" ]] || continue
      kept="Tests/Fuzz/crashes/$target/$(basename "$artifact")"
      mv "$artifact" "$kept"
      echo "fuzz: $target failed on an input now kept as $kept (a regression test from now on)" >&2
    done
    tail -40 "$build/$target.log" >&2
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$build/$target.log" | sed "s/^/fuzz: $target /"
done
((failed == 0)) && echo "fuzz: no crash in ${seconds} s per target"
exit "$failed"
