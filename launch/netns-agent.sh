#!/usr/bin/env bash
# Open MPI's remote-shell agent for the namespace test hosts (launch/netns-hosts.sh): where ssh would
# log in to HOST and run COMMAND in a shell, this runs COMMAND in the network namespace that owns
# HOST's address, under a UTS namespace named after it (so MPI_Get_processor_name tells hosts apart).
#
#   netns-agent.sh HOST COMMAND…      (as mpirun --mca plm_rsh_agent calls it)
set -euo pipefail
host="$1"
shift
# Like ssh, fail (255) when the host cannot be reached over the network: a partition made with
# nftables (launch/network-chaos.sh) then looks to mpirun and to `vae-dist supervise` as it would on a
# cluster. Three pings, one answer is enough (a lossy link is not a cut one).
if command -v ping >/dev/null && ! ping -q -c 3 -i 0.2 -W 1 "$host" >/dev/null 2>&1; then
  echo "netns-agent: $host does not answer over the network" >&2
  exit 255
fi
for ns in $(ip netns list | awk '{print $1}'); do
  if ip netns exec "$ns" ip -o -4 addr show | grep -q " inet $host/"; then
    exec ip netns exec "$ns" unshare --uts /bin/sh -c "hostname $ns && exec /bin/sh -c \"\$0\"" "$*"
  fi
done
echo "netns-agent: no namespace holds the address $host (run launch/netns-hosts.sh up)" >&2
exit 255
