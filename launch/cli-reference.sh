#!/usr/bin/env bash
# Prints docs/cli.md from the built binary's help: launch/cli-reference.sh > docs/cli.md
# (a test checks that the committed file matches).
set -euo pipefail
case "${1:-}" in
  "") ;;
  -h | --help) source "$(dirname "$0")/args.sh"; usage_of "$0"; exit 0 ;;
  *) echo "cli-reference: takes no arguments (got '$1'); it prints the reference: launch/cli-reference.sh > docs/cli.md" >&2; exit 2 ;;
esac
binary="${VAE_DIST_BINARY:-$(cd "$(dirname "$0")/.." && pwd)/.build/release/vae-dist}"
# Checked first: a missing binary must not leave a header that passes for a reference.
[[ -x "$binary" ]] || { echo "cli-reference: $binary is not built; run launch/setup.sh first (a redirect has emptied its file: git checkout docs/cli.md)" >&2; exit 1; }
echo "# Command-line reference"
echo
echo "Generated from \`vae-dist help\` (regenerate after changing an option: \`launch/cli-reference.sh > docs/cli.md\`)."
for command in "" train evaluate sample reconstruct interpolate latent-scatter manifold plot-metrics plot-csv supervise bench; do
  echo
  echo "## vae-dist ${command:-(overview)}"
  echo
  echo '```'
  if [[ -z "$command" ]]; then COLUMNS=100 "$binary" --help; else COLUMNS=100 "$binary" help "$command"; fi
  echo '```'
done
