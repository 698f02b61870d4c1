#!/usr/bin/env bash
# vae-dist against Keras on the same cores, one after the other: the same model, batch 128, the
# 60,000 real training images. Installs TensorFlow (PyPI, ~600 MB, once) into its own virtual
# environment, times steady-state Keras epochs (launch/keras_baseline.py), then `vae-dist bench` at
# 1 rank × all cores and 2 ranks × 1 thread, and prints the ratio.
#
#   launch/keras-baseline.sh [--epochs N] [--steps N]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
epochs=3 steps=50
while (($#)); do
  case "$1" in
    --epochs) epochs="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    *) echo "keras-baseline: unknown argument $1 (see the header of this script)" >&2; exit 2 ;;
  esac
done
"$root/launch/setup.sh" >/dev/null
venv="${VAE_DIST_KERAS_VENV:-$HOME/.cache/vae-dist/keras-venv}"
if ! "$venv/bin/python" -c "import tensorflow, keras" 2>/dev/null; then
  dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -q "install ok installed" || {
    sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  }
  echo "keras-baseline: installing TensorFlow and Keras into $venv (once)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet tensorflow-cpu || "$venv/bin/pip" install --quiet tensorflow
fi

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cores=$(nproc)
echo "keras-baseline: Keras, $epochs epochs (the first is warm-up)" >&2
keras=$("$venv/bin/python" "$root/launch/keras_baseline.py" --epochs "$epochs" 2>/dev/null | tail -1)
binary="$root/.build/release/vae-dist"
echo "keras-baseline: vae-dist bench, 1 × $cores and $cores × 1" >&2
threads=$("$binary" bench --json --threads "$cores" --steps "$steps" --gemm-peak)
ranks=$(mpirun -n "$cores" --bind-to none "$binary" bench --json --threads 1 --steps "$steps")
python3 - "$keras" "$threads" "$ranks" "$cores" <<'PY'
import json, sys
keras, threads, ranks = (json.loads(a) for a in sys.argv[1:4])
cores = int(sys.argv[4])
k = keras["imagesPerSecond"]
print(f"Keras {keras['keras']} / TensorFlow {keras['tensorflow']}: {k:,.0f} images/s "
      f"(epochs: {', '.join(f'{s:.1f} s' for s in keras['epochSeconds'])}; the first is warm-up)")
for name, r in [(f"1 rank × {cores} threads", threads), (f"{cores} ranks × 1 thread", ranks)]:
    v = r["imagesPerSecond"]
    print(f"vae-dist {name}: {v:,.0f} ± {r['imagesPerSecondInterval95']:,.0f} images/s, {r['gigaflopsPerSecond']:.1f} GFLOP/s "
          f"= {v / k:.2f}× Keras (Keras at {k / v:.2f} of it)")
peak = threads.get("gemmPeakGigaflopsPerSecond")
if peak:
    best = max(threads["imagesPerSecond"], ranks["imagesPerSecond"])
    print(f"GEMM peak {peak:.1f} GFLOP/s on {cores} threads: the best layout runs at {best * threads['flopsPerImage'] / 1e9 / peak:.0%} of it; "
          f"at 100% it would do {peak * 1e9 / threads['flopsPerImage']:,.0f} images/s")
PY
