#!/usr/bin/env bash
# Installs those of the named Debian packages that are missing (apt-get; through sudo when not root),
# saying which in the caller's name; does nothing when every one is installed. The launch scripts'
# one way to install what they need.
#   launch/install-packages.sh CALLER PACKAGE...
set -euo pipefail
(($# >= 1)) || { echo "usage: $0 CALLER PACKAGE..." >&2; exit 2; }
caller="$1"
shift
missing=()
for package in "$@"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
((${#missing[@]})) || exit 0
echo "$caller: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || {
    echo "$caller: ${missing[*]} must be installed, which needs root: run this as root, or install sudo" >&2
    exit 1
  }
  sudo="sudo"
fi
$sudo apt-get update -qq
# Through env: sudo's env_reset would drop a DEBIAN_FRONTEND set in front of it (env alone runs
# apt-get as is when sudo is "").
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
