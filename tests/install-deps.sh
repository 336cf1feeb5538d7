#!/bin/sh
# install-deps.sh -- install the Debian packages snapctl's build and tests need (idempotent).
#
#   tests/install-deps.sh [build|test|all]   (default: all)
#
# Installs only what is missing, so a second run makes no network call.  Needs root (or sudo)
# and apt-get; elsewhere it lists what to install and carries on, so a developer machine that
# already has everything still works.
set -eu
what=${1:-all}

BUILD_PKGS="make gcc clang musl-tools dpkg-dev file python3 ca-certificates libclang-rt-14-dev"
TEST_PKGS="openssl curl time libnbd-bin python3-libnbd nbdkit qemu-utils fio radosgw ceph-mon ceph-osd awscli nginx rclone iproute2"

case $what in
build) pkgs=$BUILD_PKGS ;;
test|all) pkgs="$BUILD_PKGS $TEST_PKGS" ;;
*) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: please install:$missing" >&2
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >&2
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing >&2
