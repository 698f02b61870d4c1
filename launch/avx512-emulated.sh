#!/usr/bin/env bash
# The avx512 kernels on an AVX-512 CPU that this host does not have: boots Debian's kernel in Bochs
# 2.7 (CPU model corei7_skylake_x: AVX-512 F, CD, BW, DQ, VL; no AVX512_BF16) with vae-dist in its
# initramfs, trains there, and compares model.safetensors bit for bit with the same run on this CPU.
#
# Two runs, each `train --max-steps 3 --batch-size 32 --seed 3 --threads 1` on the first 256 training
# and 32 test images of Fashion-MNIST: fp32, where the emulated CPU picks the avx512 variant (its
# 512-bit code on real AVX-512 instructions), and bf16, which an AVX-512 CPU without AVX512_BF16 runs
# emulated. Prints this CPU (family, model, ISA), the emulated CPU's AVX flags, each run's banner and
# both hashes; exits 1 if a hash differs or the fp32 run did not use the avx512 variant. Takes about
# 12 minutes on one core (Bochs interprets every instruction), so it is a script to run when the
# kernels change, not part of the test command. Needs the network for apt-get (bochs, isolinux,
# genisoimage, busybox-static, and the kernel package, downloaded and unpacked, not installed).
#
#   launch/avx512-emulated.sh [--out DIR] [--timeout SECONDS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out=/tmp/vae-dist-avx512-emulated timeout=5400
while (($#)); do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --timeout) timeout="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "avx512-emulated: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$timeout" =~ ^[1-9][0-9]*$ ]] || { echo "avx512-emulated: --timeout must be a positive integer, not '$timeout'" >&2; exit 2; }

"$root/launch/install-packages.sh" avx512-emulated bochs bochsbios vgabios bochs-term isolinux syslinux-common \
  genisoimage busybox-static cpio python3
[[ -n "${VAE_DIST_BINARY:-}" ]] || "$root/launch/setup.sh" >/dev/null
binary="${VAE_DIST_BINARY:-$root/.build/release/vae-dist}"

rm -rf "$out" && mkdir -p "$out"/{initrd/{bin,data,proc,sys,dev,tmp,out,lib64},iso/isolinux,here,kernel}
cd "$out"

# The kernel: Debian's current image, unpacked from its package rather than installed.
kernel_package=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
chmod 777 kernel  # apt-get downloads as its own user
(cd kernel && apt-get download -qq "$kernel_package" && dpkg-deb -x ./*.deb .)
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
  "$binary" "${run[@]/DATA/$out/initrd/data}" --precision "$p" --out "here/$p" >"here/$p.log" 2>&1
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
# Linux 6.1 checks the XSAVE layout that CPUID describes and turns XSAVE off (and AVX with it) on any
# mismatch. Bochs 2.7 claims PKU without describing its state (leaf 0xD, 9 is empty), and gives the
# standard layout's size for the compacted format: clearcpuid=pku,xsaves,xsavec leaves the standard
# format with x87, SSE, AVX and the three AVX-512 components, which it describes right. The model:
# tigerlake (which adds CET and more) crashed the kernel early in its start-up; corei7_skylake_x
# boots. ibt=off keeps the kernel off CET's branch tracking on any model.
cat >iso/isolinux/isolinux.cfg <<'EOF'
DEFAULT vdk
PROMPT 0
TIMEOUT 0
LABEL vdk
  KERNEL /vmlinuz
  APPEND initrd=/initrd console=ttyS0,115200 clearcpuid=pku,xsaves,xsavec ibt=off nokaslr mitigations=off rdinit=/init
EOF
genisoimage -quiet -o emulated.iso -b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 \
  -boot-info-table -J -R iso
cat >bochsrc <<EOF
display_library: term
megs: 1536
cpu: model=corei7_skylake_x, count=1, ips=100000000, reset_on_triple_fault=0
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/vgabios/vgabios.bin
ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
ata0-master: type=cdrom, path=$out/emulated.iso, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev=$out/serial.txt
log: $out/bochs.log
panic: action=fatal
info: action=ignore
debug: action=ignore
clock: sync=none, time0=local
EOF
echo c >bochs-commands  # the Debian build starts in its debugger: continue at once

started=$SECONDS
echo "avx512-emulated: booting the emulated CPU (progress: tail -f $out/serial.txt)"
# Bochs's text display writes the guest's screen to a new pseudo-terminal and blocks when nobody
# reads it: a reader is started as soon as Bochs names it.
timeout "$timeout" script -q -c "bochs -q -f $out/bochsrc -rc $out/bochs-commands" /dev/null >bochs.out 2>&1 </dev/null &
bochs_job=$!
reader=""
for _ in $(seq 60); do
  screen=$(grep -a -o 'screen "/dev/pts/[0-9]*"' bochs.out 2>/dev/null | grep -o '/dev/pts/[0-9]*' || true)
  if [[ -n "$screen" ]]; then
    setsid cat "$screen" >/dev/null 2>&1 &
    reader=$!
    disown "$reader"
    break
  fi
  sleep 1
done
[[ -n "$reader" ]] || { echo "avx512-emulated: Bochs did not start; see $out/bochs.out" >&2; kill $bochs_job 2>/dev/null; exit 1; }
while kill -0 $bochs_job 2>/dev/null && ! grep -q 'VDK done' serial.txt 2>/dev/null; do sleep 10; done
sleep 2
pkill -f "bochs-bin.* -f $out/bochsrc" 2>/dev/null || true  # the wrapper adds a second -q
kill "$reader" 2>/dev/null || true
echo "avx512-emulated: the emulated machine ran for $((SECONDS - started)) s"

python3 - "$out" <<'PY'
import re, sys
out = sys.argv[1]
cpu = open("/proc/cpuinfo").read()
field = lambda name: re.search(rf"^{name}\s*: (.*)$", cpu, re.M).group(1)
isa = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16") if f in field("flags").split()]
print(f"this CPU: {field('model name')} (family {field('cpu family')}, model {field('model')}), {' '.join(isa)}")
serial = open(f"{out}/serial.txt", errors="replace").read() if __import__("os").path.exists(f"{out}/serial.txt") else ""
lines = [l[4:] for l in serial.splitlines() if l.startswith("VDK ")]
flags = next((l[6:] for l in lines if l.startswith("flags ")), None)
if flags is None:
    sys.exit(f"avx512-emulated: the emulated machine never ran vae-dist; see {out}/serial.txt and {out}/bochs.log")
print(f"emulated CPU (Bochs 2.7, corei7_skylake_x): {flags}")
ok = True
for p in ("fp32", "bf16"):
    banner = next((l for l in lines if l.startswith(f"{p} |") and " mode " in l), f"{p} | (no banner)")
    print(f"  {p}: {banner.split('mode', 1)[-1].strip()}")
    emulated = next((l.split()[2] for l in lines if l.startswith(f"sha256 {p} ") and len(l.split()) > 2), "none")
    here = open(f"{out}/here/{p}.sha256").read().strip()
    same = emulated == here
    ok &= same
    print(f"    model.safetensors  emulated {emulated[:16]}…  here {here[:16]}…  {'same bits' if same else 'DIFFERENT'}")
    if p == "fp32" and "kernels avx512," not in banner:
        print("    the fp32 run did not use the avx512 variant")
        ok = False
print("avx512-emulated: " + ("the avx512 kernels give this CPU's bits" if ok else "FAILED"))
sys.exit(0 if ok else 1)
PY
