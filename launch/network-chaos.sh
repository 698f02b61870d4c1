#!/usr/bin/env bash
# Network faults between hosts, on 3 namespace hosts of this machine (launch/netns-hosts.sh): what a
# cluster's network does besides losing a host. Each case trains over TCP between the hosts and checks
# the bits against the same run in one process.
#
#   launch/network-chaos.sh [--short] [--out DIR] [--steps N] [--stall-timeout S] [--data DIR]
#
#   loss       1% of the packets dropped on every host's link, the whole run (nftables numgen)
#   heal       one host cut off (nftables drop, both ways) for 10 s, shorter than --stall-timeout
#   partition  one host cut off for good, under `vae-dist supervise --max-restarts 2`: the ranks
#              end after --stall-timeout, the supervisor leaves the host out and resumes on the others
#   thin       every link held to 1 Gbit/s (tc tbf): step and allreduce time per step, from `bench`
#
# Prints one line per case: the result, the bits (same or not), the time to end or heal, the
# slowdown, under a line naming the CPU (family, model, ISA); writes the same into DIR/results.md.
# --short (the test command's version) runs fewer steps and a 4 s cut, and gives the supervisor 5 s
# instead of 30 to end an mpirun that outlives its ranks (it waits for the cut-off host's daemon).
# --data trains on another Fashion-MNIST folder (the test's cut of the real set: a shorter
# evaluation in every run). The --out DIR is emptied first: it must be new, empty or an earlier
# output of this script. Needs root (namespaces, nftables, tc); installs nftables, ping, iproute2
# (ip, tc), python3 and procps (pgrep) if they are missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/launch/args.sh"
[[ "${1:-}" == -h || "${1:-}" == --help ]] && { usage_of "$0"; exit 0; }
binary="${VAE_DIST_BINARY:-$root/.build/release/vae-dist}"
out=/tmp/vae-dist-network-chaos short=0 steps="" timeout="" data=()
while (($#)); do
  case "$1" in
    --short) short=1; shift ;;
    --out) out="$(value_of network-chaos "$1" "${2-}")"; shift 2 ;;
    --steps) steps="$(value_of network-chaos "$1" "${2-}")"; shift 2 ;;
    --stall-timeout) timeout="$(value_of network-chaos "$1" "${2-}")"; shift 2 ;;
    --data) data=(--data "$(value_of network-chaos "$1" "${2-}")"); shift 2 ;;
    *) echo "usage: $0 [--short] [--out DIR] [--steps N] [--stall-timeout S] [--data DIR]" >&2; exit 2 ;;
  esac
done
if ((short)); then
  steps="${steps:-40}" timeout="${timeout:-8}" cut=4
  export VAE_DIST_TEST_LAUNCHER_GRACE="${VAE_DIST_TEST_LAUNCHER_GRACE:-5}"
else
  steps="${steps:-120}" timeout="${timeout:-20}" cut=10
fi
[[ "$steps" =~ ^[1-9][0-9]*$ ]] || { echo "network-chaos: --steps must be a positive integer, not '$steps'" >&2; exit 2; }
# Whole seconds: the ranks' message the partition case waits for names the timeout as one.
[[ "$timeout" =~ ^[1-9][0-9]*$ ]] && ((timeout >= 2)) ||
  { echo "network-chaos: --stall-timeout must be a whole number of seconds, at least 2, not '$timeout'" >&2; exit 2; }
# --out is emptied: only a new or empty directory, or an earlier output of this script (its marker,
# or, from before the marker, its hostfile and reference log).
if [[ -e "$out" && ! -d "$out" ]] ||
  [[ -d "$out" && -n "$(ls -A "$out")" && ! -f "$out/.network-chaos" && ! (-f "$out/hosts" && -f "$out/alone.log") ]]; then
  echo "network-chaos: --out $out holds other files; give a new or empty directory" >&2
  exit 2
fi
[[ $(id -u) -eq 0 ]] || { echo "network-chaos: needs root (network namespaces, nftables, tc)" >&2; exit 2; }
[[ -x "$binary" ]] || { echo "network-chaos: no vae-dist at $binary; run launch/setup.sh first" >&2; exit 2; }
"$root/launch/install-packages.sh" network-chaos nftables iputils-ping iproute2 python3 procps
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

hosts=(vae-h1 vae-h2 vae-h3)
rm -rf "$out" && mkdir -p "$out" && touch "$out/.network-chaos"
"$root/launch/netns-hosts.sh" up 3 >/dev/null
hostfile="$out/hosts"
printf '10.213.0.11 slots=1\n10.213.0.12 slots=1\n10.213.0.13 slots=1\n' >"$hostfile"

in_ns() { ip netns exec "$1" "${@:2}"; }
loss_on() {  # 1 in 100 packets that arrive on a host's link is dropped
  for h in "${hosts[@]}"; do
    in_ns "$h" nft -f - <<'NFT'
table inet vaeloss {
  chain input {
    type filter hook input priority 0;
    iifname "eth0" numgen random mod 100 < 1 drop
  }
}
NFT
  done
}
loss_off() { for h in "${hosts[@]}"; do in_ns "$h" nft delete table inet vaeloss 2>/dev/null || true; done; }
cut_off() {  # HOST: nothing in or out of its link
  in_ns "$1" nft -f - <<'NFT'
table inet vaecut {
  chain input {
    type filter hook input priority 0;
    iifname "eth0" drop
  }
  chain output {
    type filter hook output priority 0;
    oifname "eth0" drop
  }
}
NFT
}
heal() { in_ns "$1" nft delete table inet vaecut 2>/dev/null || true; }
thin_on() { for h in "${hosts[@]}"; do in_ns "$h" tc qdisc replace dev eth0 root tbf rate 1gbit burst 256kb latency 50ms; done; }
thin_off() { for h in "${hosts[@]}"; do in_ns "$h" tc qdisc del dev eth0 root 2>/dev/null || true; done; }
job=""  # the background run, until it is waited for
descendants() { local child; for child in $(pgrep -P "$1" || true); do echo "$child"; descendants "$child"; done; }
cleanup() {
  loss_off; thin_off
  for h in "${hosts[@]}"; do heal "$h"; done
  # Only this script's processes: the background run (mpirun, or the supervisor and its mpirun: the
  # children are listed before the parent dies and leaves them to init), then whatever runs in its
  # namespace hosts (Open MPI's daemons and the ranks).
  if [[ -n "$job" ]]; then
    family="$job $(descendants "$job")"  # listed before any dies (mpirun runs in a session of its own)
    kill -9 $family 2>/dev/null || true
  fi
  for h in "${hosts[@]}"; do kill -9 $(ip netns pids "$h" 2>/dev/null) 2>/dev/null || true; done
  "$root/launch/netns-hosts.sh" down 3 >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT  # a Ctrl-C ends the script (and so the cases), not just the run in progress
trap 'exit 143' TERM

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
train_args() {  # DIR: the run every case trains (real data, 3 × 1 thread), into the array args
  args=("${data[@]}" --seed 7 --max-steps "$steps" --out "$1" --progress lines --iw-samples 0 --checkpoint-every 10
    --stall-timeout "$timeout" --tensorboard none)
}
on_hosts() {  # [--max-restarts K] vae-dist arguments…
  "$root/launch/mpirun-hosts.sh" --hostfile "$hostfile" --rsh-agent "$root/launch/netns-agent.sh" \
    --network 10.213.0.0/24 --binary "$binary" --threads 1 "$@"
}
model_hash() { sha256sum "$1/model.safetensors" 2>/dev/null | cut -c1-16 || echo none; }
step_ms() {  # milliseconds per step of the run in DIR (its last metrics line: seconds over steps)
  python3 -c "import json,sys; m=[json.loads(l) for l in open(sys.argv[1])][-1]; print(round(1000*m['seconds']/m['step'], 1))" "$1/metrics.jsonl" 2>/dev/null || echo "?"
}
step_of() {  # DIR: the step DIR/progress.json reached (0 before there is one)
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['step'])" "$1/progress.json" 2>/dev/null || echo 0
}
wait_for_step() {  # DIR STEP: until DIR/progress.json reaches STEP (60 s at most)
  for _ in $(seq 600); do
    s=$(step_of "$1")
    ((s >= $2)) && return 0
    sleep 0.1
  done
  return 1
}
results=("| case | result | bits | time to end or heal | per step | slowdown |" "| --- | --- | --- | --- | --- | --- |")
report() {
  printf 'network-chaos: %-9s %-44s bits %-4s %-28s %s\n' "$1" "$2" "$3" "$4" "$5"
  results+=("| $1 | $2 | $3 | $4 | $6 | $5 |")
}

setting="$("$root/launch/cpu-line.sh"); 3 namespace hosts × 1 thread, $steps steps, --stall-timeout $timeout"
echo "network-chaos: $setting"

# The reference bits (one process) and the clean 3-host step time.
train_args "$out/alone"
"$binary" train "${args[@]}" >"$out/alone.log" 2>&1 ||
  { echo "network-chaos: the one-process reference run failed; see $out/alone.log" >&2; exit 1; }
reference=$(model_hash "$out/alone")
train_args "$out/clean"
on_hosts train "${args[@]}" >"$out/clean.log" 2>&1 || { echo "network-chaos: the clean 3-host run failed:" >&2; tail -20 "$out/clean.log" >&2; exit 1; }
clean_ms=$(step_ms "$out/clean")
[[ $(model_hash "$out/clean") == "$reference" ]] || { echo "network-chaos: the clean 3-host run differs from one process" >&2; exit 1; }
echo "network-chaos: clean     3 hosts, $clean_ms ms per step, the bits of one process ($reference)"
same() { [[ $(model_hash "$1") == "$reference" ]] && echo same || echo DIFF; }
slowdown() { awk -v a="$1" -v b="$clean_ms" 'BEGIN { if (a == "?") print "?"; else printf "%+.1f ms per step (%.2f×)", a - b, a / b }'; }
failed=0

# 1. Loss: 1% of packets on every link, the whole run.
loss_on
start=$(now)
train_args "$out/loss"
status=0; on_hosts train "${args[@]}" >"$out/loss.log" 2>&1 || status=$?
loss_off
ms=$(step_ms "$out/loss")
bits=$(same "$out/loss"); [[ $status == 0 && $bits == same ]] || failed=1
report loss "exit $status after $(elapsed "$start" "$(now)") s" "$bits" "(no fault to heal)" "$(slowdown "$ms")" "$ms ms"

# 2. A healing partition: vae-h3 cut off for $cut s from step 10, shorter than the stall timeout.
start=$(now)
train_args "$out/heal"
on_hosts train "${args[@]}" >"$out/heal.log" 2>&1 &
job=$!
wait_for_step "$out/heal" 10 || true
cut_off vae-h3; cut_at=$(now); sleep "$cut"; heal vae-h3
healed_at=$(now)
at_cut=$(step_of "$out/heal")
# Healed once a step after the cut's end completes.
for _ in $(seq 600); do
  s=$(step_of "$out/heal")
  ((s > at_cut)) && break
  kill -0 "$job" 2>/dev/null || break
  sleep 0.1
done
resumed_at=$(now)
status=0; wait "$job" || status=$?
job=""
bits=$(same "$out/heal"); [[ $status == 0 && $bits == same ]] || failed=1
report heal "exit $status; cut ${cut} s at step $at_cut" "$bits" "steps again $(elapsed "$healed_at" "$resumed_at") s after the heal" \
  "$(elapsed "$start" "$(now)") s in all" "$(step_ms "$out/heal") ms"

# 3. A lasting partition: vae-h3 cut off for good from step 10, under the supervisor.
train_args "$out/partition"
on_hosts --max-restarts 2 train "${args[@]}" >"$out/partition.log" 2>&1 &
job=$!
wait_for_step "$out/partition" 10 || true
cut_off vae-h3; cut_at=$(now)
ended=""
for _ in $(seq 1200); do
  if [[ -z "$ended" ]] && grep -q "waited $timeout s" "$out/partition.log"; then ended=$(now); fi
  grep -q "restart 1/" "$out/partition.log" && break
  kill -0 "$job" 2>/dev/null || break
  sleep 0.1
done
restarted=$(now)
status=0; wait "$job" || status=$?
job=""
heal vae-h3
bits=$(same "$out/partition"); [[ $status == 0 && $bits == same ]] || failed=1
lost=$(grep -m1 "restart 1/" "$out/partition.log" | sed 's/^vae-dist supervise: //' || true)
ranks_end=$([[ -n "$ended" ]] && elapsed "$cut_at" "$ended" || echo "?")
report partition "exit $status; ${lost:0:60}" "$bits" "ranks ended ${ranks_end} s after the cut (timeout $timeout)" \
  "restarted $(elapsed "$cut_at" "$restarted") s after the cut" "$(step_ms "$out/partition") ms"
[[ "$ranks_end" != "?" ]] && awk -v e="$ranks_end" -v t="$timeout" 'BEGIN { exit !(e <= t + 2) }' || failed=1

# 4. A thin link: every host's link held to 1 Gbit/s; bench's phases per step, before and after.
bench() { on_hosts bench --warmup 5 --steps "$((short ? 15 : 40))" --json 2>"$out/bench-$1.log" | tail -1; }
phases() { python3 -c "import json,sys; r=json.loads(sys.argv[1]); s=r['secondsPerStep']; print(round(1000*sum(s.values()),1), round(1000*(s.get('reduction',0)+s.get('waiting',0)),1))" "$1"; }
# Each step checked: a here-string of a failed command would hide the failure.
json=$(bench clean) && measured=$(phases "$json") ||
  { echo "network-chaos: bench on the clean links failed; see $out/bench-clean.log" >&2; exit 1; }
read -r clean_step clean_reduce <<<"$measured"
thin_on
json=$(bench thin) && measured=$(phases "$json") ||
  { echo "network-chaos: bench on the thin links failed; see $out/bench-thin.log" >&2; exit 1; }
read -r thin_step thin_reduce <<<"$measured"
thin_off
report thin "1 Gbit/s links (tc tbf)" "n/a" "(no fault to heal)" \
  "step $clean_step → $thin_step ms, allreduce $clean_reduce → $thin_reduce ms" "$thin_step ms"

{ echo "$setting"; echo; printf '%s\n' "${results[@]}"; } >"$out/results.md"
echo "network-chaos: wrote $out/results.md; logs in $out/*.log"
((failed == 0)) && echo "network-chaos: every case ended on the bits of one process" || echo "network-chaos: a case failed (see above)" >&2
exit "$failed"
