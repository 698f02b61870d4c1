#!/usr/bin/env bash
# The README's main command: set up (idempotent), then train with 4 MPI ranks on this machine.
# Any arguments go to `vae-dist train` (e.g. --epochs 5 --out run5).
set -euo pipefail
here="$(dirname "$0")"
"$here/setup.sh"
exec "$here/mpirun-local.sh" -n "${RANKS:-4}" train "$@"
