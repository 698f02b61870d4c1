#!/usr/bin/env bash
# bf16 against fp32 on this CPU: `vae-dist bench --precision bf16` and `--precision fp32` in
# interleaved pairs (bf16, fp32, bf16, fp32, ...) on the same threads, each also timing every pass
# (--layers). Prints the CPU (family, model, AVX-512F, AVX512_BF16), how bf16 runs here (native
# VDPBF16PS, or emulated and why), each pair's images/s, the ratio bf16 / fp32 (median and range over
# the pairs: issue 22 asks for ≥ 1.6 with one thread on a CPU with AVX512_BF16), the instructions'
# own peaks (a loop of FMAs and, where the CPU has it, of VDPBF16PS: their ratio is the most bf16 can
# gain here) with each precision's fraction of its own, and each pass's median milliseconds a step in
# both precisions. Builds vae-dist first (launch/setup.sh), unless VAE_DIST_BINARY names a built one.
#
#   launch/precision-benchmark.sh [--pairs 3] [--threads 1] [--steps 40] [--layer-seconds 0.5] [--out DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/launch/args.sh"
pairs=3 threads=1 steps=40 layer_seconds=0.5 out=/tmp/vae-dist-precision
while (($#)); do
  case "$1" in
    --pairs) pairs="$(value_of precision-benchmark "$1" "${2-}")"; shift 2 ;;
    --threads) threads="$(value_of precision-benchmark "$1" "${2-}")"; shift 2 ;;
    --steps) steps="$(value_of precision-benchmark "$1" "${2-}")"; shift 2 ;;
    --layer-seconds) layer_seconds="$(value_of precision-benchmark "$1" "${2-}")"; shift 2 ;;
    --out) out="$(value_of precision-benchmark "$1" "${2-}")"; shift 2 ;;
    -h|--help) usage_of "$0"; exit 0 ;;
    *) echo "precision-benchmark: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for v in pairs threads steps; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "precision-benchmark: --$v must be a positive integer, not '${!v}'" >&2; exit 2; }
done
"$root/launch/install-packages.sh" precision-benchmark python3  # the report (setup.sh installs it only with --test)
[[ -n "${VAE_DIST_BINARY:-}" ]] || "$root/launch/setup.sh" >/dev/null
binary="${VAE_DIST_BINARY:-$root/.build/release/vae-dist}"
mkdir -p "$out"
rm -f "$out"/bench-*.json
for r in $(seq "$pairs"); do
  for p in bf16 fp32; do
    echo "precision-benchmark: pair $r of $pairs, $p"
    "$binary" bench --threads "$threads" --steps "$steps" --warmup 5 --synthetic --layers --layer-seconds "$layer_seconds" --precision "$p" --gemm-peak --json \
      >"$out/bench-$p-$r.json"
  done
done
python3 - "$out" "$pairs" <<'PY'
import json, statistics, sys
out, pairs = sys.argv[1], int(sys.argv[2])
runs = {p: [json.load(open(f"{out}/bench-{p}-{r}.json")) for r in range(1, pairs + 1)] for p in ("bf16", "fp32")}
flags = open("/proc/cpuinfo").read().split("\nflags", 1)[1].split("\n", 1)[0].split()
first = runs["bf16"][0]
print(f"CPU {first['cpu']}, avx512f {'yes' if 'avx512f' in flags else 'no'}, "
      f"avx512_bf16 {'yes' if 'avx512_bf16' in flags else 'no'}; kernels {first['kernelInstructionSet']}, "
      f"{first['threadsPerRank']} thread(s); bf16 {first['bf16Mode']}")
def spread(xs, fmt="{:,.0f}"):
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))} – {fmt.format(max(xs))})"
b = [x["imagesPerSecond"] for x in runs["bf16"]]
f = [x["imagesPerSecond"] for x in runs["fp32"]]
ratios = [x / y for x, y in zip(b, f)]
print("pair  bf16 images/s  fp32 images/s  bf16 / fp32")
for i, (x, y) in enumerate(zip(b, f)):
    print(f"{i + 1:>4}  {x:>13,.0f}  {y:>13,.0f}  {x / y:>11.2f}")
print(f"bf16 {spread(b)} images/s, fp32 {spread(f)}; bf16 / fp32 median {spread(ratios, '{:.2f}')}")
# The peaks as bench takes them (the best of its samples), here the best over every run.
fma = max(x["fmaPeakGigaflopsPerSecond"] for p in runs for x in runs[p])
dp = [x["bf16PeakGigaflopsPerSecond"] for x in runs["bf16"] if x.get("bf16PeakGigaflopsPerSecond")]
print(f"FMA peak {fma:,.1f} GFLOP/s ({first['fmaInstructionSet']} loop): fp32 step at "
      f"{spread([x['gigaflopsPerSecond'] / fma * 100 for x in runs['fp32']], '{:.0f}')}% of it")
if dp:
    print(f"VDPBF16PS peak {max(dp):,.1f} GFLOP/s, {max(dp) / fma:.2f}× the FMA peak (the most bf16 can gain here): "
          f"bf16 step at {spread([x['gigaflopsPerSecond'] / max(dp) * 100 for x in runs['bf16']], '{:.0f}')}% of it")
else:
    print("VDPBF16PS peak: none, this CPU lacks AVX512_BF16 (bf16 runs on the FMA units: at most fp32's speed)")
print("\npass                                    bf16 ms/step   fp32 ms/step   fp32 / bf16")
names = [(t["layer"], t["pass"]) for t in runs["bf16"][0]["layers"]]
for layer, kind in names:
    def ms(p):
        return statistics.median(t["millisecondsPerStep"] for x in runs[p] for t in x["layers"]
                                 if (t["layer"], t["pass"]) == (layer, kind))
    mb, mf = ms("bf16"), ms("fp32")
    print(f"{layer + ' ' + kind:<40}{mb:>12.2f}{mf:>15.2f}{(mf / mb if mb > 0 else 0):>14.2f}")
PY
