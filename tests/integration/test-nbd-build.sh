# serve-nbd --header over a chain of builds and --export-diff, with real clients:
#   an empty device (--size) written by nbdcopy and exported at SIGTERM is the base build
#   (generation 0); served from a file:// store it reads back equal (SHA-256) and nbdinfo --map
#   shows its zero and data regions; qemu-io writes through it and SIGTERM exports build 1; a
#   control-socket export taken while a client is connected gives build 2 (a write after it is
#   not in it); each build served from the store equals the image expected at that point;
#   inspect-header --check passes on every exported header and the generation goes 0, 1, 2;
#   served over http:// (faultserver), a zero range costs no store request, a data range does.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
. tests/tools/faultserver.sh
requires nbdinfo nbdcopy qemu-io qemu-img python3 curl
T=$(mktmpdir)
S=$T/store
mkdir -p "$S" "$T/out" "$T/cache"
export TMPDIR=$T/cache

# patch FILE OFFSET LENGTH BYTE: what a write of that pattern does to the expected image.
patch() {
    python3 -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); f.write(bytes([int(sys.argv[4],0)])*int(sys.argv[3]))' "$@"
}
M=1048576
# serve_build ID PORT [OPTIONS]: serve a build of the store on PORT; sets SPID.
serve_build() {
    id=$1; port=$2; shift 2
    rm -f "$T/pid"
    start_server "$T/pid" "$SNAPCTL" serve-nbd --header "file://$S/$id/rootfs.ext4.header" \
        -l "127.0.0.1:$port" --pid-file "$T/pid" "$@" >"$T/srv.out"
    SPID=$_spid
}

# --- the base image: data at [0, 8M) and [24M, 25M), zeros elsewhere -------------------------
head -c $((8 * M)) /dev/urandom >"$T/img"
truncate -s $((24 * M)) "$T/img"
head -c $M /dev/urandom >>"$T/img"
truncate -s $((64 * M)) "$T/img"

p=$(free_port)
rm -f "$T/pid"
start_server "$T/pid" "$SNAPCTL" serve-nbd --size 64M --export-diff "$T/out" --json \
    -l "127.0.0.1:$p" --pid-file "$T/pid" >"$T/base.json"
nbdcopy "$T/img" "nbd://127.0.0.1:$p"
stop_and_wait "$_spid"
B0=$(json_last "$T/base.json" build_id)
[ "$(json_last "$T/base.json" generation)" = 0 ] || die "base generation"
"$SNAPCTL" inspect-header --check "$T/out/$B0/rootfs.ext4.header"
"$SNAPCTL" inspect-header --json "$T/out/$B0/rootfs.ext4.header" | grep -q "\"base_build_id\": *\"$B0\"" ||
    "$SNAPCTL" inspect-header "$T/out/$B0/rootfs.ext4.header" | grep -q "BaseBuildId  $B0" ||
    die "a base build is its own BaseBuildId"
data_bytes=$(stat -c %s "$T/out/$B0/rootfs.ext4")
[ "$data_bytes" -eq $((9 * M)) ] || die "the base diff holds $data_bytes bytes, expected the 9 MiB of data"
cp -r "$T/out/$B0" "$S/"   # the integrator switches this to: snapctl upload --build

# --- serve the base from the store -------------------------------------------------------------
p=$(free_port)
serve_build "$B0" "$p" --export-diff "$T/out" --json
uri=nbd://127.0.0.1:$p
nbdinfo "$uri" | grep -q 'export-size: 67108864' || die "size of the build device"
nbdcopy "$uri" "$T/copy0"
[ "$(sha256 "$T/copy0")" = "$(sha256 "$T/img")" ] || die "the base build reads back different"
nbdinfo --map "$uri" | awk '{print $1, $2, $3}' >"$T/map0"
printf '%s\n' "0 $((8 * M)) 0" "$((8 * M)) $((16 * M)) 3" "$((24 * M)) $M 0" "$((25 * M)) $((39 * M)) 3" >"$T/want0"
diff "$T/want0" "$T/map0" || die "nbdinfo --map of the base build"

# --- write through it, export build 1 at SIGTERM -----------------------------------------------
qemu-io -f raw "$uri" -c 'write -P 0x77 30M 1M' -c 'write -z 2M 1M' -c 'write -P 0x66 24M 4k' \
    -c 'flush' -c 'read -P 0x77 30M 1M' -c 'read -P 0 2M 1M' >"$T/w1" 2>&1
grep -qiE 'fail|error|mismatch' "$T/w1" && { cat "$T/w1"; die "qemu-io on the base build"; }
cp "$T/img" "$T/img1"
patch "$T/img1" $((30 * M)) $M 0x77
patch "$T/img1" $((2 * M)) $M 0
patch "$T/img1" $((24 * M)) 4096 0x66
nbdcopy "$uri" "$T/copy1w"
[ "$(sha256 "$T/copy1w")" = "$(sha256 "$T/img1")" ] || die "the overlay reads back different"
qemu-img compare -f raw -F raw "$T/img1" "$uri" || die "qemu-img compare with the overlay"
stop_and_wait "$SPID"
B1=$(json_last "$T/srv.out" build_id)
[ "$(json_last "$T/srv.out" generation)" = 1 ] || die "build 1 generation"
[ "$(json_last "$T/srv.out" parent_build_id)" = "$B0" ] || die "build 1 parent"
"$SNAPCTL" inspect-header --check "$T/out/$B1/rootfs.ext4.header"
[ "$(stat -c %s "$T/out/$B1/rootfs.ext4")" -eq $((M + 4096)) ] || die "diff 1 is not the written blocks"
cp -r "$T/out/$B1" "$S/"

# --- build 1 from the store; a control export while a client is connected -> build 2 ----------
p=$(free_port)
serve_build "$B1" "$p" --export-diff "$T/out" --json --control "unix:$T/ctl"
uri=nbd://127.0.0.1:$p
nbdcopy "$uri" "$T/copy1"
[ "$(sha256 "$T/copy1")" = "$(sha256 "$T/img1")" ] || die "build 1 from the store reads back different"
nbdsh_py - "$uri" "$SNAPCTL" "$T/ctl" >"$T/ctl.json" <<'EOF'
import nbd, subprocess, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
h.pwrite(b"\x33" * 65536, 50 << 20)
out = subprocess.check_output([sys.argv[2], "serve-nbd", "--control", sys.argv[3], "export", "--json"])
sys.stdout.write(out.decode())
assert h.pread(65536, 50 << 20) == b"\x33" * 65536
h.pwrite(b"\x44" * 4096, 51 << 20)   # after the export: not in it
assert h.pread(4096, 51 << 20) == b"\x44" * 4096
h.shutdown()
EOF
B2=$(json_last "$T/ctl.json" build_id)
[ "$(json_last "$T/ctl.json" generation)" = 2 ] || die "build 2 generation"
# The control socket takes "export\n" (and export NAME, add, remove, list): another line is
# answered "unknown command" (exit 2), one over 8192 bytes is dropped unanswered; neither
# exports (the checks below count).
python3 - "$T/ctl" <<'EOF' || die "control socket hostile requests"
import socket, sys
def ask(req):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sys.argv[1])
    out = b""
    try:
        s.sendall(req)
        while True:
            d = s.recv(4096)
            if not d:
                break
            out += d
    except ConnectionResetError:   # closed with our bytes unread
        pass
    s.close()
    return out
assert ask(b"x" * 9000 + b"\n") == b"", "an over-long line must be dropped"
assert ask(b"export" * 1400) == b"", "8400 bytes without a newline must be dropped"
for req in (b"nope\n", b"export\0junk\n", b"exportx\n", b"EXPORT\n", b"\n"):
    r = ask(req)
    assert b'"ok":false' in r and b"unknown command" in r and b'"exit":2' in r, (req, r)
EOF
# SIGUSR1 exports too (a third sibling of build 1, with the 0x44 write); then SIGTERM.
kill -USR1 "$SPID"
i=0; while [ "$(grep -c build_id "$T/srv.out" || true)" -lt 1 ]; do
    i=$((i + 1)); [ $i -lt 100 ] || die "no export after SIGUSR1"; sleep 0.1
done
B2b=$(json_last "$T/srv.out" build_id)
[ "$B2b" != "$B2" ] && [ -s "$T/out/$B2b/rootfs.ext4.header" ] || die "SIGUSR1 export"
stop_and_wait "$SPID"
for b in "$B2" "$B2b"; do "$SNAPCTL" inspect-header --check "$T/out/$b/rootfs.ext4.header"; done
cp -r "$T/out/$B2" "$S/"
cp "$T/img1" "$T/img2"
patch "$T/img2" $((50 * M)) 65536 0x33

# --- build 2 (a chain of three) reads back as expected; no change means no export --------------
p=$(free_port)
serve_build "$B2" "$p" --export-diff "$T/out" --json
nbdcopy "nbd://127.0.0.1:$p" "$T/copy2"
[ "$(sha256 "$T/copy2")" = "$(sha256 "$T/img2")" ] || die "build 2 reads back different"
nbdinfo --map "nbd://127.0.0.1:$p" | awk '$1 == 2097152 {print $2, $3}' | grep -qx "$M 3" ||
    die "the zeroed MiB of build 1 is not a hole in build 2's map"
n_before=$(ls "$T/out" | wc -l)
stop_and_wait "$SPID"
[ "$(json_last "$T/srv.out" changed)" = False ] || die "an export with no change should say so"
[ "$(ls "$T/out" | wc -l)" = "$n_before" ] || die "an export with no change wrote a build"

# --- over http://: zero ranges cost no store request ------------------------------------------
faultserver_start "$S"
p=$(free_port)
rm -f "$T/pid"
start_server "$T/pid" "$SNAPCTL" serve-nbd --header "$FS_URL/$B2/rootfs.ext4.header" \
    -l "127.0.0.1:$p" --pid-file "$T/pid"
uri=nbd://127.0.0.1:$p
reqs() { server_stats "$FS_URL" 'd["requests"]'; }
server_reset "$FS_URL"
nbdsh_py -c 'import nbd,sys; h=nbd.NBD(); h.connect_uri(sys.argv[1]); assert h.pread(8 << 20, 40 << 20) == bytes(8 << 20); assert h.pread(1 << 20, 2 << 20) == bytes(1 << 20); h.shutdown()' "$uri" ||
    die "zero ranges"
[ "$(reqs)" = 0 ] || die "reading zero ranges made $(reqs) store requests"
nbdsh_py -c 'import nbd,sys; h=nbd.NBD(); h.connect_uri(sys.argv[1]); h.pread(4096, 50 << 20); h.pread(4096, 0); h.shutdown()' "$uri"
n=$(reqs)
echo "9 MiB of zero ranges: 0 store requests; two 4 KiB data reads: $n"
[ "$n" -gt 0 ] || die "a data read made no store request"
nbdcopy "$uri" "$T/copy2h"
[ "$(sha256 "$T/copy2h")" = "$(sha256 "$T/img2")" ] || die "build 2 over http:// reads back different"

# --- a v3 parent (no builds section: sizes come from the responses) and a not-finished v4 ------
mkdir -p "$T/s3/$B0" "$T/s4/$B0"
cp "$S/$B0/rootfs.ext4" "$T/s3/$B0/"
cp "$S/$B0/rootfs.ext4" "$T/s4/$B0/"
"$SNAPCTL" inspect-header --convert v3 "$T/s3/$B0/rootfs.ext4.header" "$S/$B0/rootfs.ext4.header" >/dev/null
python3 -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); assert b[0]==4; b[64]|=1; open(sys.argv[2],"wb").write(b)' \
    "$S/$B0/rootfs.ext4.header" "$T/s4/$B0/rootfs.ext4.header"
for s in s3 s4; do
    p=$(free_port)
    rm -f "$T/pid"
    start_server "$T/pid" "$SNAPCTL" serve-nbd --header "file://$T/$s/$B0/rootfs.ext4.header" \
        --export-diff "$T/out-$s" --json -l "127.0.0.1:$p" --pid-file "$T/pid" >"$T/srv.out"
    nbdcopy "nbd://127.0.0.1:$p" "$T/copy-$s"
    [ "$(sha256 "$T/copy-$s")" = "$(sha256 "$T/img")" ] || die "the base build as $s reads back different"
    qemu-io -f raw "nbd://127.0.0.1:$p" -c 'write -P 0x21 40M 64k' >/dev/null
    stop_and_wait "$_spid"
    b=$(json_last "$T/srv.out" build_id)
    "$SNAPCTL" inspect-header "$T/out-$s/$b/rootfs.ext4.header" >"$T/hdr-$s"
    want=3; [ $s = s4 ] && want=4
    grep -q "header v$want" "$T/hdr-$s" || die "an export on a v$want parent is not v$want"
    [ $s = s3 ] || grep -q 'Flags        0x00' "$T/hdr-$s" || die "the exported header is marked not finished"
done

# --- --stdio: SIGUSR1 and SIGTERM export like the listening modes; answers go to stderr ----------
# (stdout is the NBD stream: an answer printed there would break the connection)
nbdsh_py - "$SNAPCTL" "file://$S/$B2/rootfs.ext4.header" "$T/out-stdio" "$T/stdio.err" \
    2>"$T/stdio.err" <<'EOF' || { cat "$T/stdio.err"; die "--stdio export at SIGTERM"; }
import nbd, os, signal, sys, time
h = nbd.NBD()
h.connect_command([sys.argv[1], "serve-nbd", "--stdio", "--header", sys.argv[2],
                   "--export-diff", sys.argv[3], "--json"])
h.pwrite(b"\x55" * 65536, 60 << 20)
# this libnbd has no get_pid: the server is our child running serve-nbd
pid = next(int(d) for d in os.listdir("/proc") if d.isdigit()
           and open("/proc/%s/stat" % d).read().rsplit(")", 1)[1].split()[1] == str(os.getpid())
           and b"serve-nbd" in open("/proc/%s/cmdline" % d, "rb").read())
os.kill(pid, signal.SIGUSR1)
# TSan runs a signal handler only when the receiving thread next enters an intercepted call, and
# here every thread may sit in one that does not count: a read now and then wakes the reader.
for _ in range(300):
    if "build_id" in open(sys.argv[4]).read():
        break
    time.sleep(0.1)
    h.pread(4096, 0)
else:
    raise SystemExit("no export answer on stderr after SIGUSR1")
assert h.pread(65536, 60 << 20) == b"\x55" * 65536   # the stream survived the answer
h.pwrite(b"\x56" * 4096, 61 << 20)
os.kill(pid, signal.SIGTERM)
_, status = os.waitpid(pid, 0)
assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, "serve-nbd --stdio status %d" % status
EOF
[ "$(grep -c '"build_id"' "$T/stdio.err")" = 2 ] || { cat "$T/stdio.err"; die "--stdio: two export answers"; }
b=$(json_last "$T/stdio.err" build_id)
[ "$(json_last "$T/stdio.err" generation)" = 3 ] || die "--stdio export generation"
[ "$(json_last "$T/stdio.err" parent_build_id)" = "$B2" ] || die "--stdio export parent"
"$SNAPCTL" inspect-header --check "$T/out-stdio/$b/rootfs.ext4.header"
[ "$(stat -c %s "$T/out-stdio/$b/rootfs.ext4")" -eq $((65536 + 4096)) ] ||
    die "the --stdio export at SIGTERM misses the writes made after SIGUSR1"

# --- refusals -----------------------------------------------------------------------------------
expect_exit 2 "$SNAPCTL" serve-nbd --file "$T/img" --export-diff "$T/out"
grep -q 'needs --header or --size' "$LAST_ERR" || die "--file --export-diff message"
expect_exit 2 "$SNAPCTL" serve-nbd --size 64M
expect_exit 4 "$SNAPCTL" serve-nbd --header "file://$S/$B2/missing.header" -l "127.0.0.1:$(free_port)"
echo ok
