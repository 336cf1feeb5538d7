#!/usr/bin/env bash
# demo.sh -- the README's main job on the built-in file:// store (no cloud account).
#
#   SNAPCTL=./snapctl tests/demo.sh [DIR]     (make demo runs it; DIR defaults to a temp dir)
#
# 1. makes a sample base build in a file:// store: a 16 MiB rootfs image and its v3 header;
# 2. inspects, checks and converts the header (v3 -> v5), looks an offset up;
# 3. fetches the build's data object into a content-addressed cache, SHA-256-verified, twice
#    (the second time from the cache, without touching the store);
# 4. serves the fetched image over NBD and reads it back with nbdcopy, comparing checksums;
# 5. serves the build from the store (serve-nbd --header), writes through it, exports the diff
#    at SIGTERM, puts it in the store and serves the new build: the writes survived.
set -euo pipefail
SNAPCTL=${SNAPCTL:-./snapctl}
D=${1:-$(mktemp -d "${TMPDIR:-/tmp}/snapctl-demo.XXXXXX")}
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; true' EXIT
if [ -t 1 ]; then
    step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
    step() { printf '\n== %s\n' "$*"; }
fi
run() { printf '$ %s\n' "$*"; "$@"; }

BUILD=11111111-2222-3333-4444-555555555555
STORE=$D/store
mkdir -p "$STORE/$BUILD" "$D/cache"

step "1. A sample base build in file://$STORE"
# 16 MiB: 6 MiB of data, 4 MiB of zeros, 6 MiB of data.
{ head -c 6M /dev/urandom; head -c 4M /dev/zero; head -c 6M /dev/urandom; } >"$STORE/$BUILD/rootfs.ext4"
# Its header (formats.md section 3): Version 3, BlockSize 4096, Size 16 MiB, Generation 0,
# BuildId = BaseBuildId = $BUILD, one mapping [0, 16 MiB) onto itself at storage offset 0.
le() { local v=$1 n=$2 s=""; while [ "$n" -gt 0 ]; do s="$s\\$(printf %03o $((v & 255)))"; v=$((v >> 8)); n=$((n - 1)); done; printf %s "$s"; }
uuid='\021\021\021\021\042\042\063\063\104\104\125\125\125\125\125\125'
size=$((16 << 20))
printf "$(le 3 8)$(le 4096 8)$(le $size 8)$(le 0 8)$uuid$uuid$(le 0 8)$(le $size 8)$uuid$(le 0 8)" \
    >"$STORE/$BUILD/rootfs.ext4.header"
ls -l "$STORE/$BUILD"

step "2. Read the header; check it; convert it to v5; look an offset up"
run "$SNAPCTL" inspect-header "$STORE/$BUILD/rootfs.ext4.header"
run "$SNAPCTL" inspect-header --check "$STORE/$BUILD/rootfs.ext4.header"
run "$SNAPCTL" inspect-header --convert v5 "$D/rootfs.ext4.header.v5" "$STORE/$BUILD/rootfs.ext4.header"
run "$SNAPCTL" inspect-header --summary "$D/rootfs.ext4.header.v5"
run "$SNAPCTL" inspect-header --lookup 8M "$D/rootfs.ext4.header.v5"

step "3. Fetch the build's data into a content-addressed cache, verified in the same pass"
sum=$(sha256sum "$STORE/$BUILD/rootfs.ext4" | cut -c1-64)
run "$SNAPCTL" fetch "file://$STORE/$BUILD/rootfs.ext4" --sha256 "$sum" --cache-dir "$D/cache" --json
echo "# again: served from the cache, the store is not read"
run "$SNAPCTL" fetch "file://$STORE/$BUILD/rootfs.ext4" --sha256 "$sum" --cache-dir "$D/cache" --json
echo "# a wrong checksum is refused, and nothing is cached (exit status 6):"
set +e
"$SNAPCTL" fetch "file://$STORE/$BUILD/rootfs.ext4" --sha256 "$(printf %064d 0)" --cache-dir "$D/cache"
echo "exit status $?"
set -e

step "4. Serve the fetched image over NBD and read it back"
if command -v nbdcopy >/dev/null && command -v nbdinfo >/dev/null; then
    "$SNAPCTL" serve-nbd --read-only --file "$D/cache/$sum" -l "unix:$D/nbd.sock" --pid-file "$D/nbd.pid" &
    server=$!
    for _ in $(seq 100); do [ -s "$D/nbd.pid" ] && break; sleep 0.05; done
    run nbdinfo --map "nbd+unix:///?socket=$D/nbd.sock"
    run nbdcopy "nbd+unix:///?socket=$D/nbd.sock" "$D/readback.img"
    back=$(sha256sum "$D/readback.img" | cut -c1-64)
    echo "source   $sum"
    echo "over NBD $back"
    [ "$back" = "$sum" ] || { echo "demo: the NBD read-back differs" >&2; exit 1; }
    kill "$server"; wait "$server" 2>/dev/null || true; server=""
else
    echo "(nbdcopy/nbdinfo not installed: apt-get install libnbd-bin to see this step)"
fi

step "5. Serve the build from the store, write through it, export the diff, serve the new build"
if command -v nbdcopy >/dev/null && command -v qemu-io >/dev/null; then
    sock=$D/build.sock
    "$SNAPCTL" serve-nbd --header "file://$STORE/$BUILD/rootfs.ext4.header" --export-diff "$D/export" \
        -l "unix:$sock" --pid-file "$D/build.pid" --json >"$D/export.json" &
    server=$!
    for _ in $(seq 100); do [ -s "$D/build.pid" ] && break; sleep 0.05; done
    echo "# the guest writes 1 MiB of 0x5a at 2 MiB and zeroes [12 MiB, 13 MiB)"
    run qemu-io -f raw "nbd+unix:///?socket=$sock" -c 'write -P 0x5a 2M 1M' -c 'write -z 12M 1M' -c flush
    echo "# SIGTERM: serve-nbd exports the diff and its header on the way out"
    kill -TERM "$server"; wait "$server"; server=""
    cat "$D/export.json"
    NEW=$(sed -n 's/.*"build_id":"\([0-9a-f-]*\)".*/\1/p' "$D/export.json")
    run ls -l "$D/export/$NEW"
    run "$SNAPCTL" inspect-header --summary "$D/export/$NEW/rootfs.ext4.header"
    echo "# into the store (snapctl upload --build will do this step)"
    run cp -r "$D/export/$NEW" "$STORE/"
    "$SNAPCTL" serve-nbd --header "file://$STORE/$NEW/rootfs.ext4.header" --read-only \
        -l "unix:$sock" --pid-file "$D/new.pid" &
    server=$!
    for _ in $(seq 100); do [ -s "$D/new.pid" ] && break; sleep 0.05; done
    run nbdinfo --map "nbd+unix:///?socket=$sock"
    nbdcopy "nbd+unix:///?socket=$sock" "$D/new.img"
    cp "$STORE/$BUILD/rootfs.ext4" "$D/want.img"
    printf '\x5a%.0s' $(seq 1048576) | dd of="$D/want.img" bs=1M seek=2 conv=notrunc status=none
    dd if=/dev/zero of="$D/want.img" bs=1M seek=12 count=1 conv=notrunc status=none
    echo "expected      $(sha256sum "$D/want.img" | cut -c1-64)"
    echo "new build     $(sha256sum "$D/new.img" | cut -c1-64)"
    cmp -s "$D/want.img" "$D/new.img" || { echo "demo: the new build lost the writes" >&2; exit 1; }
    echo "the data survived: build $NEW = build $BUILD + the guest's writes"
    kill "$server"; wait "$server" 2>/dev/null || true; server=""
else
    echo "(nbdcopy/qemu-io not installed: apt-get install libnbd-bin qemu-utils to see this step)"
fi

step "Done"
echo "Everything is in $D. Upload (snapctl upload --build) and peer transfer come with the next"
echo "issues; see README.md."
