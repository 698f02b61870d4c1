#!/usr/bin/env bash
# The avx512 kernels on AVX-512 CPUs this host does not have: boots Debian's kernel in Bochs 3.0 with
# vae-dist in its initramfs, trains there, and compares model.safetensors bit for bit with the same
# run on this CPU. Two emulated CPUs, one boot each:
#   sapphire-rapids  AVX-512 with AVX512_BF16: fp32 on the avx512 kernels, bf16 on their native
#                    VDPBF16PS kernels (the banner must say "native: VDPBF16PS");
#   skylake-x        AVX-512 without AVX512_BF16: fp32 on the avx512 kernels, bf16 emulated on them.
# Each boot runs `train --max-steps 3 --batch-size 32 --seed 3 --threads 1` on the first 256 training
# and 32 test images of Fashion-MNIST in fp32 and in bf16. Prints this CPU (family, model, ISA), each
# emulated CPU's flags, each run's banner and both hashes; exits 1 if a hash or a banner is not as it
# must be. About 5 minutes a CPU on one core (Bochs interprets every instruction), plus about 2 to
# build Bochs the first time: a script to run when the kernels change, not part of the test command.
# Bochs and the kernel come from Debian 13: Bochs 3.0 built by launch/bochs-build.sh (with one fix),
# the kernel package downloaded and unpacked, not installed. Needs the network to Debian.
#
#   launch/avx512-emulated.sh [--cpu sapphire-rapids|skylake-x|both] [--out DIR] [--timeout SECONDS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/launch/args.sh"
out=/tmp/vae-dist-avx512-emulated timeout=5400 cpus="sapphire-rapids skylake-x"
while (($#)); do
  case "$1" in
    --cpu)
      case "${2:-}" in
        sapphire-rapids|skylake-x) cpus="$2" ;;
        both) cpus="sapphire-rapids skylake-x" ;;
        *) echo "avx512-emulated: --cpu must be sapphire-rapids, skylake-x or both, not '${2:-}'" >&2; exit 2 ;;
      esac
      shift 2 ;;
    --out) out="$(value_of avx512-emulated "$1" "${2-}")"; shift 2 ;;
    --timeout) timeout="$(value_of avx512-emulated "$1" "${2-}")"; shift 2 ;;
    -h|--help) usage_of "$0"; exit 0 ;;
    *) echo "avx512-emulated: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$timeout" =~ ^[1-9][0-9]*$ ]] || { echo "avx512-emulated: --timeout must be a positive integer, not '$timeout'" >&2; exit 2; }

"$root/launch/install-packages.sh" avx512-emulated bochsbios vgabios isolinux syslinux-common genisoimage \
  busybox-static cpio python3
[[ -n "${VAE_DIST_BINARY:-}" ]] || "$root/launch/setup.sh" >/dev/null
binary="$(realpath -m -- "${VAE_DIST_BINARY:-$root/.build/release/vae-dist}")"
out="$(realpath -m -- "$out")"  # absolute: the script works inside it (cd) and names its files to Bochs
bochs=$("$root/launch/bochs-build.sh")

# --out is emptied first: refuse a directory that holds anything but an earlier run of this script.
if [[ -d "$out" && -n "$(ls -A "$out")" && ! -f "$out/.avx512-emulated" && ! -f "$out/initrd/init" ]]; then
  echo "avx512-emulated: --out $out is not empty and not an earlier output of this script; give another directory" >&2
  exit 2
fi
rm -rf "$out" && mkdir -p "$out" && touch "$out/.avx512-emulated" && mkdir -p "$out"/{initrd/{bin,data,proc,sys,dev,tmp,out,lib64},iso/isolinux,here,kernel,apt/lists/partial}
cd "$out"

# The kernel: Debian 13's current image, unpacked from its package rather than installed, through an
# apt configuration of its own. (Debian 12's 6.1 hangs on the emulated Sapphire Rapids after "LSM:
# Security Framework initializing"; 6.12 boots both CPUs.)
echo 'deb http://deb.debian.org/debian trixie main' >apt/sources.list
apt_options=(-o Dir::Etc::SourceList="$out/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o Dir::State::Lists="$out/apt/lists" -o Dir::Cache="$out/apt" -o Dir::State::Status=/dev/null)
apt-get "${apt_options[@]}" update -qq
kernel_package=$(apt-cache "${apt_options[@]}" depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[[ -n "$kernel_package" ]] || { echo "avx512-emulated: no Debian 13 kernel package found; this needs the network to deb.debian.org" >&2; exit 1; }
chmod 777 kernel  # apt-get downloads as its own user
(cd kernel && apt-get "${apt_options[@]}" download -qq "$kernel_package" && dpkg-deb -x ./*.deb .)
cp kernel/boot/vmlinuz-* iso/vmlinuz

# The data: the first 256 training and 32 test images, as plain IDX files.
python3 - "$out/initrd/data" <<'PY'
import gzip, struct, sys
source, target = "/usr/share/datasets/fashion-mnist/", sys.argv[1]
for name, n in [("train-images-idx3-ubyte", 256), ("train-labels-idx1-ubyte", 256),
                ("t10k-images-idx3-ubyte", 32), ("t10k-labels-idx1-ubyte", 32)]:
    data = gzip.open(source + name + ".gz").read()
    dims = struct.unpack(">" + "I" * (data[3]), data[4:4 + 4 * data[3]])
    size = 1
    for d in dims[1:]:
        size *= d
    header = data[:4] + struct.pack(">" + "I" * len(dims), n, *dims[1:])
    open(f"{target}/{name}", "wb").write(header + data[4 + 4 * len(dims):][:n * size])
PY
run=(train --data DATA --max-steps 3 --batch-size 32 --seed 3 --iw-samples 0 --threads 1 --tensorboard none --progress none)

# The same runs on this CPU, with its default kernels.
for p in fp32 bf16; do
  "$binary" "${run[@]/DATA/$out/initrd/data}" --precision "$p" --out "here/$p" >"here/$p.log" 2>&1 ||
    { echo "avx512-emulated: the $p run on this CPU failed; see $out/here/$p.log" >&2; exit 1; }
  sha256sum "here/$p/model.safetensors" | cut -d' ' -f1 >"here/$p.sha256"
done

# The initramfs: vae-dist, the libraries it loads, busybox, and an init that runs both and powers off.
cp "$binary" initrd/bin/vae-dist
cp /bin/busybox initrd/bin/busybox
for library in $(ldd "$binary" | awk '$3 ~ /^\// {print $3}'); do
  mkdir -p "initrd$(dirname "$library")" && cp -L "$library" "initrd$library"
done
cp -L /lib64/ld-linux-x86-64.so.2 initrd/lib64/
find initrd -name '*.so*' -type f -exec strip --strip-unneeded {} + 2>/dev/null || true
strip initrd/bin/vae-dist 2>/dev/null || true
library_path=$(ldd "$binary" | awk '$3 ~ /^\// {print $3}' | xargs -n1 dirname | sort -u | paste -sd:)
cat >initrd/init <<EOF
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
/bin/busybox mount -t tmpfs out /out
export PATH=/bin LD_LIBRARY_PATH=$library_path HOME=/tmp
echo "VDK flags \$(/bin/busybox grep -m1 '^flags' /proc/cpuinfo | /bin/busybox tr ' ' '\n' | /bin/busybox grep -E '^(avx|fma)' | /bin/busybox tr '\n' ' ')"
for p in fp32 bf16; do
  /bin/vae-dist ${run[*]/DATA//data} --precision \$p --out /out/\$p 2>&1 | /bin/busybox sed "s/^/VDK \$p | /"
  echo "VDK sha256 \$p \$(/bin/busybox sha256sum /out/\$p/model.safetensors | /bin/busybox cut -d' ' -f1)"
done
echo "VDK done"
/bin/busybox poweroff -f
EOF
chmod +x initrd/init
(cd initrd && find . | cpio -o -H newc 2>/dev/null) >iso/initrd
cp /usr/lib/ISOLINUX/isolinux.bin iso/isolinux/
cp /usr/lib/syslinux/modules/bios/ldlinux.c32 iso/isolinux/
# Linux checks the XSAVE layout that CPUID describes and turns XSAVE off (and AVX with it) on any
# mismatch. Bochs 2.7 claimed PKU without describing its state (leaf 0xD, 9 was empty), and gave the
# standard layout's size for the compacted format: clearcpuid=pku,xsaves,xsavec leaves the standard
# format with x87, SSE, AVX and the three AVX-512 components. ibt=off keeps the kernel off CET's
# branch tracking.
cat >iso/isolinux/isolinux.cfg <<'EOF'
DEFAULT vdk
PROMPT 0
TIMEOUT 0
LABEL vdk
  KERNEL /vmlinuz
  APPEND initrd=/initrd console=ttyS0,115200 clearcpuid=pku,xsaves,xsavec ibt=off no5lvl nokaslr mitigations=off rdinit=/init
EOF
genisoimage -quiet -o emulated.iso -b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 \
  -boot-info-table -J -R iso
declare -A bochs_model=([sapphire-rapids]=sapphire_rapids [skylake-x]=corei7_skylake_x)
for cpu in $cpus; do
  cat >"bochsrc-$cpu" <<EOF
display_library: nogui
megs: 1536
cpu: model=${bochs_model[$cpu]}, count=1, ips=100000000, reset_on_triple_fault=0
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/vgabios/vgabios.bin
ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
ata0-master: type=cdrom, path=$out/emulated.iso, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev=$out/serial-$cpu.txt
log: $out/bochs-$cpu.log
panic: action=fatal
info: action=ignore
debug: action=ignore
clock: sync=none, time0=local
EOF
  started=$SECONDS
  echo "avx512-emulated: booting the emulated $cpu (progress: tail -f $out/serial-$cpu.txt)"
  timeout "$timeout" "$bochs" -q -f "$out/bochsrc-$cpu" >"bochs-$cpu.out" 2>&1 </dev/null || true
  echo "avx512-emulated: the emulated $cpu ran for $((SECONDS - started)) s"
done

echo "this CPU: $("$root/launch/cpu-line.sh")"
python3 - "$out" $cpus <<'PY'
import os, sys
out, cpus = sys.argv[1], sys.argv[2:]
# What each run's banner must say after "kernels": the avx512 variant, and how bf16 runs there.
expected = {"sapphire-rapids": {"fp32": "avx512, fp32", "bf16": "avx512, bf16 (native: VDPBF16PS)"},
            "skylake-x": {"fp32": "avx512, fp32", "bf16": "avx512, bf16 (emulated: this CPU lacks AVX512_BF16)"}}
ok = True
for c in cpus:
    path = f"{out}/serial-{c}.txt"
    serial = open(path, errors="replace").read() if os.path.exists(path) else ""
    lines = [l[4:] for l in serial.splitlines() if l.startswith("VDK ")]
    flags = next((l[6:] for l in lines if l.startswith("flags ")), None)
    if flags is None:
        print(f"emulated {c}: never ran vae-dist; see {path} and {out}/bochs-{c}.log")
        ok = False
        continue
    print(f"emulated {c} (Bochs 3.0): {flags}")
    for p in ("fp32", "bf16"):
        banner = next((l for l in lines if l.startswith(f"{p} |") and " mode " in l), "")
        kernels = banner.split("kernels", 1)[-1].strip() if "kernels" in banner else "(no banner)"
        print(f"  {p}: kernels {kernels}")
        emulated = next((l.split()[2] for l in lines if l.startswith(f"sha256 {p} ") and len(l.split()) > 2), "none")
        here = open(f"{out}/here/{p}.sha256").read().strip()
        same = emulated == here
        print(f"    model.safetensors  emulated {emulated[:16]}…  here {here[:16]}…  {'same bits' if same else 'DIFFERENT'}")
        if kernels != expected[c][p]:
            print(f"    the banner should say: kernels {expected[c][p]}")
        ok &= same and kernels == expected[c][p]
print("avx512-emulated: " + ("the avx512 kernels give this CPU's bits" if ok else "FAILED"))
sys.exit(0 if ok else 1)
PY
