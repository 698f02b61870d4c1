#!/usr/bin/env bash
# Runs vae-dist under Open MPI on this machine with the settings it needs, and says what it runs.
#
#   launch/mpirun-local.sh [-n RANKS] [--dry-run] [--max-restarts K [--min-ranks M] [--backoff S]] [vae-dist arguments…]
#
# With --max-restarts K (anywhere in the arguments) the job runs under `vae-dist supervise`, which
# restarts it with --resume when a rank or mpirun fails (see docs/checkpoints.md), waiting --backoff S
# seconds before a restart (times the restart's number); --min-ranks M lets a job that fails before
# its first step come back with one rank fewer, down to M. --dry-run (anywhere) prints the commands
# and runs nothing.
#
# Why each setting:
#   --allow-run-as-root  Open MPI refuses to start as root without it (only added when root).
#   --oversubscribe      more ranks than cores is refused without it (only added then).
#   --bind-to none       with n ≤ 2 Open MPI pins each rank to one core, which would leave a rank's
#                        worker threads sharing that core; unbound, the kernel spreads them.
#   OPENBLAS_NUM_THREADS=1  each rank parallelises over micro-batches itself; BLAS threads on top
#                        would oversubscribe the cores (vae-dist also sets this at start-up).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/launch/args.sh"
[[ "${1:-}" == -h || "${1:-}" == --help ]] && { usage_of "$0"; exit 0; }
binary="${VAE_DIST_BINARY:-$root/.build/release/vae-dist}"
# The supervisor's options and --dry-run, anywhere in the arguments; -n first.
supervise=()
kept=()
dry_run=0
while (($#)); do
  case "$1" in
    --max-restarts | --min-ranks | --backoff) supervise+=("$1" "$(value_of mpirun-local "$1" "${2-}")"); shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    *) kept+=("$1"); shift ;;
  esac
done
set -- ${kept[@]+"${kept[@]}"}
ranks=4
while (($#)); do
  case "$1" in
    -n | --ranks) ranks=$(value_of mpirun-local "$1" "${2-}"); shift 2 ;;
    *) break ;;
  esac
done
[[ "$ranks" =~ ^[1-9][0-9]*$ ]] || { echo "mpirun-local: -n needs a positive number of ranks (got '$ranks')" >&2; exit 2; }
# vae-dist's help, once: one rank. A -n among vae-dist's arguments was passed on to it.
for argument in "$@"; do
  [[ "$argument" == --help || "$argument" == -h ]] && ranks=1
  [[ "$argument" == -n || "$argument" == --ranks ]] && { echo "mpirun-local: $argument goes first, before vae-dist's arguments: mpirun-local.sh -n 2 train …" >&2; exit 2; }
done
missing="mpirun-local: $binary is not built; run launch/setup.sh first (or set VAE_DIST_BINARY)."

if ((${#supervise[@]})); then
  # The supervisor reads the job's -n (and lowers it under --min-ranks): always written out.
  wrapper=("$binary" supervise "${supervise[@]}" -- "$0" -n "$ranks" "$@")
  if ((!dry_run)); then
    [[ -x "$binary" ]] || { echo "$missing" >&2; exit 1; }
    exec "${wrapper[@]}"
  fi
  echo "+ $(quoted "${wrapper[@]}")"  # then the command each attempt runs
fi

cores=$(nproc)
command=(mpirun -n "$ranks" --bind-to none)
[[ $(id -u) -eq 0 ]] && command+=(--allow-run-as-root)
((ranks > cores)) && command+=(--oversubscribe)
command+=(-x OPENBLAS_NUM_THREADS=1 "$binary" "$@")
# A bar when the user's terminal shows it (mpirun's own output is never a terminal to the ranks),
# for train (the default command) only, and unless the arguments choose their own.
if [[ -t 1 ]] && { (($# == 0)) || [[ "$1" == -* || "$1" == train ]]; }; then
  bar=1
  for argument in "$@"; do
    case "$argument" in --progress | --progress=* | --help | -h) bar=0 ;; esac
  done
  ((bar)) && command+=(--progress bar)
fi

echo "+ OPENBLAS_NUM_THREADS=1 $(quoted "${command[@]}")"
((dry_run)) && exit 0
command -v mpirun >/dev/null || { echo "mpirun-local: mpirun not found; run launch/setup.sh (installs openmpi-bin)." >&2; exit 1; }
[[ -x "$binary" ]] || { echo "$missing" >&2; exit 1; }
export OPENBLAS_NUM_THREADS=1

source "$root/launch/stoppable.sh"
run_stoppable mpirun-local "${command[@]}"
