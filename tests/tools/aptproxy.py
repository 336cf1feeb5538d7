#!/usr/bin/env python3
"""aptproxy.py -- a loopback HTTP proxy for apt that forwards to the real mirror but answers 404
for the files whose URL matches a pattern: a mirror that lists a revision in its signed index
and has dropped its files. Used by tests/integration/test-build-deps.sh.

    aptproxy.py PORTFILE REGEX     listens on 127.0.0.1 (a free port, written to PORTFILE)

Only GETs of http:// URLs are forwarded; every request is logged to stderr as "404 URL" or
"fwd URL". Apt checks every file it gets through here against the signed index as usual.
"""
import re
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    block = None

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body, headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = self.path
        if not url.startswith("http://"):
            self.reply(400, b"absolute http:// URL expected\n")
            return
        if self.block.search(url):
            print("404", url, file=sys.stderr, flush=True)
            self.reply(404, b"Not Found\n")
            return
        print("fwd", url, file=sys.stderr, flush=True)
        req = urllib.request.Request(url, headers={"User-Agent": self.headers.get("User-Agent", "apt")})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                body = r.read()
                keep = [(k, v) for k, v in r.getheaders() if k.lower() in ("content-type", "last-modified", "etag")]
                self.reply(r.status, body, keep)
        except urllib.error.HTTPError as e:
            self.reply(e.code, e.read())
        except OSError as e:
            self.reply(502, ("upstream: %s\n" % e).encode())


def main():
    portfile, pattern = sys.argv[1], sys.argv[2]
    Proxy.block = re.compile(pattern)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(portfile + ".tmp", portfile)
    srv.serve_forever()


if __name__ == "__main__":
    main()
