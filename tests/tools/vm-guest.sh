#!/usr/bin/env bash
# vm-guest.sh -- build (once) a small Linux guest for the VM tests and print its directory.
#
#   tests/tools/vm-guest.sh [--bench] [DIR]        (default DIR: build/vm-guest)
#
# DIR gets, each built only when missing (so a second run costs nothing):
#   vmlinux         Debian's kernel, uncompressed from the bzImage (QEMU boots it through its PVH
#                   entry, ~2x faster under TCG than letting the guest decompress xz)
#   initramfs.img   busybox-static + the virtio/ext4 modules, inserted in dependency order; its
#                   /init mounts /dev/vda and switch_roots to it
#   rootfs.ext4     a 64 MiB ext4 image (mkfs.ext4 -d) holding busybox and /sbin/init, the guest
#                   program: see "the guest" below
#   kernel-version  the kernel release the modules came from
#   rootfs-bench.ext4  (--bench) a 256 MiB image: the same, plus /bench: 2,000 files, 64 MiB of
#                   random bytes in 40 directories (mkfs spreads them over the block groups)
# A change to this script rebuilds the initramfs and the images (not the kernel).
#
# The kernel is the package linux-image-amd64 depends on, fetched with `apt-get download` and
# unpacked with dpkg-deb, never installed.  Needs: apt-get, dpkg-deb, busybox (static),
# mkfs.ext4 (e2fsprogs), python3.  Exits 1 with the reason when a step fails.
#
# The guest.  /sbin/init reads `snaptest=MODE` from the kernel command line:
#   write   writes /data/file (1 MiB of random bytes) and /data/file.sha256, syncs, prints
#           "VMTEST WROTE <sha256>"
#   check   checks /data/file against /data/file.sha256 and prints "VMTEST CHECK OK <sha256>" or
#           "VMTEST CHECK FAILED"
#   bench   reads every file under /bench (sorted) and prints "VMTEST BENCH <sha256 of them all>"
#   (none)  prints "VMTEST BOOTED"
# Every mode first prints "VMTEST INIT" (the guest reached its init).
# then powers off at once (poweroff -f).  Every line goes to the serial console.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
bench=false
[ "${1:-}" != --bench ] || { bench=true; shift; }
DIR=${1:-$TOP/build/vm-guest}
mkdir -p "$DIR"
stamp=$(sha256sum "$0" | cut -d' ' -f1)
if [ "$(cat "$DIR/guest-stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -f "$DIR/initramfs.img" "$DIR/rootfs.ext4" "$DIR/rootfs-bench.ext4"
fi
fail() { echo "vm-guest.sh: $*" >&2; exit 1; }
for p in apt-get dpkg-deb busybox mkfs.ext4 python3; do
    command -v $p >/dev/null || fail "$p is required"
done
BUSYBOX=$(command -v busybox)
! ldd "$BUSYBOX" >/dev/null 2>&1 || fail "$BUSYBOX is not static: apt-get install busybox-static"

W=$(mktemp -d "${TMPDIR:-/tmp}/vm-guest.XXXXXX")
trap 'rm -rf "$W"' EXIT

# ---- the kernel and its modules ------------------------------------------------------------
if [ ! -s "$DIR/vmlinux" ] || [ ! -s "$DIR/modules.tar" ]; then
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
    [ -n "$pkg" ] || fail "apt-cache cannot say which kernel linux-image-amd64 points at: run apt-get update"
    (cd "$W" && apt-get download "$pkg" >/dev/null 2>"$W/apt.err") ||
        { cat "$W/apt.err" >&2; fail "apt-get download $pkg failed"; }
    deb=$(ls "$W"/*.deb)
    mkdir "$W/k"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$W/k" --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/drivers/virtio' \
        './lib/modules/*/kernel/drivers/block/virtio_blk.ko' './lib/modules/*/kernel/fs' \
        './lib/modules/*/kernel/lib' './lib/modules/*/kernel/crypto' './lib/modules/*/kernel/arch/x86/crypto' \
        2>/dev/null || true
    vmlinuz=$(ls "$W"/k/boot/vmlinuz-* 2>/dev/null | head -1)
    [ -n "$vmlinuz" ] || fail "no boot/vmlinuz-* in $deb"
    kver=${vmlinuz##*/vmlinuz-}
    # The bzImage's payload: the first xz stream (or gzip/zstd) that unpacks to an ELF image.
    python3 - "$vmlinuz" "$W/vmlinux" <<'PY' || fail "cannot uncompress $vmlinuz"
import lzma, gzip, sys, zlib
data = open(sys.argv[1], "rb").read()
def tries():
    i = data.find(b"\xfd7zXZ\x00")
    while i >= 0:
        yield lambda i=i: lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[i:])
        i = data.find(b"\xfd7zXZ\x00", i + 1)
    i = data.find(b"\x1f\x8b\x08\x00")
    while i >= 0:
        yield lambda i=i: zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[i:])
        i = data.find(b"\x1f\x8b\x08\x00", i + 1)
for t in tries():
    try:
        out = t()
    except Exception:
        continue
    if out[:4] == b"\x7fELF":
        open(sys.argv[2], "wb").write(out)
        sys.exit(0)
sys.exit(1)
PY
    (cd "$W/k" && tar -cf "$W/modules.tar" lib)
    mv "$W/vmlinux" "$DIR/vmlinux.tmp" && mv "$DIR/vmlinux.tmp" "$DIR/vmlinux"
    mv "$W/modules.tar" "$DIR/modules.tar"
    echo "$kver" >"$DIR/kernel-version"
    rm -f "$DIR/initramfs.img"
fi
kver=$(cat "$DIR/kernel-version")

# ---- the initramfs ---------------------------------------------------------------------------
if [ ! -s "$DIR/initramfs.img" ]; then
    mkdir -p "$W/m" "$W/i/bin" "$W/i/dev" "$W/i/proc" "$W/i/sys" "$W/i/newroot" "$W/i/lib/modules"
    tar -xf "$DIR/modules.tar" -C "$W/m"
    mdir="$W/m/lib/modules/$kver/kernel"
    # Dependency order from each module's depends= in its .modinfo strings (what `modinfo -F
    # depends` prints; the extracted tree has no modules.dep).
    python3 - "$mdir" virtio_pci virtio_blk ext4 crc32c_generic >"$W/order" <<'PY' || fail "module dependencies"
import lzma, os, re, sys
root, wanted = sys.argv[1], sys.argv[2:]
path = {}
for d, _, files in os.walk(root):
    for f in files:
        name = f.split(".ko")[0].replace("-", "_")
        path[name] = os.path.join(d, f)
order, seen = [], set()
def visit(m):
    m = m.replace("-", "_")
    if m in seen:
        return
    seen.add(m)
    if m not in path:
        sys.exit(f"module {m} not in the package (built in?)")
    data = open(path[m], "rb").read()
    if path[m].endswith(".xz"):
        data = lzma.decompress(data)
    found = re.search(rb"\0depends=([^\0]*)\0", data)
    deps = found.group(1).decode() if found else ""
    for d in filter(None, deps.split(",")):
        visit(d)
    order.append(path[m])
for w in wanted:
    visit(w)
print("\n".join(order))
PY
    : >"$W/i/modules.order"
    while read -r ko; do
        base=${ko##*/}
        case $base in
        *.ko.xz) python3 -c 'import lzma,sys; open(sys.argv[2],"wb").write(lzma.open(sys.argv[1]).read())' "$ko" "$W/i/lib/modules/${base%.xz}"; base=${base%.xz} ;;
        *.ko.zst) zstd -qd "$ko" -o "$W/i/lib/modules/${base%.zst}"; base=${base%.zst} ;;
        *) cp "$ko" "$W/i/lib/modules/$base" ;;
        esac
        echo "$base" >>"$W/i/modules.order"
    done <"$W/order"
    cp "$BUSYBOX" "$W/i/bin/busybox"
    cat >"$W/i/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
while read -r m; do insmod /lib/modules/$m || echo "initramfs: insmod $m failed"; done </modules.order
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
mount -t ext4 -o rw /dev/vda /newroot || { echo "VMTEST NO ROOT"; poweroff -f; }
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
EOF
    chmod 755 "$W/i/init"
    (cd "$W/i" && find . | sort | "$BUSYBOX" cpio -o -H newc 2>/dev/null) >"$DIR/initramfs.img.tmp"
    mv "$DIR/initramfs.img.tmp" "$DIR/initramfs.img"
fi

# ---- the root filesystem ---------------------------------------------------------------------
# make_root IMAGE SIZE BENCH: the root filesystem image, with /bench when BENCH is true.
make_root() {
    R="$W/root.$RANDOM"
    mkdir -p "$R/bin" "$R/sbin" "$R/dev" "$R/proc" "$R/sys" "$R/data" "$R/tmp"
    cp "$BUSYBOX" "$R/bin/busybox"
    # Some files to read at boot, spread over the image, so the trace has more than the init's blocks.
    python3 - "$R/data" <<'PY'
import os, random, sys
r = random.Random(15)
for i in range(64):
    with open(os.path.join(sys.argv[1], f"f{i:03d}"), "wb") as f:
        f.write(r.randbytes(r.choice([4096, 16384, 65536])))
PY
    cat >"$R/sbin/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mode=none
for a in $(cat /proc/cmdline); do case $a in snaptest=*) mode=${a#snaptest=} ;; esac; done
echo "VMTEST INIT"
cat /data/f* | sha256sum >/dev/null
case $mode in
write)
    dd if=/dev/urandom of=/data/file bs=64k count=16 2>/dev/null
    sum=$(sha256sum /data/file | cut -d' ' -f1)
    echo "$sum" >/data/file.sha256
    sync
    echo "VMTEST WROTE $sum"
    ;;
check)
    want=$(cat /data/file.sha256 2>/dev/null)
    got=$(sha256sum /data/file 2>/dev/null | cut -d' ' -f1)
    if [ -n "$want" ] && [ "$want" = "$got" ]; then echo "VMTEST CHECK OK $got"; else echo "VMTEST CHECK FAILED want=$want got=$got"; fi
    ;;
bench)
    echo "VMTEST BENCH $(find /bench -type f | sort | xargs cat | sha256sum | cut -d' ' -f1)"
    ;;
*) echo "VMTEST BOOTED" ;;
esac
mount -o remount,ro / 2>/dev/null
sync
poweroff -f
EOF
    chmod 755 "$R/sbin/init"
    if [ "$3" = true ]; then
        python3 - "$R/bench" <<'PY'
import os, random, sys
r = random.Random(2000)
sizes = [r.randint(1, 63) * 1024 for _ in range(2000)]
scale = (64 << 20) / sum(sizes)
for i, n in enumerate(sizes):
    d = os.path.join(sys.argv[1], f"d{i % 40:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:04d}"), "wb") as f:
        f.write(r.randbytes(max(1, int(n * scale))))
PY
    fi
    rm -f "$W/img"
    mkfs.ext4 -q -F -L vmroot -d "$R" "$W/img" "$2" >/dev/null || fail "mkfs.ext4 -d failed"
    mv "$W/img" "$1"
}
[ -s "$DIR/rootfs.ext4" ] || make_root "$DIR/rootfs.ext4" 64M false
! $bench || [ -s "$DIR/rootfs-bench.ext4" ] || make_root "$DIR/rootfs-bench.ext4" 256M true
echo "$stamp" >"$DIR/guest-stamp"
echo "$DIR"
