#!/bin/bash
# nginx.sh -- a throwaway loopback nginx serving a directory, for benchmarks and tests.
#
#   tests/tools/nginx.sh start STATE_DIR DOC_ROOT   # prints http://127.0.0.1:PORT
#   tests/tools/nginx.sh stop STATE_DIR
#
# Debian's nginx binary (package nginx), never the system service: one process (master_process
# off, daemon off) started in the background with its own config, prefix, pid file, logs and
# temp paths in STATE_DIR, listening on a free 127.0.0.1 port; sendfile and unlimited
# keep-alive requests, access log off.  `stop` ends it by the PID recorded at start (TERM,
# then KILL after 5 s).  From an integration test:
#   url=$("$TOP/tests/tools/nginx.sh" start "$T/nginx" "$T/www")
#   cleanup_fn "$TOP/tests/tools/nginx.sh" stop "$T/nginx"
set -eu

nginx_bin() {
    for b in "${NGINX:-}" /usr/sbin/nginx "$(command -v nginx 2>/dev/null || true)"; do
        [ -n "$b" ] && [ -x "$b" ] && { echo "$b"; return 0; }
    done
    echo "nginx.sh: nginx is not installed (apt-get install nginx-light or nginx)" >&2
    return 1
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
    state=$1 root=$(cd "$2" && pwd)
    bin=$(nginx_bin)
    mkdir -p "$state/tmp" "$state/logs"
    state=$(cd "$state" && pwd)
    for _try in 1 2 3 4 5; do
        port=$(free_port)
        cat >"$state/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $state/nginx.pid;
error_log $state/logs/error.log warn;
events { worker_connections 256; }
http {
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path $state/tmp/body;
    proxy_temp_path $state/tmp/proxy;
    fastcgi_temp_path $state/tmp/fastcgi;
    uwsgi_temp_path $state/tmp/uwsgi;
    scgi_temp_path $state/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        root $root;
        location / { }
    }
}
EOF
        "$bin" -p "$state" -c "$state/nginx.conf" -e "$state/logs/error.log" </dev/null >"$state/logs/stdout" 2>&1 &
        pid=$!
        echo "$pid" >"$state/pid"
        echo "$port" >"$state/port"
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            if curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
                echo "http://127.0.0.1:$port"
                return 0
            fi
            sleep 0.05
        done
        stop "$state"
        grep -q "Address already in use" "$state/logs/error.log" 2>/dev/null || break
    done
    echo "nginx.sh: nginx did not start: $(tail -3 "$state/logs/error.log" "$state/logs/stdout" 2>/dev/null)" >&2
    return 1
}

stop() {
    state=$1
    [ -s "$state/pid" ] || return 0
    pid=$(cat "$state/pid")
    rm -f "$state/pid"
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}

case "${1:-}" in
start) [ $# -eq 3 ] || { echo "usage: $0 start STATE_DIR DOC_ROOT" >&2; exit 2; }; start "$2" "$3" ;;
stop) [ $# -eq 2 ] || { echo "usage: $0 stop STATE_DIR" >&2; exit 2; }; stop "$2" ;;
*) echo "usage: $0 start STATE_DIR DOC_ROOT | stop STATE_DIR" >&2; exit 2 ;;
esac
