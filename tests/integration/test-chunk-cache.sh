# serve-nbd --chunk-cache: one host-wide chunk directory shared by many processes.
#   A 64 MiB base build of random data on a file:// store that the fault server serves at
#   20 ms + 100 MB/s.  (1) 8 serve-nbd processes started at once on one cache directory, each
#   read whole by nbdcopy: every copy is right, the store sent at most 1.2x the base, the cache
#   holds the base about once.  (2) kill -9 of a process while it fills chunks (the store slowed
#   down): the other reader's copy is right, a new process reads it right, the dead filler's temp
#   files go at the next open, and every chunk file in the directory is the base's bytes.  (3) a
#   chunk file planted with the wrong length is not served: fetch --chunk-cache gets the object
#   right.  (4) --chunk-cache-max 16M below the 64 MiB working set: the directory stays under it
#   all along, the copy is right.  The 16 MiB tmpfs case is test-chunk-cache-tmpfs.sh.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
. tests/tools/faultserver.sh
. tests/integration/functions-chunkcache.sh
requires nbdcopy python3 curl
T=$(mktmpdir)
mkdir -p "$T/tmp"
export TMPDIR=$T/tmp
M=1048576
N=64

chunkcache_base $N

# ---- (1) 8 processes at once ----
server_reset "$FS_URL"
pids=""
for i in 1 2 3 4 5 6 7 8; do
    cc_serve "s$i" "$T/cc" 100
    pids="$pids $_spid"
done
cpids=""
for i in 1 2 3 4 5 6 7 8; do
    nbdcopy "nbd+unix:///?socket=$T/s$i.sock" "$T/s$i.img" &
    cpids="$cpids $!"
done
for p in $cpids; do wait "$p" || die "an nbdcopy failed"; done
for i in 1 2 3 4 5 6 7 8; do cc_check_copy "s$i"; done
# Base data is not stored twice: each process hands the chunks it fetched over to the directory
# and keeps no copy of its own (docs/chunker.md, "Base data stored once").
own=$(cc_open_bytes $pids)
echo "8 processes: their own open files hold $own bytes on disk"
[ "$own" -le $((N * M / 10)) ] || die "the processes' own files hold $own bytes: the base is stored twice"
for p in $pids; do stop_and_wait "$p"; done
sent=$(server_stats "$FS_URL" 'd["bytes_sent"]')
echo "8 processes: the store sent $sent bytes for a $((N * M))-byte base"
[ "$sent" -le $((N * M * 12 / 10)) ] || die "the store sent $sent bytes, more than 1.2 x $((N * M))"
used=$(du -sb "$T/cc" | cut -f1)
echo "cache directory: $used bytes"
[ "$used" -le $((N * M * 12 / 10)) ] || die "the cache holds $used bytes, more than 1.2 x the base"
cc_check_chunks "$T/cc"

# ---- (2) kill -9 while filling ----
rm -rf "$T/cc2"
cc_serve k1 "$T/cc2" 20
victim=$_spid
cc_serve k2 "$T/cc2" 20
other=$_spid
nbdcopy "nbd+unix:///?socket=$T/k1.sock" "$T/k1.img" 2>/dev/null &
vcopy=$!
i=0
until ls "$T/cc2/$B0/rootfs.ext4/" 2>/dev/null | grep -q '\.bin\.tmp\.'"$victim"'\.'; do
    i=$((i + 1)); [ $i -lt 500 ] || die "serve-nbd $victim never filled a chunk"
    sleep 0.01
done
# The other reader starts while the victim fills: it waits on the victim's chunk locks.
nbdcopy "nbd+unix:///?socket=$T/k2.sock" "$T/k2.img" &
ocopy=$!
sleep 0.3
kill -9 "$victim"
wait "$vcopy" || true # its server is gone: the copy fails, as it should
wait "$ocopy" || { cat "$T/k2.log" >&2; die "the other reader's copy failed after the kill"; }
cc_check_copy k2
ls "$T/cc2/$B0/rootfs.ext4/" | grep -q '\.tmp\.'"$victim"'\.' && echo "the dead filler left a temp file"
cc_serve k3 "$T/cc2" 100
nbdcopy "nbd+unix:///?socket=$T/k3.sock" "$T/k3.img"
cc_check_copy k3
stop_and_wait "$_spid"
stop_and_wait "$other"
! ls "$T/cc2/$B0/rootfs.ext4/" | grep -q '\.tmp\.'"$victim"'\.' || die "the dead filler's temp file is still there"
cc_check_chunks "$T/cc2"

# ---- (3) a chunk file of the wrong length ----
mkdir -p "$T/fetched"
C=$T/cc2/$B0/rootfs.ext4
printf 'not a chunk' >"$C/000000000003-4194304.bin"
"$SNAPCTL" fetch --chunk-cache "$T/cc2" --sha256 "$WANT" --cache-dir "$T/fetched" --quiet \
    "$FS_URL/$B0/rootfs.ext4" >/dev/null || die "fetch --chunk-cache with a planted wrong-length chunk"
[ "$(stat -c %s "$C/000000000003-4194304.bin")" = 4194304 ] || die "the planted chunk file was not replaced"
cc_check_chunks "$T/cc2"
# The environment says the same as the options.
server_reset "$FS_URL"
rm -rf "$T/fetched"; mkdir -p "$T/fetched"
SNAPCTL_CHUNK_CACHE=$T/cc2 "$SNAPCTL" fetch --sha256 "$WANT" --cache-dir "$T/fetched" --quiet \
    "$FS_URL/$B0/rootfs.ext4" >/dev/null || die "fetch with SNAPCTL_CHUNK_CACHE"
[ "$(server_stats "$FS_URL" 'd["bytes_sent"]')" -eq 0 ] || die "fetch with a warm SNAPCTL_CHUNK_CACHE read the store"
expect_exit 2 env SNAPCTL_CHUNK_CACHE_MAX=1M "$SNAPCTL" fetch --chunk-cache "$T/cc2" --sha256 "$WANT" \
    --cache-dir "$T/fetched" "$FS_URL/$B0/rootfs.ext4"
grep -q 'at least 4M' "$LAST_ERR" || die "a too small SNAPCTL_CHUNK_CACHE_MAX: $(cat "$LAST_ERR")"

# ---- (4) a limit below the working set ----
LIMIT=$((16 * M))
cc_serve lim "$T/cc3" 100 --chunk-cache-max 16M
lim=$_spid
nbdcopy "nbd+unix:///?socket=$T/lim.sock" "$T/lim.img" &
lcopy=$!
max=0
while kill -0 "$lcopy" 2>/dev/null; do
    u=$(du -sb "$T/cc3" 2>/dev/null | cut -f1)
    [ "${u:-0}" -gt "$max" ] && max=$u
    sleep 0.02
done
wait "$lcopy" || die "nbdcopy with --chunk-cache-max"
cc_check_copy lim
stop_and_wait "$lim"
echo "--chunk-cache-max 16M: at most $max bytes in the directory"
# The limit counts chunk files; directories, size.txt and .usage are a few KiB more.
[ "$max" -le $((LIMIT + 65536)) ] || die "the directory held $max bytes, over the 16 MiB limit"
cc_check_chunks "$T/cc3"
echo "ok"
