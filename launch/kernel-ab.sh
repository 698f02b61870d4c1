#!/usr/bin/env bash
# The direct kernels of the working tree (A) against those of a git revision (B), pass by pass, on a
# noisy host: both builds are linked into one program (launch/kernel-ab.c; B's symbols renamed) that
# calls them alternately, A B then B A, on one micro-batch of every window and weight-gradient pass of
# the model, with the caches flushed down to L3 before each call. A neighbour's burst then slows both
# alike, and the per-round ratio A/B stays true where whole-process pairs drown a few percent in
# noise. Prints the CPU (family, model, ISA), per pass both builds' mean GFLOP/s, the median and
# quartiles of the ratios A/B (< 1: A is faster) and whether A and B wrote the same bits, then the
# whole micro-batch's time ratio. Exits 1 if any pass's bits differ (a change meant to keep them).
# Both builds use the compiler and flags of the release build (SwiftPM's -O2), and every function
# starts on a 64-byte line (-falign-functions=64), as the kernels do in the release build since
# 1e62cab (VDK_KERNEL): for a base before it, where the linker put each build's window kernels
# modulo 64 would otherwise decide up to 15% of their time on a Zen 3 (the same source against
# itself read 1.06, its window passes 1.09-1.15; docs/kernels.md). Pinned to one core (by
# default the first this process may use). B is called through A's CKernels.h: the kernels' API must
# be the same at both (the script says so when the headers differ). Without --out it builds in a
# temporary directory, removed at the end.
#
#   launch/kernel-ab.sh [--base HEAD] [--rounds 200] [--evict-mib 2] [--kernels NAME] [--precision fp32|bf16] [--core N] [--out DIR]
# Any failed step ends the script: the program it links must never be an earlier run's.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/launch/args.sh"
base=HEAD rounds=200 evict_mib=2 kernels="" precision=fp32 core="" out=""
while (($#)); do
  case "$1" in
    --base) base="$(value_of kernel-ab "$1" "${2-}")"; shift 2 ;;
    --rounds) rounds="$(value_of kernel-ab "$1" "${2-}")"; shift 2 ;;
    --evict-mib) evict_mib="$(value_of kernel-ab "$1" "${2-}")"; shift 2 ;;
    --kernels) kernels="$(value_of kernel-ab "$1" "${2-}")"; shift 2 ;;
    --precision) precision="$(value_of kernel-ab "$1" "${2-}")"; shift 2 ;;
    --core) core="$(value_of kernel-ab "$1" "${2-}")"; shift 2 ;;
    --out) out="$(value_of kernel-ab "$1" "${2-}")"; shift 2 ;;
    -h|--help) usage_of "$0"; exit 0 ;;
    *) echo "kernel-ab: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "kernel-ab: --rounds must be a positive integer, not '$rounds'" >&2; exit 2; }
[[ "$evict_mib" =~ ^[0-9]+$ ]] || { echo "kernel-ab: --evict-mib must be a whole number of MiB, not '$evict_mib'" >&2; exit 2; }
# The lowest processor this process may use (the list is in ascending order; no python3 needed).
core="${core:-$(awk '/^Cpus_allowed_list:/ {split($2, first, /[-,]/); print first[1]}' /proc/self/status)}"
[[ "$core" =~ ^[0-9]+$ ]] || { echo "kernel-ab: --core must be a processor number, not '$core'" >&2; exit 2; }
[[ "$precision" == fp32 || "$precision" == bf16 ]] || { echo "kernel-ab: --precision must be fp32 or bf16, not '$precision'" >&2; exit 2; }
# Checked before the builds (a minute): the name (whether this CPU runs it, the program says), the core.
case "${kernels:-default}" in default | avx512 | avx2 | avx512_on_avx2 | portable) ;;
  *) echo "kernel-ab: --kernels must be avx512, avx2, avx512_on_avx2 or portable, not '$kernels'" >&2; exit 2 ;;
esac
taskset -c "$core" true 2>/dev/null || { echo "kernel-ab: --core $core is not a processor this process may use ($(grep Cpus_allowed_list /proc/self/status | cut -f2))" >&2; exit 2; }
git -C "$root" rev-parse --verify "$base^{commit}" >/dev/null ||
  { echo "kernel-ab: --base $base is not a revision of $root (git says why above)" >&2; exit 2; }
clang=/opt/swift/usr/bin/clang
[[ -x "$clang" ]] || clang="$(command -v clang || true)"
[[ -n "$clang" ]] || { echo "kernel-ab: no clang (the Swift toolchain's, /opt/swift/usr/bin/clang, builds the kernels)" >&2; exit 1; }
"$root/launch/install-packages.sh" kernel-ab binutils util-linux  # nm and objcopy; taskset
# The output directory is emptied: only a new one or an earlier output of this script.
if [[ -z "$out" ]]; then
  out="$(mktemp -d /tmp/vae-dist-kernel-ab.XXXXXX)"
  trap 'rm -rf "$out"' EXIT  # both builds and the program: kept only under --out
elif [[ -d "$out" && -n "$(ls -A "$out")" && ! -f "$out/.kernel-ab" ]]; then
  echo "kernel-ab: --out $out holds other files; give a new or empty directory" >&2
  exit 2
fi
rm -rf "${out:?}/a" "${out:?}/b" && mkdir -p "$out/a" "$out/b" && touch "$out/.kernel-ab"
cp -R "$root/Sources/_CKernels/." "$out/a/"
git -C "$root" archive "$base" Sources/_CKernels | tar -x -C "$out/b" --strip-components=2 ||
  { echo "kernel-ab: could not unpack Sources/_CKernels of $base into $out/b (git or tar says why above)" >&2; exit 1; }
cmp -s "$out/a/include/CKernels.h" "$out/b/include/CKernels.h" ||
  echo "kernel-ab: CKernels.h differs at $base; B is called through the working tree's declarations" >&2
# The two builds compile at once (the direct kernels take about 27 s of a Zen 1's core each), before
# anything is timed. Under --kernels NAME the kernels' builds of other variants (direct_*.c other than
# direct.c and direct_NAME*.c, at revisions since 2026-12-04) are linked but never called: they
# compile without optimization, in 1 s each instead of 3-5.
optimization() {
  local file="${1##*/}"
  if [[ -n "$kernels" && "$file" == direct_*.c && "$file" != "direct_$kernels"* ]]; then echo -O0; else echo -O2; fi
}
pids=()
for build in a b; do
  for source in "$out/$build"/*.c; do
    "$clang" "$(optimization "$source")" -fno-omit-frame-pointer -falign-functions=64 -I "$out/$build/include" -c "$source" -o "${source%.c}.o" &
    pids+=($!)
  done
done
for pid in "${pids[@]}"; do
  if ! wait "$pid"; then
    kill "${pids[@]}" 2>/dev/null || true  # some have ended already
    echo "kernel-ab: a build failed: fix what clang reports above (in the working tree, or pick another --base)" >&2
    exit 1
  fi
done
# Every vdk_* symbol B defines (functions; at revisions before 2026-12-03 also the ifuncs of its
# target_clones and their resolvers) becomes
# B_vdk_*, and so do B's calls to them: no call of B may reach A's code.
nm --defined-only "$out"/b/*.o | awk '$3 ~ /^vdk_/ {print $3 " B_" $3}' | sort -u >"$out/b/symbols"
for object in "$out"/b/*.o; do
  objcopy --redefine-syms="$out/b/symbols" "$object" ||
    { echo "kernel-ab: objcopy could not rename B's symbols in $object" >&2; exit 1; }
done
if nm -u "$out"/b/*.o | awk '$2 ~ /^vdk_/ {found = 1; print "kernel-ab: B still calls " $2 > "/dev/stderr"} END {exit !found}'; then
  exit 1
fi
rm -f "$out/kernel-ab"
"$clang" -O2 -I "$out/a/include" "$root/launch/kernel-ab.c" "$out"/a/*.o "$out"/b/*.o -o "$out/kernel-ab" -lm ||
  { echo "kernel-ab: linking A and B failed (clang says why above)" >&2; exit 1; }

echo "kernel-ab: $("$root/launch/cpu-line.sh"); core $core; A = the working tree, B = $base ($(git -C "$root" rev-parse --short "$base")); $rounds rounds, caches flushed with $evict_mib MiB before each call"
taskset -c "$core" "$out/kernel-ab" "$rounds" $((evict_mib * 1048576)) "${kernels:-default}" "$precision"
