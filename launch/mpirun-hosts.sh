#!/usr/bin/env bash
# Runs vae-dist on the nodes of an Open MPI hostfile, one rank per slot, and says what it runs.
#
#   launch/mpirun-hosts.sh --hostfile FILE [-n RANKS] [--threads T] [--network CIDR]
#                          [--rsh-agent PROGRAM] [--binary PATH] [--dry-run]
#                          [--max-restarts K [--min-ranks M] [--backoff S]] [vae-dist arguments…]
#
# With --max-restarts K the job runs under `vae-dist supervise`: a failed rank or host restarts it
# with --resume, and before each start the hosts of the hostfile that do not answer through the
# rsh agent are left out (they rejoin when they answer again); any rank count resumes to the same bits.
#
# Settings and why:
#   --map-by node --bind-to none  one rank per node, free to use all its cores: the rank's worker
#                                 threads (--threads, default: the node's cores) fill them.
#   OPENBLAS_NUM_THREADS=1        vae-dist parallelises over micro-batches; BLAS threads would
#                                 oversubscribe the cores.
#   --network CIDR                keep MPI's control and data traffic on one network
#                                 (oob_tcp_if_include, btl_tcp_if_include); with it, TCP only.
#   --rsh-agent PROGRAM           how mpirun reaches the nodes (default ssh; the tests use
#                                 launch/netns-agent.sh for namespace hosts on one machine).
# Data: every node needs the dataset at the same path (--data; each rank reads it through and keeps
# only its shard). Output: rank zero alone writes --out, on the node it runs on (the first host).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/launch/args.sh"
[[ "${1:-}" == -h || "${1:-}" == --help ]] && { usage_of "$0"; exit 0; }
hostfile="" ranks="" network="" agent="" dry_run=0 threads="" restarts="" supervise=()
binary="${VAE_DIST_BINARY:-$root/.build/release/vae-dist}"
# --dry-run anywhere (after vae-dist's arguments too: the job must not start for real).
kept=()
for argument in "$@"; do
  if [[ "$argument" == --dry-run ]]; then dry_run=1; else kept+=("$argument"); fi
done
set -- ${kept[@]+"${kept[@]}"}
while (($#)); do
  case "$1" in
    --hostfile) hostfile=$(value_of mpirun-hosts "$1" "${2-}"); shift 2 ;;
    -n | --ranks) ranks=$(value_of mpirun-hosts "$1" "${2-}"); shift 2 ;;
    --network) network=$(value_of mpirun-hosts "$1" "${2-}"); shift 2 ;;
    --rsh-agent) agent=$(value_of mpirun-hosts "$1" "${2-}"); shift 2 ;;
    --binary) binary=$(value_of mpirun-hosts "$1" "${2-}"); shift 2 ;;
    --threads) threads=$(value_of mpirun-hosts "$1" "${2-}"); shift 2 ;;
    --max-restarts) restarts=$(value_of mpirun-hosts "$1" "${2-}"); shift 2 ;;
    --min-ranks | --backoff) supervise+=("$1" "$(value_of mpirun-hosts "$1" "${2-}")"); shift 2 ;;
    *) break ;;
  esac
done
[[ -n "$hostfile" ]] || { echo "mpirun-hosts: --hostfile FILE is required (see launch/hostfile.example; --help)" >&2; exit 2; }
[[ -z "$ranks" || "$ranks" =~ ^[1-9][0-9]*$ ]] || { echo "mpirun-hosts: -n needs a positive number of ranks (got '$ranks')" >&2; exit 2; }
[[ -z "$restarts" || "$restarts" =~ ^[0-9]+$ ]] || { echo "mpirun-hosts: --max-restarts needs a number of restarts (got '$restarts')" >&2; exit 2; }
((${#supervise[@]} == 0)) || [[ -n "$restarts" ]] || { echo "mpirun-hosts: --min-ranks and --backoff are the supervisor's: give --max-restarts K too" >&2; exit 2; }
# The hostfile and the rank count, checked before a supervisor is started for them.
[[ -r "$hostfile" ]] || { echo "mpirun-hosts: cannot read the hostfile $hostfile" >&2; exit 2; }
given_ranks=$ranks
if [[ -z "$ranks" ]]; then
  ranks=$(awk '!/^[[:space:]]*(#|$)/ { n = 1; for (i = 2; i <= NF; i++) if ($i ~ /^slots=/) { split($i, a, "="); n = a[2] } total += n } END { print total + 0 }' "$hostfile")
fi
[[ "$ranks" =~ ^[1-9][0-9]*$ ]] || { echo "mpirun-hosts: the hostfile $hostfile names no slots" >&2; exit 2; }
missing="mpirun-hosts: $binary is not an executable; run launch/setup.sh, or pass --binary PATH."
if [[ -n "$restarts" ]]; then
  inner=(--hostfile "$hostfile" --binary "$binary")
  # The supervisor lowers -n under --min-ranks, so it must be there; otherwise only when given.
  if [[ -n "$given_ranks" ]]; then inner+=(-n "$given_ranks"); elif [[ " ${supervise[*]-} " == *" --min-ranks "* ]]; then inner+=(-n "$ranks"); fi
  [[ -n "$network" ]] && inner+=(--network "$network")
  [[ -n "$agent" ]] && inner+=(--rsh-agent "$agent")
  [[ -n "$threads" ]] && inner+=(--threads "$threads")
  wrapper=("$binary" supervise --max-restarts "$restarts" ${supervise[@]+"${supervise[@]}"} --hostfile "$hostfile" --rsh-agent "${agent:-ssh}" -- "$0" "${inner[@]}" "$@")
  if ((!dry_run)); then
    [[ -x "$binary" ]] || { echo "$missing" >&2; exit 1; }
    exec "${wrapper[@]}"
  fi
  echo "+ $(quoted "${wrapper[@]}")"  # then the command each attempt runs
fi
command=(mpirun -n "$ranks" --hostfile "$hostfile" --map-by node --bind-to none)
[[ $(id -u) -eq 0 ]] && command+=(--allow-run-as-root)
[[ -n "$agent" ]] && command+=(--mca plm_rsh_agent "$agent" --mca plm_rsh_no_tree_spawn 1)
[[ -n "$network" ]] && command+=(--mca btl tcp,self --mca btl_tcp_if_include "$network" --mca oob_tcp_if_include "$network")
command+=(-x OPENBLAS_NUM_THREADS=1 "$binary")
if (($#)) && [[ "$1" != -* ]]; then command+=("$1"); shift; fi  # a subcommand (train, bench) comes first
[[ -n "$threads" ]] && command+=(--threads "$threads")
command+=("$@")

echo "+ OPENBLAS_NUM_THREADS=1 $(quoted "${command[@]}")"
((dry_run)) && exit 0
command -v mpirun >/dev/null || { echo "mpirun-hosts: mpirun not found; install openmpi-bin (launch/setup.sh)." >&2; exit 1; }
[[ -x "$binary" ]] || { echo "$missing" >&2; exit 1; }
export OPENBLAS_NUM_THREADS=1
source "$root/launch/stoppable.sh"
run_stoppable mpirun-hosts "${command[@]}"
