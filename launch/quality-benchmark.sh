#!/usr/bin/env bash
# Training quality over seeds, next to Keras run on the same host: trains seeds 0, 1, 2 (default)
# for the given epochs on the real data, then (with --peers) the Keras-book model in Keras with the
# same seed numbers and settings (launch/peers/keras_quality.py). Prints the test loss per epoch of
# each run, the means and spreads beside the issue's reference figures, and how many of the
# encoder's 16 hidden ReLU units each run ended with dead; writes CSV, Markdown and a plot.
#
#   launch/quality-benchmark.sh [--epochs 30] [--seeds "0 1 2"] [--ranks 2] [--out quality-results]
#                               [--batch-size B] [--lr R] [--lr-schedule constant|cosine|step]
#                               [--warmup-steps K] [--scale-lr none|linear|sqrt] [--lr-final F]
#                               [--lr-decay-steps K] [--lr-step-every K] [--lr-gamma G]
#                               [--precision fp32|bf16]
#                               (vae-dist's settings; the defaults are the seeds' model and settings)
#                               [--peers] (also train Keras on the same seeds; installs it once)
#                               [--docs]  (also copy the plot and table into docs/)
#
# References (issue 13; the same model, batch 128, lr 1e-3, latent 2, real data, test loss with z
# sampled): Keras 3.15 seed 1337 and seed 1, PyTorch 2.15 seed 1337, after epochs 5, 10, 20, 30.
# Runs already finished in --out are kept, so an interrupted benchmark resumes where it stopped.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/launch/args.sh"
epochs=30 seeds="0 1 2" ranks=2 out=quality-results docs=0 peers=0 train_args=()
while (($#)); do
  case "$1" in
    --batch-size | --lr | --lr-schedule | --warmup-steps | --scale-lr | --lr-final | --lr-decay-steps | --lr-step-every | --lr-gamma | --precision)
      train_args+=("$1" "$(value_of quality-benchmark "$1" "${2-}")"); shift 2 ;;
    --epochs) epochs="$(value_of quality-benchmark "$1" "${2-}")"; shift 2 ;;
    --seeds) seeds="$(value_of quality-benchmark "$1" "${2-}")"; shift 2 ;;
    --ranks) ranks="$(value_of quality-benchmark "$1" "${2-}")"; shift 2 ;;
    --out) out="$(value_of quality-benchmark "$1" "${2-}")"; shift 2 ;;
    --peers) peers=1; shift ;;
    --docs) docs=1; shift ;;
    -h | --help) usage_of "$0"; exit 0 ;;
    *) echo "quality-benchmark: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$epochs" =~ ^[0-9]+$ && "$epochs" -ge 1 ]] || { echo "quality-benchmark: --epochs must be a whole number of at least 1 (got $epochs)" >&2; exit 2; }
[[ "$ranks" =~ ^[1-9][0-9]*$ ]] || { echo "quality-benchmark: --ranks must be a positive whole number (got '$ranks')" >&2; exit 2; }
# Seeds are words of the loops below: whole numbers only (a * would have expanded to file names).
read -r -a seed_list <<<"$seeds"
((${#seed_list[@]})) || { echo "quality-benchmark: --seeds needs one or more seeds, e.g. '0 1 2'" >&2; exit 2; }
for seed in "${seed_list[@]}"; do
  [[ "$seed" =~ ^[0-9]+$ ]] || { echo "quality-benchmark: --seeds takes whole numbers separated by blanks (got '$seed')" >&2; exit 2; }
done
"$root/launch/install-packages.sh" quality-benchmark python3  # the reports (setup.sh installs it only with --test)
"$root/launch/setup.sh" >/dev/null
if ((peers)); then
  source "$root/launch/peers/envs.sh"
  ensure_keras
fi
binary="${VAE_DIST_BINARY:-$root/.build/release/vae-dist}"
mkdir -p "$out"
# The runs kept in --out must be of these settings.
settings="--epochs $epochs ${train_args[*]:-}"
if [[ -f "$out/settings" && "$(cat "$out/settings")" != "$settings" ]]; then
  echo "quality-benchmark: $out holds runs with other settings ($(cat "$out/settings")); pass another --out" >&2
  exit 2
fi
echo "$settings" >"$out/settings"
cpu=$(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')
family=$(lscpu | awk -F: '/CPU family/ {gsub(/ /, "", $2); print $2; exit}')
model=$(lscpu | awk -F: '/^Model:/ {gsub(/ /, "", $2); print $2; exit}')
isa=$(grep -q avx512f /proc/cpuinfo && echo AVX-512 || (grep -q avx2 /proc/cpuinfo && echo AVX2 || echo SSE))
echo "quality-benchmark: seeds $seeds, $epochs epochs, $ranks ranks, settings: $settings$( ((peers)) && echo ', then Keras'); $cpu (family $family, model $model, $isa)"
# A Ctrl-C stops the run in progress cleanly (mpirun-local.sh, exit 0) and then ends this script.
trap 'echo "quality-benchmark: stopped; run it again to go on (finished seeds are kept)" >&2; exit 130' INT TERM
finished() { [[ -f "$1" ]] && (($(wc -l <"$1") >= epochs)); }  # finished FILE: one line per epoch
for seed in $seeds; do
  run="$out/seed-$seed"
  if [[ -f "$run/model.safetensors" ]] && finished "$run/metrics.jsonl"; then
    echo "quality-benchmark: seed $seed already trained in $run"
    continue
  fi
  rm -rf "$run"
  started=$(date +%s)
  "$root/launch/mpirun-local.sh" -n "$ranks" train --seed "$seed" --epochs "$epochs" --out "$run" --iw-samples 0 \
    --progress none --tensorboard none "${train_args[@]}" >"$out/seed-$seed.log" 2>&1 \
    || { echo "quality-benchmark: seed $seed failed; see $out/seed-$seed.log" >&2; exit 1; }
  echo "quality-benchmark: seed $seed: $(tail -n 1 "$run/metrics.jsonl" | python3 -c 'import json,sys; m=json.load(sys.stdin); print("epoch %d test loss %.2f, %s of 16 hidden units dead" % (m["epoch"], m["test_loss"], m.get("test_dead_hidden_units")))') ($(($(date +%s) - started)) s)"
done
for seed in $seeds; do  # the final model's dead units, also for runs trained before metrics.jsonl had them
  "$binary" evaluate --checkpoint "$out/seed-$seed/model.safetensors" --iw-samples 0 --json >"$out/seed-$seed/evaluation-final.json"
done
if ((peers)); then
  for seed in $seeds; do
    run="$out/keras-seed-$seed.jsonl"
    if finished "$run"; then
      echo "quality-benchmark: Keras seed $seed already trained ($run)"
      continue
    fi
    rm -f "$run"
    started=$(date +%s)
    "$envs/keras-venv/bin/python" "$root/launch/peers/keras_quality.py" --seed "$seed" --epochs "$epochs" --out "$run" \
      >"$out/keras-seed-$seed.log" 2>&1 || { echo "quality-benchmark: Keras seed $seed failed; see $out/keras-seed-$seed.log" >&2; exit 1; }
    echo "quality-benchmark: Keras seed $seed: $(tail -n 1 "$run" | python3 -c 'import json,sys; m=json.load(sys.stdin); print("epoch %d test loss %.2f, %d of 16 hidden units dead" % (m["epoch"], m["test_loss"], m["dead_hidden_units"]))') ($(($(date +%s) - started)) s)"
  done
fi
python3 - "$out" "$epochs" "$seeds" "$cpu (family $family, model $model, $isa)" "$peers" <<'PY'
import json, os, statistics, sys
out, epochs, seeds, cpu, peers = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4], sys.argv[5] == "1"
references = {  # epoch: (Keras 1337, Keras 1, PyTorch 1337)
    5: (271.7, 271.1, 272.6), 10: (267.4, 268.5, 269.1), 20: (265.7, 264.6, 265.8), 30: (265.0, 264.1, 264.5)}
def read(path):
    return {m["epoch"]: m for m in map(json.loads, open(path))} if os.path.exists(path) else {}
runs = {f"seed{s}": read(f"{out}/seed-{s}/metrics.jsonl") for s in seeds}
if peers:
    for s in seeds:
        runs[f"keras{s}"] = read(f"{out}/keras-seed-{s}.jsonl")
groups = [("vae-dist", [f"seed{s}" for s in seeds])] + ([("keras", [f"keras{s}" for s in seeds])] if peers else [])
header = ["epoch"]
for label, names in groups:
    header += names + ([f"mean", "spread"] if label == "vae-dist" else ["keras_mean", "keras_spread"])
header += ["ref_keras1337", "ref_keras1", "ref_pytorch1337"]
rows = []
for e in range(1, epochs + 1):
    row = [e]
    for label, names in groups:
        values = [runs[n].get(e, {}).get("test_loss") for n in names]
        have = [v for v in values if v is not None]
        row += values + [statistics.mean(have) if have else None, (max(have) - min(have)) if have else None]
    rows.append(row + list(references.get(e, (None, None, None))))
fmt = lambda v: "" if v is None else (str(v) if isinstance(v, int) else f"{v:.2f}")
with open(f"{out}/quality.csv", "w") as f:
    f.write(",".join(header) + "\n")
    for r in rows: f.write(",".join(fmt(v) for v in r) + "\n")
md = [f"Test loss per epoch (z sampled), {cpu}", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
for r in rows:
    if r[0] in references or r[0] == epochs or r[0] == 1: md.append("| " + " | ".join(fmt(v) for v in r) + " |")
dead = {f"seed{s}": json.load(open(f"{out}/seed-{s}/evaluation-final.json"))["test_dead_hidden_units"] for s in seeds}
dead.update({n: runs[n].get(epochs, {}).get("dead_hidden_units", "?") for n in runs if n.startswith("keras")})
md += ["", f"Dead hidden units of the encoder (of 16, zero for every test image) in the final models: " +
       ", ".join(f"{n} {dead[n]}" for n in runs)]
open(f"{out}/quality.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
final = rows[-1]
for label, names in groups:
    values = [runs[n].get(epochs, {}).get("test_loss") for n in names]
    have = [v for v in values if v is not None]
    if have:
        print(f"\n{label} after epoch {epochs}: mean {statistics.mean(have):.2f} over seeds {', '.join(seeds)} "
              f"(each: {', '.join(fmt(v) for v in values)})", end="")
print(f"\nthe issue's references at 30 epochs: 264.1-265.0")
PY
series="$(echo $seeds | sed 's/\([0-9]*\)/seed\1/g; s/ /,/g'),mean"
((peers)) && series="$series,$(echo $seeds | sed 's/\([0-9]*\)/keras\1/g; s/ /,/g'),keras_mean"
"$binary" plot-csv --csv "$out/quality.csv" --x epoch --y "$series,ref_keras1337,ref_keras1,ref_pytorch1337" \
  --title "Test loss per epoch: vae-dist and Keras (same host) by seed; issue references at 5, 10, 20, 30" --y-label "test loss (nats)" \
  --output "$out/quality.png"
if ((docs)); then
  cp "$out/quality.png" "$root/docs/images/quality.png"
  cp "$out/quality.md" "$root/docs/quality-results.md"
  echo "quality-benchmark: copied the plot and the table into docs/"
fi
