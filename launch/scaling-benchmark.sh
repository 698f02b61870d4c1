#!/usr/bin/env bash
# Measures training throughput over ranks × threads, the allreduce itself, and projects throughput to
# 8–256 nodes; writes CSV, Markdown and three plots into a results folder.
#
#   launch/scaling-benchmark.sh [--out DIR] [--rounds R] [--steps N] [--warmup N] [--synthetic]
#                               [--hostfile FILE [--rsh-agent PROGRAM] [--network CIDR]]
#
# On one machine: strong scaling at global batch 128 over 1×1, 1×2, 2×1, 2×2, 4×1 ranks × threads;
# weak scaling at 64 images per rank over 1, 2 and 4 ranks of one thread. With --hostfile: one rank
# per host (1, 2, … every host), one thread each, over the network (launch/mpirun-hosts.sh), both
# strong (batch 128) and weak (64 per rank).
#
# A shared host is noisy (the same command runs 20% slower from one minute to the next), so:
# - every layout is measured once in each of R rounds (default 7), the rounds one after the other
#   (1×1, 1×2, …, then again), and each row gives the median and the min–max over the rounds; the
#   speed-up divides medians;
# - the FMA and sgemm peaks are the maximum of 5 samples spread over each bench run, and then the
#   maximum over every run with the same number of busy cores;
# - efficiency is counted against the cores the layout can use, min(workers, cores): a layout with
#   more workers than cores is marked oversubscribed, not scored against an ideal it cannot reach.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/launch/args.sh"
[[ "${1:-}" == -h || "${1:-}" == --help ]] && { usage_of "$0"; exit 0; }
out="$root/scaling-results"
rounds=7 steps=20 warmup=5 data=() hostfile="" agent="" network=""
while (($#)); do
  case "$1" in
    --out) out="$(value_of scaling-benchmark "$1" "${2-}")"; shift 2 ;;
    --rounds) rounds="$(value_of scaling-benchmark "$1" "${2-}")"; shift 2 ;;
    --steps) steps="$(value_of scaling-benchmark "$1" "${2-}")"; shift 2 ;;
    --warmup) warmup="$(value_of scaling-benchmark "$1" "${2-}")"; shift 2 ;;
    --synthetic) data=(--synthetic); shift ;;
    --hostfile) hostfile="$(value_of scaling-benchmark "$1" "${2-}")"; shift 2 ;;
    --rsh-agent) agent="$(value_of scaling-benchmark "$1" "${2-}")"; shift 2 ;;
    --network) network="$(value_of scaling-benchmark "$1" "${2-}")"; shift 2 ;;
    *) echo "scaling-benchmark: unknown argument $1 (see the header of this script)" >&2; exit 2 ;;
  esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "scaling-benchmark: --rounds must be a positive whole number" >&2; exit 2; }
# Before the set-up and build, not after them.
[[ "$steps" =~ ^[1-9][0-9]*$ && "$steps" -ge 2 ]] || { echo "scaling-benchmark: --steps must be a whole number of at least 2 (got '$steps')" >&2; exit 2; }
[[ "$warmup" =~ ^[0-9]+$ ]] || { echo "scaling-benchmark: --warmup must be a whole number (got '$warmup')" >&2; exit 2; }
[[ -n "$hostfile" || (-z "$agent" && -z "$network") ]] ||
  { echo "scaling-benchmark: --rsh-agent and --network reach the hosts of --hostfile, and none is given" >&2; exit 2; }
# Set up and build, unless given a binary (the tests do, from inside their own build).
[[ -n "${VAE_DIST_BINARY:-}" ]] || "$root/launch/setup.sh" >/dev/null
"$root/launch/install-packages.sh" scaling-benchmark python3  # the tables and the plot
binary="${VAE_DIST_BINARY:-$root/.build/release/vae-dist}"
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
cores=$(nproc)

if [[ -n "$hostfile" ]]; then
  [[ -r "$hostfile" ]] || { echo "scaling-benchmark: cannot read the hostfile $hostfile" >&2; exit 2; }
  # grep -c exits 1 when it counts 0 lines: that case gets its own message.
  hosts=$(grep -cvE '^[[:space:]]*(#|$)' "$hostfile" || true)
  ((hosts > 0)) || { echo "scaling-benchmark: the hostfile $hostfile names no hosts" >&2; exit 2; }
  strong_layouts=() weak_layouts=()
  for ((n = 1; n <= hosts; n++)); do strong_layouts+=("$n 1"); weak_layouts+=("$n 1"); done
  cores=$hosts  # one thread per host: every worker has a core of its own
  where="$hosts hosts of $hostfile, one rank of one thread per host"
else
  strong_layouts=("1 1" "1 2" "2 1" "2 2" "4 1")
  weak_layouts=("1 1" "2 1" "4 1")
  where="this machine, $cores cores"
fi

run() {  # ranks threads batch → one JSON object from vae-dist bench
  local ranks=$1 threads=$2 batch=$3
  local args=(bench --json --gemm-peak --threads "$threads" --batch-size "$batch" --micro-batch 16 --steps "$steps" --warmup "$warmup" "${data[@]}")
  if [[ -n "$hostfile" ]]; then
    local subset="$out/hosts-$ranks"
    grep -vE '^[[:space:]]*(#|$)' "$hostfile" | head -n "$ranks" >"$subset"
    local extra=()
    [[ -n "$agent" ]] && extra+=(--rsh-agent "$agent")
    [[ -n "$network" ]] && extra+=(--network "$network")
    # -n: one rank on each of the subset's hosts, whatever slots= a line gives (it counted them all).
    "$root/launch/mpirun-hosts.sh" --hostfile "$subset" -n "$ranks" --binary "$binary" "${extra[@]}" "${args[@]}" | tail -1
  elif ((ranks == 1)); then
    "$binary" "${args[@]}"
  else
    local extra=()
    ((ranks > cores)) && extra+=(--oversubscribe)
    mpirun -n "$ranks" --bind-to none "${extra[@]}" -x OPENBLAS_NUM_THREADS=1 "$binary" "${args[@]}"
  fi
}

cpu=$("$binary" bench --json --steps 2 --warmup 0 --synthetic --batch-size 16 --threads 1 | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["cpu"] + ", " + r["fmaInstructionSet"])')
echo "scaling-benchmark: $cpu; $where; $rounds rounds of $steps timed steps per layout" >&2
echo "round,kind,ranks,threads,batch,images_per_sec,interval95,gflops,fma_peak_gflops,gemm_peak_gflops,data_ms,forward_ms,backward_ms,reduction_ms,waiting_ms,optimizer_ms,peak_mib_rank0" >"$out/runs.csv"
measure() {  # round kind ranks threads batch
  echo "scaling-benchmark: round $1/$rounds: $2 $3 rank(s) × $4 thread(s), batch $5" >&2
  run "$3" "$4" "$5" | python3 -c '
import json, sys
round_, kind, ranks, threads, batch = sys.argv[1:6]
r = json.load(sys.stdin); s = r["secondsPerStep"]
print(",".join(str(v) for v in [round_, kind, ranks, threads, batch, round(r["imagesPerSecond"], 1), round(r["imagesPerSecondInterval95"], 1),
    round(r["gigaflopsPerSecond"], 2), round(r["fmaPeakGigaflopsPerSecond"], 1), round(r["gemmPeakGigaflopsPerSecond"], 1)]
    + [round(1000 * s[k], 3) for k in ["data", "forward", "backward", "reduction", "waiting", "optimizer"]]
    + [round(r["peakResidentMiBPerRank"][0], 1)]))' "$1" "$2" "$3" "$4" "$5" >>"$out/runs.csv"
}
for ((round = 1; round <= rounds; round++)); do
  for layout in "${strong_layouts[@]}"; do measure "$round" strong $layout 128; done
  for layout in "${weak_layouts[@]}"; do set -- $layout; measure "$round" weak "$1" "$2" $((64 * $1)); done
done

if [[ -z "$hostfile" ]]; then
  echo "scaling-benchmark: allreduce, 2 ranks" >&2
  extra=()
  ((cores < 2)) && extra+=(--oversubscribe)  # as in run(): 2 ranks on 1 core are refused without it
  mpirun -n 2 --bind-to none "${extra[@]}" "$binary" bench --allreduce --json --steps 50 >"$out/allreduce-2.json"
fi

# Tables, projection and plots: matplotlib from PyPI in its own environment (once).
source "$root/launch/peers/envs.sh"
ensure_venv "$envs/plot-venv" matplotlib matplotlib
"$envs/plot-venv/bin/python" "$root/launch/scaling_report.py" "$out" "$cores" "$cpu" "$where"
cat "$out/results.md"
echo "scaling-benchmark: wrote $out/{runs.csv,scaling.csv,projection.csv,results.md,strong-throughput.png,weak-efficiency.png,projection.png}"
