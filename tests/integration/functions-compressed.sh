# functions-compressed.sh -- helpers for the compressed-build tests.  Source after functions.sh
# and functions-nbd.sh.

# compressed_requires: the independent codec (Debian's python3-lz4 and python3-zstandard).
compressed_requires() {
    requires nbdcopy
    /usr/bin/python3 -c 'import lz4.frame, zstandard' 2>/dev/null ||
        skip "requires python3-lz4 and python3-zstandard (not installed)"
}

# base_build DIR: a 20 MiB rootfs-like image DIR/img (text, zero and random runs) written
# through serve-nbd --size and exported as a base build into DIR/out; sets B to its id.
base_build() {
    mkdir -p "$1/out"
    /usr/bin/python3 - "$1/img" <<'EOF'
import random, sys
r = random.Random(3)
out = bytearray()
while len(out) < 20 << 20:
    k, m = r.random(), r.randrange(1, 256) * 4096
    out += (b"inode extent journal " * (m // 21 + 1))[:m] if k < 0.5 else bytes(m) if k < 0.7 else r.randbytes(m)
open(sys.argv[1], "wb").write(bytes(out[:20 << 20]))
EOF
    _p=$(free_port)
    rm -f "$1/pid"
    start_server "$1/pid" "$SNAPCTL" serve-nbd --size 20M --export-diff "$1/out" -l "127.0.0.1:$_p" --pid-file "$1/pid"
    nbdcopy "$1/img" "nbd://127.0.0.1:$_p"
    kill -TERM "$_spid"
    wait "$_spid" || die "serve-nbd did not export the base build"
    B=$(ls "$1/out")
    [ -s "$1/out/$B/rootfs.ext4" ] || die "no base build exported"
}

# serve_compare URL IMAGE: serve-nbd --header URL reads back as IMAGE (nbdcopy + sha256).
serve_compare() {
    rm -f "$T/pid" "$T/copy"
    _p=$(free_port)
    start_server "$T/pid" "$SNAPCTL" serve-nbd --header "$1" -l "127.0.0.1:$_p" --pid-file "$T/pid"
    nbdcopy "nbd://127.0.0.1:$_p" "$T/copy"
    [ "$(sha256 "$T/copy")" = "$(sha256 "$2")" ] || die "$1 reads back different from $2"
    kill_pid "$_spid"
}
