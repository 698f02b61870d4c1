#!/usr/bin/env bash
# The README's main command: set up (idempotent), then train with 4 MPI ranks on this machine.
# Any arguments go to `vae-dist train` (e.g. --epochs 5 --out run5), except --dry-run, which prints
# the mpirun command instead of setting up and running it. Run again, it continues or replaces the
# last run in the default --out (below).
set -euo pipefail
here="$(dirname "$0")"
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  source "$here/args.sh"
  usage_of "$0"
  echo "vae-dist train --help lists the training options (after launch/setup.sh has built it)."
  exit 0
fi
launcher=()
arguments=()
said=""  # whether --out, --resume or --overwrite is among them (below)
for argument in "$@"; do
  if [[ "$argument" == --dry-run ]]; then launcher+=(--dry-run); else arguments+=("$argument"); fi
  case "$argument" in --out | --out=* | --resume | --overwrite) said=yes ;; esac
done
((${#launcher[@]})) || "$here/setup.sh"  # a dry run only prints the command

# Run again without saying where or how: the default --out holds the last run. An unfinished one (a
# checkpoint, no model: Ctrl-C, a crash; or a model without the estimate it was to end with: stopped
# in its final work) is continued, which finishes what is missing; a finished one is moved aside to
# vae-dist-run.previous-N (nothing is lost) and a new run starts.
default_out=vae-dist-run
if [[ -z "$said" && -f "$default_out/run.json" ]]; then
  estimated() { [[ -f "$default_out/evaluation.json" ]] || grep -q '"iwSamples" : 0,' "$default_out/run.json"; }
  if compgen -G "$default_out/checkpoints/step-*" >/dev/null && { [[ ! -f "$default_out/model.safetensors" ]] || ! estimated; }; then
    echo "train.sh: $default_out holds an unfinished run: continuing it (--resume; give --overwrite to start afresh)"
    arguments+=(--resume)
  else
    echo "train.sh: $default_out holds an earlier run: moving it aside and starting afresh (--overwrite; give --out for another folder)"
    arguments+=(--overwrite)
  fi
fi
exec "$here/mpirun-local.sh" -n "${RANKS:-4}" ${launcher[@]+"${launcher[@]}"} train ${arguments[@]+"${arguments[@]}"}
