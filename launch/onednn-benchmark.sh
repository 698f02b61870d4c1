#!/usr/bin/env bash
# The direct kernels against oneDNN, pass by pass: oneDNN 2.6 (Debian libdnnl-dev, its JIT
# convolution and deconvolution primitives, the kernels TensorFlow runs) and `vae-dist bench
# --threads 1 --layers --gemm-peak`, one thread each on the first core this process may use, in
# interleaved rounds (oneDNN, vae-dist, oneDNN, ...). Installs libdnnl-dev if missing. Prints one
# table: each pass's nominal GFLOP/s (median and range over the rounds; padded taps counted, as
# everywhere in vae-dist), its fraction of the FMA peak (the maximum over the rounds' samples) and
# which is faster.
#
#   launch/onednn-benchmark.sh [--rounds 3] [--out DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/launch/args.sh"
rounds=3 out=/tmp/vae-dist-onednn
while (($#)); do
  case "$1" in
    --rounds) rounds="$(value_of onednn-benchmark "$1" "${2-}")"; shift 2 ;;
    --out) out="$(value_of onednn-benchmark "$1" "${2-}")"; shift 2 ;;
    -h|--help) usage_of "$0"; exit 0 ;;
    *) echo "onednn-benchmark: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "onednn-benchmark: --rounds must be a positive integer" >&2; exit 2; }
"$root/launch/setup.sh" >/dev/null
"$root/launch/install-packages.sh" onednn-benchmark libdnnl-dev g++ python3
mkdir -p "$out"
g++ -O2 -std=c++17 -fopenmp "$root/launch/peers/onednn_passes.cpp" -ldnnl -o "$out/onednn_passes"
binary="$root/.build/release/vae-dist"
# The lowest processor this process may use (as launch/kernel-ab.sh): processor 0 may not be one.
core=$(awk '/^Cpus_allowed_list:/ {split($2, first, /[-,]/); print first[1]}' /proc/self/status)
for r in $(seq "$rounds"); do
  echo "onednn-benchmark: round $r of $rounds"
  OMP_NUM_THREADS=1 taskset -c "$core" "$out/onednn_passes" 7 20 >"$out/onednn-$r.txt"
  taskset -c "$core" "$binary" bench --threads 1 --layers --gemm-peak --json >"$out/vae-dist-$r.json"
done
python3 "$root/launch/peers/onednn_report.py" "$out" "$rounds" "$core"
