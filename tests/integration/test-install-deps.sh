# tests/install-deps.sh leaves no service enabled or running: every systemd unit of a package it
# installed (recorded in build/install-deps.units) is disabled, and no daemon of those packages
# runs detached (a leftover of the install, or of a test that did not stop what it started).
. tests/integration/functions.sh
rec=$TOP/build/install-deps.units

# The sets are what the README says: build < demo < test, and the demo needs no server package.
demo=$(sed -n '/^BUILD_PKGS=/,/^DEMO_PKGS=/p' "$TOP/tests/install-deps.sh")
for p in radosgw nginx redis-server ceph-mon awscli rclone; do
    echo "$demo" | grep -qw "$p" && die "the demo set installs $p"
done
expect_exit 2 "$TOP/tests/install-deps.sh" bogus
grep -q 'usage' "$LAST_ERR" || die "no usage line for a bad set"

if [ -f "$rec" ]; then
    n=0
    while read -r pkg unit; do
        for w in /etc/systemd/system/*.wants/"$unit"; do
            [ -e "$w" ] || [ -L "$w" ] || continue
            die "install-deps left $unit ($pkg) enabled: $w"
        done
        n=$((n + 1))
    done <"$rec"
    echo "checked $n units install-deps installed: none enabled"
else
    echo "install-deps installed nothing on this machine (no $rec): only running daemons are checked"
fi

# No daemon of these packages runs detached (reparented to PID 1). Tests run one at a time, so a
# daemon here is a service or a leftover of an earlier test. (A test running at the same moment in
# another checkout on the same machine, e.g. an RGW, shows up here too: run this one alone.)
for exe in nginx redis-server ceph-mon ceph-osd radosgw smartd; do
    for pid in $(pgrep -x "$exe" 2>/dev/null || true); do
        ppid=$(awk '{print $4}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        # The run's own shared RGW (tests/run.sh starts it detached and stops it by PID at exit).
        if [ -n "${RGW_SHARED_DIR:-}" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$RGW_SHARED_DIR/"; then
            continue
        fi
        [ "$ppid" != 1 ] || die "$exe (pid $pid) runs detached: $(tr '\0' ' ' <"/proc/$pid/cmdline")"
    done
done
echo ok
