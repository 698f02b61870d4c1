#!/usr/bin/env bash
# Installs what vae-dist needs on Debian, only what is missing, then builds the release binary.
#   launch/setup.sh          what training needs
#   launch/setup.sh --test   also what the test suite needs, and builds the tests
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  "" | --test) ;;
  -h | --help) source launch/args.sh; usage_of "$0"; exit 0 ;;
  *) echo "setup: unknown argument '$1' (setup.sh takes --test or nothing)" >&2; exit 2 ;;
esac

# pkg-config finds Open MPI's headers for the build (Package.swift's ompi-c), git fetches the Swift
# packages; a Swift install from swift.org usually brings both, a bare one may not.
packages=(libopenblas-dev libopenmpi-dev openmpi-bin zlib1g-dev dataset-fashion-mnist pkg-config git)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(python3 python3-pip procps iproute2 util-linux nftables iputils-ping binutils)
fi

launch/install-packages.sh setup "${packages[@]}"

if ! command -v swift >/dev/null && [[ -x /opt/swift/usr/bin/swift ]]; then
  export PATH="/opt/swift/usr/bin:$PATH"
fi
command -v swift >/dev/null || {
  echo "setup: no Swift toolchain on PATH; install Swift 6 from swift.org and run this again." >&2
  exit 1
}

# The tests load a saved model into PyTorch and read the TensorBoard logs with TensorBoard itself
# (from PyPI; about a minute on a new machine). The versions the tests were passed with: torch 2.13.0
# is the CPU build where pip's find-links hold it (this machine kind's /opt/wheels, 190 MB) instead
# of PyPI's CUDA build (3 GB of nvidia wheels); both gave the same test results (2026-12-03).
pinned=(torch==2.13.0 safetensors==0.8.0 numpy==2.4.6 tensorboard==2.21.0)
if [[ "${1:-}" == "--test" ]] && ! python3 -c "import torch, safetensors, numpy, tensorboard" 2>/dev/null; then
  echo "setup: installing PyTorch, safetensors, NumPy and TensorBoard from PyPI for the client tests"
  python3 -m pip install --quiet --no-cache-dir --root-user-action=ignore "${pinned[@]}" \
    || python3 -m pip install --quiet --no-cache-dir --break-system-packages "${pinned[@]}"
fi

# --test builds the tests too, as `swift build -c release --build-tests`: `swift test` then runs
# them with --skip-build. (Its own build compiles every module again with other settings: 1m45s on
# a Zen 1, and the product build after it compiles them all back.)
build=(--product vae-dist) what="vae-dist (release)"
[[ "${1:-}" == "--test" ]] && build=(--build-tests) what="vae-dist and its tests (release)"
echo "setup: building $what"
# The build's own status decides (an older binary would pass a test for the file), not grep's
# (which finds nothing to show in a quiet build).
# The whole output goes to .build/setup-build.log; on failure its errors also go to stderr, which
# the benchmarks (that run this with stdout to /dev/null) still show.
mkdir -p .build
set +e
swift build -c release "${build[@]}" >.build/setup-build.log 2>&1
status=$?
set -e
grep -E "error|warning: |Compiling vae|complete!" .build/setup-build.log || true
if ((status != 0)) || ! test -x .build/release/vae-dist; then
  grep -E "error" .build/setup-build.log >&2 || true
  echo "setup: the build failed (status $status); the errors are above, the whole log in .build/setup-build.log." >&2
  exit 1
fi
