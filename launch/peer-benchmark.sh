#!/usr/bin/env bash
# vae-dist against the usual Python stack on the same cores, in one invocation: Keras/TensorFlow
# (tf.data input; oneDNN at TensorFlow's default, then forced on) and PyTorch (default threads), then
# `vae-dist train` at every layout of ranks × threads. Same model, batch 128, the 60,000 real
# training images; steady-state images/s = the mean of the epochs after the first. Installs its own
# environments (TensorFlow CPU, PyTorch; once, ~2 GB and ~5 GB) and prints one table with the CPU's
# family/model and vector ISA, each run's ratio to the best peer and its fraction of the FMA peak.
#
#   launch/peer-benchmark.sh [--epochs N] [--rounds R] [--precision fp32|bf16] [--data DIR] [--out DIR] [--docs] [--skip-peers]
#
#   --epochs N     epochs per run, the first being warm-up (default 3)
#   --rounds R     rounds of (vae-dist at every layout, Keras, PyTorch), alternated so that a drift of
#                  the shared host's speed hits every run alike; the table gives each run's median
#                  and range over the rounds (default 2)
#   --precision P  bf16: also vae-dist --precision bf16 at every layout, PyTorch under
#                  torch.autocast("cpu", dtype=torch.bfloat16) and Keras with the "mixed_bfloat16"
#                  policy, in the same table (each compared with the best peer of its precision)
#   --data DIR     the Fashion-MNIST files every run trains on (default: Debian's, the 60,000 images);
#                  a subset gives a quick look, not the figures
#   --out DIR      where peers.csv, peers.md and peers.png go (default /tmp/vae-dist-peers)
#   --docs         also put the table and chart into docs/performance.md, under this CPU's heading
#   --skip-peers   vae-dist only (for a quick look; the ratios then need an earlier peer run)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/launch/args.sh"
epochs=3 rounds=2 out=/tmp/vae-dist-peers docs=0 peers=1 precision=fp32 data=/usr/share/datasets/fashion-mnist
while (($#)); do
  case "$1" in
    --epochs) epochs="$(value_of peer-benchmark "$1" "${2-}")"; shift 2 ;;
    --rounds) rounds="$(value_of peer-benchmark "$1" "${2-}")"; shift 2 ;;
    --out) out="$(value_of peer-benchmark "$1" "${2-}")"; shift 2 ;;
    --docs) docs=1; shift ;;
    --skip-peers) peers=0; shift ;;
    --precision) precision="$(value_of peer-benchmark "$1" "${2-}")"; shift 2 ;;
    --data) data="$(value_of peer-benchmark "$1" "${2-}")"; shift 2 ;;
    -h|--help) usage_of "$0"; exit 0 ;;
    *) echo "peer-benchmark: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$epochs" =~ ^[0-9]+$ && "$epochs" -ge 2 ]] || { echo "peer-benchmark: --epochs must be 2 or more (the first is warm-up)" >&2; exit 2; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "peer-benchmark: --rounds must be a positive integer" >&2; exit 2; }
[[ "$precision" == fp32 || "$precision" == bf16 ]] || { echo "peer-benchmark: --precision must be fp32 or bf16 (got $precision)" >&2; exit 2; }
precisions=fp32; [[ "$precision" == bf16 ]] && precisions="fp32 bf16"
# Before the environments (7 GB of TensorFlow and PyTorch) are installed, not after.
[[ -r "$data/train-images-idx3-ubyte" || -r "$data/train-images-idx3-ubyte.gz" ]] ||
  { echo "peer-benchmark: --data $data holds no Fashion-MNIST train-images-idx3-ubyte(.gz)" >&2; exit 2; }
"$root/launch/install-packages.sh" peer-benchmark python3  # the runs' records (setup.sh installs it only with --test)
"$root/launch/setup.sh" >/dev/null
mkdir -p "$out"
source "$root/launch/peers/envs.sh"
if ((peers)); then
  ensure_keras
  ensure_torch
fi
ensure_venv "$envs/torch-venv" "numpy, matplotlib" numpy matplotlib
python="$envs/torch-venv/bin/python"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
binary="$root/.build/release/vae-dist"
cores=$(nproc)
results="$out/runs.jsonl"
: >"$results"
# record LINE: one JSON line into the results. An empty one is a command that failed inside "$(…)",
# which set -e does not see there: stop at once, not in report.py after every round.
record() {
  [[ -n "$1" ]] || { echo "peer-benchmark: a measurement gave nothing (its error output is above); stopping" >&2; exit 1; }
  echo "$1" >>"$results"
}
# run_peer LOG COMMAND...: the peer's last line (its JSON); on failure, its error output and exit 1.
run_peer() {
  local log="$1"; shift
  if ! "$@" >"$log.out" 2>"$log.err"; then
    echo "peer-benchmark: $* failed; the end of its error output ($log.err):" >&2
    tail -15 "$log.err" >&2
    exit 1
  fi
  tail -1 "$log.out"
}

echo "peer-benchmark: the host's peaks (calibrated FMA loop, sgemm) on $cores threads" >&2
record "$("$binary" bench --json --threads "$cores" --steps 20 --gemm-peak | python3 -c '
import json, sys; r = json.load(sys.stdin)
print(json.dumps({"kind": "host", "cpu": r["cpu"], "isa": r["fmaInstructionSet"], "fma": r["fmaPeakGigaflopsPerSecond"],
                  "gemm": r["gemmPeakGigaflopsPerSecond"], "flopsPerImage": r["flopsPerImage"], "blas": r["blasKernel"]}))')"

# vae-dist train at every layout ranks × threads = cores: the whole epoch (data, step, reduction,
# optimizer), as metrics.jsonl gives it; evaluation and the final estimate are outside it.
run_vae_dist() {  # run_vae_dist ROUND
  local ranks threads run p
  for p in $precisions; do
    for ((ranks = 1; ranks <= cores; ranks++)); do
      ((cores % ranks == 0)) || continue
      threads=$((cores / ranks))
      run="$out/vae-dist-$p-${ranks}x${threads}-$1"
      rm -rf "$run"
      echo "peer-benchmark: vae-dist train, $p, $ranks rank(s) × $threads thread(s), $epochs epochs (round $1 of $rounds)" >&2
      local train=(train --data "$data" --epochs "$epochs" --threads "$threads" --precision "$p" --iw-samples 0 --progress none --out "$run")
      if ((ranks == 1)); then
        "$binary" "${train[@]}" >/dev/null
      else
        mpirun -n "$ranks" --bind-to none -x OPENBLAS_NUM_THREADS=1 "$binary" "${train[@]}" >/dev/null
      fi
      record "$(python3 - "$run/metrics.jsonl" "$ranks" "$threads" "$1" "$p" <<'PY'
import json, sys
epochs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
rates = [e["images_per_sec"] for e in epochs[1:]]
ranks, threads, precision = int(sys.argv[2]), int(sys.argv[3]), sys.argv[5]
name = (f"vae-dist train{' bf16' if precision == 'bf16' else ''}, " + ("one process" if ranks == 1 else f"mpirun -n {ranks}")
        + f" × {threads} thread{'s' if threads > 1 else ''}")
print(json.dumps({"kind": "vae-dist", "name": name, "ranks": ranks, "threads": threads, "pass": int(sys.argv[4]),
                  "precision": precision, "imagesPerSecond": sum(rates) / len(rates),
                  "epochSeconds": [e["seconds"] for e in epochs]}))
PY
)"
    done
  done
}

# peer_row LINE NAME ROUND: the peer's JSON line as a row of the table.
peer_row() {
  record "$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["kind"]="peer"; r["name"]=sys.argv[2]; r["pass"]=int(sys.argv[3]); print(json.dumps(r))' "$@")"
}

# run_peers ROUND: Keras (oneDNN at TensorFlow's default, then forced on) and PyTorch; with --precision
# bf16 also Keras with mixed_bfloat16 (oneDNN forced on: its bf16 kernels are oneDNN's) and PyTorch
# under autocast.
run_peers() {
  local onednn line
  for onednn in default 1; do
    echo "peer-benchmark: Keras, tf.data, oneDNN $onednn, $epochs epochs (round $1 of $rounds)" >&2
    line=$(if [[ $onednn == 1 ]]; then export TF_ENABLE_ONEDNN_OPTS=1; fi
           run_peer "$out/keras-onednn-$onednn-$1" "$envs/keras-venv/bin/python" "$root/launch/peers/keras_vae.py" --epochs "$epochs" --data "$data")
    peer_row "$line" "Keras/TF, tf.data, oneDNN $([[ $onednn == 1 ]] && echo "forced on" || echo "default")" "$1"
  done
  echo "peer-benchmark: PyTorch, default threads, $epochs epochs (round $1 of $rounds)" >&2
  line=$(run_peer "$out/pytorch-$1" "$envs/torch-venv/bin/python" "$root/launch/peers/torch_vae.py" --epochs "$epochs" --data "$data")
  peer_row "$line" "PyTorch, default threads" "$1"
  [[ "$precision" == bf16 ]] || return 0
  echo "peer-benchmark: Keras, mixed_bfloat16, oneDNN forced on, $epochs epochs (round $1 of $rounds)" >&2
  line=$(export TF_ENABLE_ONEDNN_OPTS=1
         run_peer "$out/keras-bf16-$1" "$envs/keras-venv/bin/python" "$root/launch/peers/keras_vae.py" --epochs "$epochs" --data "$data" --precision bf16)
  peer_row "$line" "Keras/TF bf16 (mixed_bfloat16), tf.data, oneDNN forced on" "$1"
  echo "peer-benchmark: PyTorch, autocast bf16, $epochs epochs (round $1 of $rounds)" >&2
  line=$(run_peer "$out/pytorch-bf16-$1" "$envs/torch-venv/bin/python" "$root/launch/peers/torch_vae.py" --epochs "$epochs" --data "$data" --precision bf16)
  peer_row "$line" "PyTorch bf16 (autocast), default threads" "$1"
}

# vae-dist, Keras, PyTorch, vae-dist, Keras, PyTorch, …: a drift of the machine's speed during the
# benchmark (a shared VM's neighbours) then hits every run alike instead of favouring whoever ran first.
for ((round = 1; round <= rounds; round++)); do
  run_vae_dist "$round"
  if ((peers)); then run_peers "$round"; fi
done

report=("$results" "$out")
((docs)) && report+=(--docs "$root/docs")
"$python" "$root/launch/peers/report.py" "${report[@]}"
