# A real filesystem on top of serve-nbd: nbdfuse exposes the export as a file, a loop device
# turns it into a block device, and the kernel's ext4 mounts it.
#
#   --object file://  an ext4 image made by mkfs.ext4 -d, served lazily: mount, check the files it
#                     came with, write more, unmount, e2fsck clean, reattach through a fresh
#                     nbdfuse (so nothing comes from a page cache), mount, compare SHA-256s;
#                     the store's object is never touched.
#   --file            the same on a local image; the server is stopped and a new one started on
#                     the file before the second mount, so the data survived on disk.
# When the kernel refuses loop devices or mounting here, the same checks run without the kernel:
# debugfs writes and reads files inside the image through nbdfuse, e2fsck checks it.  Without
# FUSE the test skips.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
requires nbdfuse fusermount3 mkfs.ext4 e2fsck debugfs sha256sum
[ -c /dev/fuse ] || skip "requires /dev/fuse (FUSE is not available in this container)"
T=$(mktmpdir)

# The base image: an ext4 filesystem holding a few files, made without the kernel.
mkdir -p "$T/src/sub" "$T/store" "$T/cache" "$T/new"
head -c 5M /dev/urandom >"$T/src/big.bin"
for i in 1 2 3 4 5 6 7 8; do head -c $((i * 3001)) /dev/urandom >"$T/src/sub/small$i"; done
mkfs.ext4 -q -F -b 4096 -d "$T/src" "$T/store/rootfs.ext4" 128M >/dev/null
store_sum=$(sha256 "$T/store/rootfs.ext4")
# What the test writes through the export.
head -c 7M /dev/urandom >"$T/new/written.bin"
for i in 1 2 3 4 5 6; do head -c $((i * 5003)) /dev/urandom >"$T/new/note$i"; done

# fs_sums DIR: "sha256  ./relative/path" for every file under DIR, sorted.
fs_sums() { (cd "$1" && find . -type f ! -path './lost+found/*' -print0 | sort -z | xargs -0 sha256sum); }
want_base=$(fs_sums "$T/src")
mkdir "$T/expect"; cp -r "$T/src/." "$T/expect/"; cp -r "$T/new" "$T/expect/new"
want_all=$(fs_sums "$T/expect")

# fuse_attach SOCKET: nbdfuse the export at $T/fuse/disk (two connections); sets FUSE_PID.
mkdir -p "$T/fuse" "$T/mnt"
fuse_attach() {
    rm -f "$T/fuse.pid"
    nbdfuse -C 2 -P "$T/fuse.pid" "$T/fuse/disk" --unix "$1" &
    FUSE_PID=$!
    i=0
    while [ ! -s "$T/fuse.pid" ]; do
        kill -0 "$FUSE_PID" 2>/dev/null || skip "nbdfuse could not mount (FUSE refused by the kernel here)"
        i=$((i + 1)); [ $i -lt 100 ] || die "nbdfuse did not come up"
        sleep 0.05
    done
    [ -f "$T/fuse/disk" ] || die "nbdfuse shows no $T/fuse/disk"
}
FUSE_PID=""
fuse_detach() { # unmount (nbdfuse then exits), else stop it
    [ -n "$FUSE_PID" ] || return 0
    fusermount3 -u "$T/fuse" 2>/dev/null
    i=0
    while kill -0 "$FUSE_PID" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    kill_pid "$FUSE_PID"
    FUSE_PID=""
}
# Loop devices are shared with the rest of the machine: detach only the one this test holds.
LOOP=""
loop_attach() { LOOP=$(losetup -f --show "$T/fuse/disk" 2>"$T/losetup.err") || { LOOP=""; return 1; }; }
loop_detach() { [ -z "$LOOP" ] || losetup -d "$LOOP"; LOOP=""; }
mnt() { mount -t ext4 "$@" "$T/mnt" 2>"$T/mount.err"; }
# teardown: whatever is still set up, in order (registered after each server start, so it runs
# before that server is stopped: an unmount never waits on a dead server).
teardown() {
    mountpoint -q "$T/mnt" && umount "$T/mnt"
    loop_detach
    fuse_detach
    return 0
}

# KERNEL=yes once loop + mount worked; no means the debugfs fallback (decided on the first try).
# NBD_EXT4_KERNEL=no forces the fallback (to test it where the kernel would allow more).
KERNEL=${NBD_EXT4_KERNEL:-}
[ "$(id -u)" = 0 ] && command -v losetup >/dev/null && command -v mount >/dev/null || KERNEL=no

# write_and_check SOCKET WHAT: the base files read back, new files written, fsck clean (on the export).
write_and_check() {
    fuse_attach "$1"
    if [ "$KERNEL" != no ] && loop_attach && mnt "$LOOP"; then
        KERNEL=yes
        [ "$(fs_sums "$T/mnt")" = "$want_base" ] || die "$2: the image's files read back wrong"
        mkdir "$T/mnt/new"
        cp "$T/new/"* "$T/mnt/new/"
        sync -f "$T/mnt"
        umount "$T/mnt"
        loop_detach
    else
        [ "$KERNEL" != yes ] || die "$2: loop/mount worked before and now fails: $(cat "$T/losetup.err" "$T/mount.err" 2>/dev/null)"
        loop_detach
        echo "loop or mount refused here ($(cat "$T/losetup.err" "$T/mount.err" 2>/dev/null | head -1)); using debugfs"
        KERNEL=no
        for f in "$T/src/big.bin" "$T/src/sub/small3"; do
            debugfs -R "dump /${f#"$T/src/"} $T/out" "$T/fuse/disk" 2>/dev/null
            cmp -s "$f" "$T/out" || die "$2: debugfs read ${f#"$T/src/"} wrong"
        done
        # -D: O_DIRECT, so debugfs writes whole aligned blocks (the superblock too): the --object
        # export's minimum block is 4 KiB and nbdfuse passes unaligned writes on as they come.
        { echo "mkdir /new"; for f in "$T/new/"*; do echo "write $f /new/${f##*/}"; done; } >"$T/dbg.cmds"
        debugfs -D -w -f "$T/dbg.cmds" "$T/fuse/disk" >"$T/dbg.out" 2>&1 || { cat "$T/dbg.out"; die "$2: debugfs write"; }
        # debugfs exits 0 even when a write fails; its messages say so.
        ! grep -qiE 'ext2fs_|invalid|error|could not|failed' "$T/dbg.out" || { cat "$T/dbg.out"; die "$2: debugfs write"; }
    fi
    e2fsck -fn "$T/fuse/disk" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; die "$2: e2fsck after writing"; }
    fuse_detach
}
# read_back SOCKET WHAT: a fresh nbdfuse; fsck clean and every file (old and new) by SHA-256.
read_back() {
    fuse_attach "$1"
    e2fsck -fn "$T/fuse/disk" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; die "$2: e2fsck on reattach"; }
    if [ "$KERNEL" = yes ]; then
        loop_attach || die "$2: losetup: $(cat "$T/losetup.err")"
        mnt -o ro "$LOOP" || die "$2: mount: $(cat "$T/mount.err")"
        [ "$(fs_sums "$T/mnt")" = "$want_all" ] || { fs_sums "$T/mnt"; die "$2: files differ after remount"; }
        umount "$T/mnt"
        loop_detach
    else
        for f in big.bin sub/small5 new/written.bin new/note4; do
            debugfs -R "dump /$f $T/out" "$T/fuse/disk" 2>/dev/null
            src=$T/src/$f; case $f in new/*) src=$T/new/${f#new/} ;; esac
            cmp -s "$src" "$T/out" || die "$2: /$f differs after reattach"
        done
    fi
    fuse_detach
}

# 1. --object file://, fetched lazily; writes stay in the server's copy-on-write cache.
start_server "$T/o.pid" "$SNAPCTL" serve-nbd --object "file://$T/store/rootfs.ext4" --cache-dir "$T/cache" \
    -l "unix:$T/o.sock" --pid-file "$T/o.pid"
cleanup_fn teardown
write_and_check "$T/o.sock" "--object"
read_back "$T/o.sock" "--object"
[ "$(sha256 "$T/store/rootfs.ext4")" = "$store_sum" ] || die "--object: the store's object was modified"
kill_pid "$(cat "$T/o.pid")"

# 2. --file: written in place; a new server on the same file shows the same filesystem.
cp "$T/store/rootfs.ext4" "$T/local.ext4"
start_server "$T/f.pid" "$SNAPCTL" serve-nbd --file "$T/local.ext4" -l "unix:$T/f.sock" --pid-file "$T/f.pid"
cleanup_fn teardown
write_and_check "$T/f.sock" "--file"
spid=$(cat "$T/f.pid"); kill_pid "$spid"
e2fsck -fn "$T/local.ext4" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; die "--file: e2fsck of the file itself"; }
start_server "$T/f2.pid" "$SNAPCTL" serve-nbd --file "$T/local.ext4" -l "unix:$T/f2.sock" --pid-file "$T/f2.pid"
cleanup_fn teardown
read_back "$T/f2.sock" "--file"
echo "ok (kernel loop + ext4 mount: $KERNEL)"
