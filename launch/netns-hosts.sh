#!/usr/bin/env bash
# Builds (or removes) N test "hosts" on this machine: Linux network namespaces vae-h1…vae-hN, each
# with its own address 10.213.0.(10+i)/24 on a veth pair joined by a bridge vae-br0 (10.213.0.1)
# in the root namespace, where mpirun runs. Only these addresses are used. Needs root.
#
#   launch/netns-hosts.sh up [N=2]     create (idempotent), print the host addresses
#   launch/netns-hosts.sh down         remove every vae-h* host and the bridge
#   launch/netns-hosts.sh check        exit 0 if this kernel lets us create namespaces
set -euo pipefail
action="${1:-up}"
count="${2:-2}"
subnet=10.213.0
bridge=vae-br0
# bridge-nf-call-iptables before the first `up` turned it off, for `down` to put back.
knob=/proc/sys/net/bridge/bridge-nf-call-iptables saved=/run/vae-dist-netns-bridge-nf-call-iptables

address() { echo "$subnet.$((10 + $1))"; }
[[ "$count" =~ ^[1-9][0-9]?$ && "$count" -le 50 ]] || { echo "netns-hosts: N must be a number of hosts from 1 to 50 (got '$count')" >&2; exit 2; }

case "$action" in
  check)
    probe="vae-probe-$$"
    ip netns add "$probe" 2>/dev/null && ip netns del "$probe" && exit 0
    exit 1
    ;;
  up)
    if ! ip link show "$bridge" >/dev/null 2>&1; then
      ip link add "$bridge" type bridge
      ip addr add "$subnet.1/24" dev "$bridge"
    fi
    ip link set "$bridge" up
    # Bridged frames must not be filtered by a host firewall that drops forwarding. (A second `up`
    # keeps the value saved by the first.)
    if [[ -w "$knob" ]]; then
      [[ -f "$saved" ]] || cat "$knob" >"$saved"
      echo 0 >"$knob"
    fi
    for i in $(seq 1 "$count"); do
      ns="vae-h$i"
      # A host is made once its eth0 has its address; one that setup left half-made (stopped
      # part-way) is removed and made again.
      made=$(ip netns exec "$ns" ip -o -4 addr show dev eth0 2>/dev/null || true)
      if [[ "$made" != *" inet $(address "$i")/"* ]]; then
        ip netns del "$ns" 2>/dev/null || true
        ip link del "$ns-a" 2>/dev/null || true
        ip netns add "$ns"
        ip link add "$ns-a" type veth peer name "$ns-b"
        ip link set "$ns-b" netns "$ns"
        ip netns exec "$ns" ip link set "$ns-b" name eth0
        ip netns exec "$ns" ip addr add "$(address "$i")/24" dev eth0
      fi
      ip link set "$ns-a" master "$bridge"  # also after the bridge itself was made again
      ip link set "$ns-a" up
      ip netns exec "$ns" ip link set lo up
      ip netns exec "$ns" ip link set eth0 up
      echo "$(address "$i") $ns"
    done
    ;;
  down)
    # Every host an earlier `up` made, whatever its N (a second argument is accepted and not needed).
    for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^vae-h[0-9]+$/ { print $1 }'); do
      ip netns del "$ns" 2>/dev/null || true
      ip link del "$ns-a" 2>/dev/null || true
    done
    ip link del "$bridge" 2>/dev/null || true
    if [[ -f "$saved" ]]; then
      cat "$saved" >"$knob" 2>/dev/null || true
      rm -f "$saved"
    fi
    ;;
  *)
    echo "usage: $0 up|down [N] | check" >&2
    exit 2
    ;;
esac
