#!/usr/bin/env python3
"""faultproxy.py -- a fault-injecting HTTP/1.1 forwarding proxy for tests against a real server
(Ceph RGW): requests are forwarded as they are -- Host header included, so a SigV4 signature
still verifies -- unless a control rule replaces the answer.  python3 standard library only.

Usage:
  faultproxy.py --upstream http://127.0.0.1:PORT [--port 0] [--port-file F] [--pid-file P]
                [--tls-cert PEM --tls-key PEM]

With --tls-cert/--tls-key it listens with TLS (clients speak https:// to it; the upstream stays
plain http), which puts a client's TLS send path in front of any plain test server.

Rules use faultserver.py's syntax and its replacing faults:
  POST /_control {"fault": "status=500", "count": 100, "method": "PUT", "match": "partNumber=2(&|$)"}
  POST /_control {"clear": true}
  status=CODE (an S3 <Error> body; code=NAME overrides the code; retry-after=S adds Retry-After),
  error200[=CODE]
A matching request's body is read and dropped; nothing reaches the upstream.
GET /_stats -> {"forwarded", "faults", "recent": ["METHOD target STATUS", ...]}.
"""

import argparse
import http.client
import json
import os
import signal
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultserver import Rule, xml_error  # noqa: E402

HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade", "trailer"}
STATUS_CODES = {500: "InternalError", 503: "SlowDown", 429: "TooManyRequests", 403: "AccessDenied",
                404: "NoSuchKey", 400: "InvalidRequest"}


class State:
    def __init__(self, upstream):
        u = urlsplit(upstream)
        self.host, self.port = u.hostname, u.port or 80
        self.lock = threading.Lock()
        self.rules = []
        self.stats = {"forwarded": 0, "faults": 0, "recent": []}

    def next_rule(self, method, target):
        with self.lock:
            for r in self.rules:
                if r.matches(method, target):
                    r.count -= 1
                    if r.count == 0:
                        self.rules.remove(r)
                    return r.fault
        return None

    def note(self, line, fault):
        with self.lock:
            self.stats["faults" if fault else "forwarded"] += 1
            self.stats["recent"].append(line)
            del self.stats["recent"][:-1000]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream_conn = None

    def log_message(self, fmt, *args):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, code, headers, body):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def control(self):
        st = self.server.state
        body = self.body()
        if self.path == "/_stats":
            with st.lock:
                out = json.dumps(st.stats).encode()
            return self.reply(200, [("Content-Type", "application/json")], out)
        try:
            obj = json.loads(body or b"{}")
            with st.lock:
                if obj.get("clear"):
                    st.rules = []
                else:
                    st.rules.append(Rule(obj))
        except (ValueError, AttributeError) as e:
            return self.reply(400, [], str(e).encode())
        self.reply(200, [], b"{}")

    def handle_any(self):
        if self.path in ("/_control", "/_stats"):
            return self.control()
        st = self.server.state
        body = self.body()
        fault = st.next_rule(self.command, self.path)
        if fault is not None and "status" in fault:
            code = fault.get("status")
            st.note("%s %s %d" % (self.command, self.path, code), True)
            name = fault.get("code") or STATUS_CODES.get(code, "InternalError")
            hdrs = [("Content-Type", "application/xml")]
            if fault.get("retry-after") is not None:
                hdrs.append(("Retry-After", str(fault.get("retry-after"))))
            return self.reply(code, hdrs, xml_error(name, "injected"))
        if fault is not None and "error200" in fault:
            st.note("%s %s 200-error" % (self.command, self.path), True)
            name = fault.get("error200") if isinstance(fault.get("error200"), str) else "InternalError"
            return self.reply(200, [("Content-Type", "application/xml")], xml_error(name, "injected"))
        for attempt in (1, 2):
            if self.upstream_conn is None:
                self.upstream_conn = http.client.HTTPConnection(st.host, st.port, timeout=120)
            c = self.upstream_conn
            try:
                c.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    if k.lower() not in HOP:
                        c.putheader(k, v)
                if "Content-Length" not in self.headers and body:
                    c.putheader("Content-Length", str(len(body)))
                c.endheaders(body)
                r = c.getresponse()
                data = r.read()
                break
            except (ConnectionError, http.client.HTTPException, OSError):
                c.close()
                self.upstream_conn = None
                if attempt == 2:
                    return self.reply(502, [], b"upstream failed\n")
        st.note("%s %s %d" % (self.command, self.path, r.status), False)
        hdrs = [(k, v) for k, v in r.getheaders() if k.lower() not in HOP and k.lower() != "content-length"]
        self.reply(r.status, hdrs, data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def main():
    ap = argparse.ArgumentParser(description="fault-injecting forwarding proxy")
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--pid-file")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    a = ap.parse_args()
    srv = ThreadingHTTPServer((a.host, a.port), Handler)
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.daemon_threads = True
    srv.state = State(a.upstream)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    if a.pid_file:
        with open(a.pid_file, "w") as f:
            f.write("%d\n" % os.getpid())
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(tmp, a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
