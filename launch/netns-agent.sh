#!/usr/bin/env bash
# Open MPI's remote-shell agent for the namespace test hosts (launch/netns-hosts.sh): where ssh would
# log in to HOST and run COMMAND in a shell, this runs COMMAND in the network namespace that owns
# HOST's address, under a UTS namespace named after it (so MPI_Get_processor_name tells hosts apart).
#
#   netns-agent.sh HOST COMMAND…      (as mpirun --mca plm_rsh_agent calls it)
set -euo pipefail
host="$1"
shift
for ns in $(ip netns list | awk '{print $1}'); do
  if ip netns exec "$ns" ip -o -4 addr show | grep -q " inet $host/"; then
    exec ip netns exec "$ns" unshare --uts /bin/sh -c "hostname $ns && exec /bin/sh -c \"\$0\"" "$*"
  fi
done
echo "netns-agent: no namespace holds the address $host (run launch/netns-hosts.sh up)" >&2
exit 255
