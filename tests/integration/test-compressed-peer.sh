# A compressed build read with --peer (issue 13): storage has only the compressed object
# ({id}/rootfs.ext4.zstd) and its v4 header with the frame table; the peer serves the build
# uncompressed under its plain name, as peers do.  serve-nbd --header ... --peer reads every frame
# from the peer in uncompressed space (no frame is read compressed from storage) and the device
# is byte-identical to the image; with the peer gone, every frame comes from storage and the
# bytes are the same; a peer whose copy is shorter than the build loses only the frames it
# cannot serve whole, which come from storage.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
. tests/integration/functions-compressed.sh
compressed_requires
requires curl
T=$(mktmpdir)
mkdir -p "$T/cache" "$T/store" "$T/peer"
export TMPDIR=$T/cache
base_build "$T"
"$SNAPCTL" upload --quiet --build "$T/out/$B" "file://$T/store" --compress zstd --level 1 ||
    die "upload --compress zstd"
[ -s "$T/store/$B/rootfs.ext4.zstd" ] && [ ! -e "$T/store/$B/rootfs.ext4" ] || die "the store should hold only the .zstd object"
nframes=$("$SNAPCTL" inspect-header --json --frames "$T/store/$B/rootfs.ext4.header" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["builds"][0]["frame_table"]))')
[ "$nframes" -ge 5 ] || die "expected at least 5 frames, got $nframes"
# The peer's data dir: the plain data only, so the header (with its frame table) comes from storage.
mkdir -p "$T/peer/$B"
cp "$T/out/$B/rootfs.ext4" "$T/peer/$B/rootfs.ext4"

# read_all STATS: serve the compressed build with --peer, nbdcopy it, compare, write the stats.
read_all() {
    rm -f "$T/pid" "$T/copy" "$1"
    _p=$(free_port)
    start_server "$T/pid" "$SNAPCTL" serve-nbd --header "file://$T/store/$B/rootfs.ext4.header" \
        --peer "127.0.0.1:$PP" --peer-stats "$1" -l "127.0.0.1:$_p" --pid-file "$T/pid"
    nbdcopy "nbd://127.0.0.1:$_p" "$T/copy"
    kill -TERM "$_spid"
    wait "$_spid" || die "serve-nbd exited $? at SIGTERM"
    [ "$(sha256 "$T/copy")" = "$(sha256 "$T/img")" ] || die "the device differs from the image ($2)"
}
start_peer() {
    PP=$(free_port)
    rm -f "$T/pidP"
    start_server "$T/pidP" "$SNAPCTL" peer serve --data-dir "$T/peer" -l "127.0.0.1:$PP" --pid-file "$T/pidP"
    PEER=$_spid
}

# 1. Every frame from the peer, uncompressed; storage serves the header only.
start_peer
read_all "$T/s1" "peer up"
size=$(stat -c %s "$T/out/$B/rootfs.ext4") # the build's data: the image without its zero pages
pb=$(tiered_stat "$T/s1" peer_bytes_total)
sb=$(tiered_stat "$T/s1" storage_bytes_total)
hs=$(stat -c %s "$T/store/$B/rootfs.ext4.header")
[ "$pb" -ge "$size" ] || die "the peer served $pb bytes, expected the whole build ($size)"
[ "$sb" -le "$hs" ] || die "storage served $sb bytes: frames were read compressed (the header is $hs)"
served=$(peer_metric "$PP" bytes_served_total)
[ "${served:-0}" -ge "$size" ] || die "the peer's /metrics says $served bytes served"

# 2. A peer whose copy is cut short: the frames past its end come from storage, compressed.
cut=$((size / 2 + 12345))
truncate -s "$cut" "$T/peer/$B/rootfs.ext4"
read_all "$T/s2" "peer with a short copy"
sb=$(tiered_stat "$T/s2" storage_bytes_total)
fb=$(tiered_stat "$T/s2" fallbacks_total)
[ "$sb" -gt "$hs" ] && [ "${fb:-0}" -ge 1 ] || die "expected storage reads and fallbacks for the cut frames: storage $sb, fallbacks $fb"

# 3. The peer gone: every frame from storage.
kill_pid "$PEER"
read_all "$T/s3" "peer down"
pb=$(tiered_stat "$T/s3" peer_bytes_total)
[ "${pb:-0}" -eq 0 ] || die "peer bytes $pb with the peer down"
echo "ok: $nframes frames from the peer, from storage past a short copy, and from storage with the peer down"
