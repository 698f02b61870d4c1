#!/usr/bin/env bash
# Builds Bochs 3.0 for launch/avx512-emulated.sh and prints the path of its binary: Debian 13's source
# (the upstream tarball, checked against its SHA-256), configured for x86-64 with AVX-512 and no
# display, debugger or plugins (a run takes less than half its time in Debian 12's Bochs 2.7), with
# one fix: Bochs 3.0's VCVTNE2PS2BF16 reads the upper half of its result from elements 16..31 of the
# first source, past the end of a 512-bit register, instead of 0..15 (the SDM: src1.fp32[i - KL/2]).
# Built once into ${XDG_CACHE_HOME:-~/.cache}/vae-dist/bochs-3.0-vdk1; later calls print the path.
#   launch/bochs-build.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/vae-dist"
target="$cache/bochs-3.0-vdk1"
if [[ -x "$target/bochs" ]]; then echo "$target/bochs"; exit 0; fi

"$root/launch/install-packages.sh" bochs-build g++ make curl xz-utils >&2
tarball=bochs_3.0+dfsg.orig.tar.xz
sha256=78f6c73d4a6472d5130a87ab9dc306d02c7c71ed8e25b3a8ef642e2a7acd282b
work="$cache/bochs-3.0-build"
rm -rf "$work" && mkdir -p "$work" && cd "$work"
echo "bochs-build: downloading $tarball from Debian" >&2
curl -fsSL -o "$tarball" "http://deb.debian.org/debian/pool/main/b/bochs/$tarball" || {
  echo "bochs-build: could not download $tarball from deb.debian.org: this needs the network to Debian's" >&2
  echo "  mirror; if Debian no longer has Bochs 3.0, update this script's tarball name and SHA-256" >&2
  exit 1
}
echo "$sha256  $tarball" | sha256sum -c --quiet - >&2 || { echo "bochs-build: $tarball is not the file this script knows" >&2; exit 1; }
tar xf "$tarball"
cd bochs-3.0
wrong='convert_ne_fp32_to_bfloat16(op1.vmm32u(n))'
grep -qF "$wrong" cpu/avx/avx512_bf16.cc || { echo "bochs-build: the VCVTNE2PS2BF16 line to fix is not in cpu/avx/avx512_bf16.cc" >&2; exit 1; }
sed -i "s/$wrong/convert_ne_fp32_to_bfloat16(op1.vmm32u(n - DWORD_ELEMENTS(len)))/" cpu/avx/avx512_bf16.cc  # parentheses are literal in a basic regex
grep -qF 'op1.vmm32u(n - DWORD_ELEMENTS(len))' cpu/avx/avx512_bf16.cc || { echo "bochs-build: the fix did not apply" >&2; exit 1; }
echo "bochs-build: building Bochs 3.0 (about 2 minutes on 2 cores; log: $work/build.log)" >&2
./configure --enable-x86-64 --enable-cpu-level=6 --enable-avx --enable-evex --enable-all-optimizations --enable-pci \
  --enable-cdrom --enable-fpu --enable-a20-pin --with-nogui --without-term --without-x11 --without-wx --without-sdl2 \
  --without-rfb --disable-docbook --disable-plugins >"$work/build.log" 2>&1 ||
  { echo "bochs-build: configure failed; see $work/build.log" >&2; exit 1; }
make -j"$(nproc)" >>"$work/build.log" 2>&1 || { echo "bochs-build: the build failed; see $work/build.log" >&2; exit 1; }
# Copied whole, then renamed: an interrupted copy must not pass the cache's -x check above.
mkdir -p "$target" && cp bochs "$target/bochs.tmp" && mv "$target/bochs.tmp" "$target/bochs"
rm -rf "$work"
echo "$target/bochs"
