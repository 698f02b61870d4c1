#!/usr/bin/env bash
# The README's main command: set up (idempotent), then train with 4 MPI ranks on this machine.
# Any arguments go to `vae-dist train` (e.g. --epochs 5 --out run5), except --dry-run, which prints
# the mpirun command instead of setting up and running it.
set -euo pipefail
here="$(dirname "$0")"
launcher=()
arguments=()
for argument in "$@"; do
  if [[ "$argument" == --dry-run ]]; then launcher+=(--dry-run); else arguments+=("$argument"); fi
done
((${#launcher[@]})) || "$here/setup.sh"  # a dry run only prints the command
exec "$here/mpirun-local.sh" -n "${RANKS:-4}" ${launcher[@]+"${launcher[@]}"} train ${arguments[@]+"${arguments[@]}"}
