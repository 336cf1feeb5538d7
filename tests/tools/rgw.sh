#!/bin/sh
# rgw.sh -- a throwaway single-node Ceph cluster on loopback, for a real S3 endpoint in tests.
#
#   tests/tools/rgw.sh start DIR PORT   monitor + in-memory OSD + RADOS gateway; S3 at
#                                       http://127.0.0.1:PORT with keys CIACCESSKEY / CISECRETKEY
#   tests/tools/rgw.sh up DIR           start on a free port, tried up to three times (the monitor
#                                       at times misses the OSD's first call), each in a fresh
#                                       DIR/rgwN; prints "DIR/rgwN PORT" of the one that answers
#   tests/tools/rgw.sh stop DIR         stop what start started, by the PIDs it recorded
#
# Everything lives under DIR (config, monitor store, sockets, logs, PID files); nothing is
# installed as a service and nothing outside DIR is written. The OSD keeps objects in memory
# (memstore, 4 GiB cap), so the cluster starts in seconds and leaves no disk behind. Debian
# packages: radosgw ceph-mon ceph-osd curl (tests/install-deps.sh test installs them).
# The monitor listens on PORT+10 (msgr v2) and PORT+11 (v1).
set -eu

usage() { echo "usage: rgw.sh start DIR PORT | rgw.sh up DIR | rgw.sh stop DIR" >&2; exit 2; }

rgw_stop() { # DIR
    for n in rgw osd mon; do
        [ -f "$1/$n.pid" ] && kill "$(cat "$1/$n.pid")" 2>/dev/null || true
    done
    for n in rgw osd mon; do
        [ -f "$1/$n.pid" ] || continue
        pid=$(cat "$1/$n.pid") i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$1/$n.pid"
    done
}

rgw_conf() { # DIR PORT FSID -> DIR/ceph.conf
    cat >"$1/ceph.conf" <<EOF
[global]
fsid = $3
mon host = [v2:127.0.0.1:$(($2 + 10)),v1:127.0.0.1:$(($2 + 11))]
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = 4294967296
run dir = $1/run
log file = $1/log/\$name.log
admin socket = $1/run/\$name.asok
[mon.a]
mon data = $1/mon
[osd.0]
osd data = $1/osd0
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$2
EOF
}

rgw_start() { # DIR PORT
    d=$1 port=$2
    for p in ceph-mon ceph-osd radosgw monmaptool radosgw-admin ceph curl; do
        command -v "$p" >/dev/null 2>&1 || { echo "rgw.sh: $p not found; install radosgw ceph-mon ceph-osd curl (tests/install-deps.sh test)" >&2; exit 1; }
    done
    mkdir -p "$d/mon" "$d/osd0" "$d/run" "$d/log"
    fsid=$(cat /proc/sys/kernel/random/uuid)
    rgw_conf "$d" "$port" "$fsid"
    c="-c $d/ceph.conf"
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$((port + 10)),v1:127.0.0.1:$((port + 11))]" "$d/monmap" >/dev/null
    ceph-mon $c -i a --mkfs --monmap "$d/monmap"
    ceph-mon $c -i a -f >"$d/log/mon.out" 2>&1 &
    echo $! >"$d/mon.pid"
    osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    timeout 60 ceph $c osd new "$osd_uuid" >/dev/null
    ceph-osd $c -i 0 --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1
    for step in "add-bucket localhost host" "move localhost root=default" "add osd.0 1.0 host=localhost"; do
        # shellcheck disable=SC2086
        timeout 30 ceph $c osd crush $step >/dev/null 2>&1
    done
    ceph-osd $c -i 0 -f >"$d/log/osd.out" 2>&1 &
    echo $! >"$d/osd.pid"
    radosgw $c -n client.rgw.a -f >"$d/log/rgw.out" 2>&1 &
    echo $! >"$d/rgw.pid"
    i=0
    until curl -sf -o /dev/null "http://127.0.0.1:$port/"; do
        i=$((i + 1))
        [ $i -le 240 ] || { echo "rgw.sh: the gateway did not answer on 127.0.0.1:$port in 120 s; logs in $d/log" >&2; exit 1; }
        kill -0 "$(cat "$d/rgw.pid")" 2>/dev/null || { echo "rgw.sh: radosgw exited; see $d/log/rgw.out" >&2; exit 1; }
        sleep 0.5
    done
    timeout 60 radosgw-admin $c user create --uid=ci --display-name=ci \
        --access-key=CIACCESSKEY --secret=CISECRETKEY >/dev/null
    echo "S3 at http://127.0.0.1:$port (keys CIACCESSKEY/CISECRETKEY); stop with: rgw.sh stop $d"
}

rgw_up() { # DIR: each attempt's output in DIR/rgwN.log, a failed one stopped before the next
    # Each attempt is a process of its own: set -e would not stop a start run as an if's condition.
    for n in 1 2 3; do
        port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        if sh "$0" start "$1/rgw$n" "$port" >"$1/rgw$n.log" 2>&1; then
            echo "$1/rgw$n $port"
            return 0
        fi
        echo "rgw.sh: start attempt $n failed: $(tail -n 1 "$1/rgw$n.log")" >&2
        rgw_stop "$1/rgw$n"
    done
    echo "rgw.sh: RGW did not start in three attempts; logs in $1/rgw*.log and $1/rgw*/log" >&2
    return 1
}

case ${1:-} in
start) [ $# -eq 3 ] || usage; rgw_start "$2" "$3" ;;
up) [ $# -eq 2 ] || usage; rgw_up "$2" ;;
stop) [ $# -eq 2 ] || usage; rgw_stop "$2" ;;
*) usage ;;
esac
