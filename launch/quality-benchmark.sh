#!/usr/bin/env bash
# Training quality over seeds, next to Keras and PyTorch: trains seeds 0, 1, 2 (default) for the
# given epochs on the real data, prints the test loss per epoch of each seed with the mean and the
# spread beside the reference figures, and writes CSV, Markdown and a plot.
#
#   launch/quality-benchmark.sh [--epochs 30] [--seeds "0 1 2"] [--ranks 2] [--out quality-results]
#                               [--docs]   (also copy the plot and table into docs/)
#
# References (issue 13; the same model, batch 128, lr 1e-3, latent 2, real data, test loss with z
# sampled): Keras 3.15 seed 1337 and seed 1, PyTorch 2.15 seed 1337, after epochs 5, 10, 20, 30.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
epochs=30 seeds="0 1 2" ranks=2 out=quality-results docs=0
while (($#)); do
  case "$1" in
    --epochs) epochs="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --ranks) ranks="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --docs) docs=1; shift ;;
    -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "quality-benchmark: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
"$root/launch/setup.sh" >/dev/null
binary="${VAE_DIST_BINARY:-$root/.build/release/vae-dist}"
mkdir -p "$out"
cpu=$(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')
family=$(lscpu | awk -F: '/CPU family/ {gsub(/ /, "", $2); print $2; exit}')
model=$(lscpu | awk -F: '/^Model:/ {gsub(/ /, "", $2); print $2; exit}')
isa=$(grep -q avx512f /proc/cpuinfo && echo AVX-512 || (grep -q avx2 /proc/cpuinfo && echo AVX2 || echo SSE))
echo "quality-benchmark: seeds $seeds, $epochs epochs, $ranks ranks; $cpu (family $family, model $model, $isa)"
for seed in $seeds; do
  run="$out/seed-$seed"
  if [[ -f "$run/model.safetensors" ]] && (($(wc -l <"$run/metrics.jsonl") >= epochs)); then
    echo "quality-benchmark: seed $seed already trained in $run"
    continue
  fi
  rm -rf "$run"
  started=$(date +%s)
  "$root/launch/mpirun-local.sh" -n "$ranks" train --seed "$seed" --epochs "$epochs" --out "$run" --iw-samples 0 \
    --progress none --tensorboard none >"$out/seed-$seed.log" 2>&1
  echo "quality-benchmark: seed $seed: $(tail -n 1 "$run/metrics.jsonl" | python3 -c 'import json,sys; m=json.load(sys.stdin); print("epoch %d test loss %.2f" % (m["epoch"], m["test_loss"]))') ($(($(date +%s) - started)) s)"
done
python3 - "$out" "$epochs" "$seeds" "$cpu (family $family, model $model, $isa)" <<'PY'
import json, statistics, sys
out, epochs, seeds, cpu = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4]
references = {  # epoch: (Keras 1337, Keras 1, PyTorch 1337)
    5: (271.7, 271.1, 272.6), 10: (267.4, 268.5, 269.1), 20: (265.7, 264.6, 265.8), 30: (265.0, 264.1, 264.5)}
curves = {s: {json.loads(l)["epoch"]: json.loads(l)["test_loss"] for l in open(f"{out}/seed-{s}/metrics.jsonl")} for s in seeds}
rows, table = [], []
header = ["epoch"] + [f"seed{s}" for s in seeds] + ["mean", "spread", "keras1337", "keras1", "pytorch1337"]
for e in range(1, epochs + 1):
    values = [curves[s].get(e) for s in seeds]
    have = [v for v in values if v is not None]
    mean = statistics.mean(have) if have else None
    spread = (max(have) - min(have)) if have else None
    ref = references.get(e, (None, None, None))
    rows.append([e] + values + [mean, spread, *ref])
fmt = lambda v: "" if v is None else (str(v) if isinstance(v, int) else f"{v:.2f}")
with open(f"{out}/quality.csv", "w") as f:
    f.write(",".join(header) + "\n")
    for r in rows: f.write(",".join(fmt(v) for v in r) + "\n")
md = [f"Test loss per epoch (z sampled), {cpu}", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
for r in rows:
    if r[0] in references or r[0] == epochs or r[0] == 1: md.append("| " + " | ".join(fmt(v) for v in r) + " |")
open(f"{out}/quality.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
last = rows[-1]
print(f"\nafter epoch {epochs}: mean {fmt(last[len(seeds)+1])} over seeds {', '.join(seeds)} "
      f"(each: {', '.join(fmt(v) for v in last[1:len(seeds)+1])}); frameworks at 30 epochs: 264.1-265.0")
PY
"$binary" plot-csv --csv "$out/quality.csv" --x epoch --y "$(echo $seeds | sed 's/\([0-9]*\)/seed\1/g; s/ /,/g'),mean,keras1337,keras1,pytorch1337" \
  --title "Test loss per epoch: vae-dist seeds vs Keras / PyTorch (points at 5, 10, 20, 30)" --y-label "test loss (nats)" \
  --output "$out/quality.png"
if ((docs)); then
  cp "$out/quality.png" "$root/docs/images/quality.png"
  cp "$out/quality.md" "$root/docs/quality-results.md"
  echo "quality-benchmark: copied the plot and the table into docs/"
fi
