#!/bin/sh
# install-deps.sh -- install the Debian packages snapctl needs, and nothing more (idempotent).
#
#   tests/install-deps.sh build   the compilers and tools `make` needs
#   tests/install-deps.sh demo    build + the NBD clients `make demo` shows (nbdcopy, qemu-io)
#   tests/install-deps.sh test    demo + the real peers the tests talk to (Ceph RGW, nginx, Redis,
#                                 nbdkit, fio, awscli, ...) and the sanitizer runtime
#
# Installs only what is missing, so a second run makes no network call. Needs root (or sudo) and
# apt-get; elsewhere it lists what to install and carries on, so a developer machine that already
# has everything still works.
#
# Services: several of these packages ship daemons (nginx, redis-server, ceph, smartmontools)
# whose maintainer scripts would enable them at boot and start them. The tests start their own
# instances on loopback and stop them by PID, so nothing here may run as a service: during the
# install a policy-rc.d (unless the host has its own) refuses every start, and afterwards every
# systemd unit of a package this run installed is disabled again. A package the host already had
# is left as it was.
set -eu
what=${1:-test}
top=$(cd "$(dirname "$0")/.." && pwd)

BUILD_PKGS="make gcc clang musl-tools dpkg-dev file python3 ca-certificates"
DEMO_PKGS="libnbd-bin qemu-utils"
TEST_PKGS="libclang-rt-14-dev openssl curl time python3-libnbd nbdkit fio fuse3 tmux iproute2
           radosgw ceph-mon ceph-osd awscli nginx rclone redis-server redis-tools
           python3-lz4 python3-zstandard e2fsprogs zstd qemu-system-x86 busybox-static"

case $what in
build) pkgs=$BUILD_PKGS ;;
demo) pkgs="$BUILD_PKGS $DEMO_PKGS" ;;
test|all) pkgs="$BUILD_PKGS $DEMO_PKGS $TEST_PKGS" ;;
*) echo "usage: $0 build|demo|test" >&2; exit 2 ;;
esac

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=""
for p in $pkgs; do installed "$p" || missing="$missing $p"; done
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: please install:$missing" >&2
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive

before=$(mktemp)
trap 'rm -f "$before"' EXIT
dpkg-query -W -f='${Package}\n' | sort >"$before"

policy=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# installed by snapctl tests/install-deps.sh for the length of one install\nexit 101\n' |
        $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    own_policy=1
fi
rc=0
$SUDO apt-get update -q >&2 || rc=$?
# shellcheck disable=SC2086
[ $rc -ne 0 ] || $SUDO apt-get install -y -q --no-install-recommends $missing >&2 || rc=$?
[ -z "$own_policy" ] || $SUDO rm -f "$policy"

# Disable the units of every package this run brought in (dependencies included), and record
# them in build/install-deps.units (tests/integration/test-install-deps.sh checks them).
mkdir -p "$top/build"
for p in $(dpkg-query -W -f='${Package}\n' | sort | comm -13 "$before" -); do
    for u in $(dpkg -L "$p" 2>/dev/null | grep -E '^/(usr/)?lib/systemd/system/[^/]+\.(service|socket|timer|target)$' | sed 's|.*/||'); do
        # systemctl disables offline too (no running systemd needed); sysvinit links go with it
        $SUDO systemctl disable "$u" >/dev/null 2>&1 || true
        echo "$p $u" >>"$top/build/install-deps.units"
    done
done
[ $rc -eq 0 ] || { echo "install-deps: apt-get failed (exit $rc) installing:$missing; see the lines above" >&2; exit $rc; }
