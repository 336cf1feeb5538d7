#!/usr/bin/env python3
"""faultserver.py -- snapctl's fault-injecting HTTP/1.1 test peer (python3 standard library only).

Usage:
  faultserver.py --root DIR [--host 127.0.0.1 [--netns]] [--port 0] [--port-file F] [--pid-file P]
                 [--jwt-pubkey PEM] [--jwt-iss EMAIL] [--jwt-aud URL] [--require-auth]
                 [--token-ttl SECONDS] [--min-part-size BYTES] [--quiet]

One threaded, keep-alive HTTP/1.1 server on loopback.  The port is written to --port-file
(atomically, once listening) so tests can wait for it; SIGTERM stops it.

Files: GET/HEAD serve files under --root (Range `bytes=a-b`, `a-`, `-n` -> 206 + Content-Range,
416 + `bytes */total` past the end; a multi-range or invalid Range is ignored -> 200), with ETag,
Content-Length, Last-Modified; PUT stores a file (ETag = quoted MD5), DELETE removes it.
`x-goog-meta-*`, `x-amz-meta-*` and Content-Type sent with a PUT or a multipart initiate are
returned by GET and HEAD.

Faults.  A spec is a comma-separated list of `name[=value]`, given either
  * per request, as a path prefix:     /_fault/status=503,retry-after=2/bucket/key
    or as a query parameter:            /bucket/key?fault=status%3D503  (removed before routing)
  * or for the next requests a client makes to its own URLs, through the control endpoint:
    POST /_control {"fault": "status=503", "count": 1, "method": "PUT", "match": "partNumber=3(&|$)"}
    ("count" default 1; "method" and "match" -- a regex searched in the path?query -- are
    optional; rules are tried in order and used up).  {"clear": true} drops every rule,
    {"revoke_tokens": true} forgets every issued token; GET /_control lists the rules.
A per-request spec wins over control rules.  Each value is URL-decoded after the spec is split at
commas (in a query parameter, once more by the query decoding): crange=bytes%200-9%2F100.

  status=CODE        answer CODE with an S3-style <Error> XML body (503 SlowDown, 500 InternalError,
                     429 TooManyRequests, ...); code=NAME / message=TEXT override the body
  retry-after=S      add `Retry-After: S` (with status)
  error200[=CODE]    200 with an <Error><Code>CODE</Code> body (default InternalError);
                     ws=N puts N spaces before it (S3 streams spaces while it completes)
  redirect=CODE      301/302/303/307/308 to location=URL (default: the same target, fault removed)
  stall=MS           read the request, wait MS ms, close without answering; with stall-at=K,
                     send the headers and K body bytes first, then wait and close
  ttfb=MS            wait MS ms before the status line
  rate=MBPS          pace the body at MBPS * 10^6 bytes/s (small slices, real sleeping)
  reset=K            send K body bytes, then reset the connection (RST, SO_LINGER 0)
  reset-in=K         reset after receiving K bytes of the request body (uploads)
  truncate=K         send K body bytes, then close cleanly (FIN) though more were announced
  clen=+N | clen=-N  announce Content-Length N bytes more / fewer than sent, close after the body
  bad-range          206 with a Content-Range shifted by one byte from what is sent
  crange=VALUE       206 with this literal Content-Range
  endless            200 with no Content-Length and a body that never ends (until the client closes)
  no-range           ignore a Range header: 200 with the whole object (a server without ranges)
Hostile heads and framing (a client must give up on these in bounded time and memory):
  trickle=MS         send the response head one byte every MS ms
  interim=N          send N "100 Continue" interim responses before the answer (N large: endless,
                     until the client closes)
  fields=N           add N header fields to the head (X-Filler-1: 1 ...)
  head-pad=N         add one header field with an N-byte value
  chunked            send the body with Transfer-Encoding: chunked (one chunk, then the last)
  chunk-ext=N        with chunked: an N-byte extension on the first chunk-size line
  trailers=N         with chunked: about N bytes of trailer fields after the last chunk
K is capped at the body's length.  Faults apply to every route below except /_control, /_stats
and /_uploads; the request body is always read first (unless reset-in), so a connection stays
usable after a replaced answer.

Statistics: GET /_stats -> {"requests", "by_path", "by_method", "bytes_sent" (body bytes),
"bytes_received", "ranges" (Range headers, in order), "faults", "connections", "tokens_issued",
"recent" (the last 1000 requests: {"request": "METHOD target", "status", "authorization" (whether
the request carried an Authorization field), and when there is one "auth": the scheme word of the
Authorization header ("Bearer", "AWS4-HMAC-SHA256"; never the credential), "copy": the copy source
of a CopyObject, "aborted": "reset" or "closed" when the connection was cut})}; POST /_stats/reset
zeroes them.  Control endpoints are not counted.

GCS auth emulation:
  POST /token  grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT
      RS256 signature checked against --jwt-pubkey with `openssl dgst -sha256 -verify`; claims:
      iss (= --jwt-iss if given), aud (= --jwt-aud, default http://HOST/token from the Host
      header), scope, iat <= now + 60, now < exp <= iat + 3600.  Answers
      {"access_token", "expires_in": --token-ttl, "token_type": "Bearer"} or 400 {"error": ...}.
  GET /computeMetadata/v1/instance/service-accounts/default/token  with `Metadata-Flavor: Google`
      (403 without) -> the same token JSON.
  With --require-auth every object request needs `Authorization: Bearer <token issued here,
  not expired>` (401 otherwise).

S3 / GCS XML API multipart (bucket in the path, /BUCKET/KEY; stored as --root/BUCKET/KEY):
  POST /b/k?uploads                      -> InitiateMultipartUploadResult with UploadId
  PUT  /b/k?partNumber=N&uploadId=ID     -> 200 + ETag header (quoted MD5 of the part)
  POST /b/k?uploadId=ID  + CompleteMultipartUpload XML -> parts must be ascending (InvalidPartOrder),
       exist with matching ETags (InvalidPart), each but the last >= --min-part-size, default 5 MiB
       (EntityTooSmall); the object is assembled; ETag = MD5 of the part MD5s + "-N"
  DELETE /b/k?uploadId=ID                -> 204 (404 NoSuchUpload if unknown)
  PUT  /b/k + x-amz-copy-source: /b/src  -> CopyObject (x-goog-copy-source too): the source's bytes and
       metadata, or the request's metadata with x-amz-metadata-directive: REPLACE; ETag kept
  GET /b?uploads                         -> ListMultipartUploadsResult
  GET /_uploads                          -> JSON list of uploads in progress with their parts
"""

import argparse
import base64
import hashlib
import io
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

SLICE = 64 * 1024
MAX_MEMORY_BODY = 16 << 20  # POST bodies (token, complete, control) are read into memory
MAX_RANGES_KEPT = 10000
MAX_RECENT = 1000
S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
METADATA_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
ERROR_CODES = {
    400: ("BadRequest", "Bad request."),
    401: ("AuthenticationRequired", "Authentication required."),
    403: ("AccessDenied", "Access denied."),
    404: ("NoSuchKey", "The specified key does not exist."),
    429: ("TooManyRequests", "Please reduce your request rate."),
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}


class Aborted(Exception):
    """The connection was reset or closed on purpose (or by the client): stop this request."""


# ---------------------------------------------------------------------------------------------
# Fault specs


class Fault:
    INT_KEYS = {"status", "retry-after", "ws", "redirect", "stall", "stall-at", "ttfb", "reset",
                "reset-in", "truncate", "trickle", "interim", "fields", "head-pad", "chunk-ext", "trailers"}
    STR_KEYS = {"code", "message", "location", "crange", "clen", "error200", "rate"}
    FLAG_KEYS = {"bad-range", "endless", "error200", "no-range", "chunked"}

    def __init__(self, text):
        self.text = text
        self.v = {}
        for item in filter(None, (s.strip() for s in text.split(","))):
            name, eq, value = item.partition("=")
            name, value = name.strip().lower(), unquote(value.strip())
            if name in self.FLAG_KEYS and not eq:
                self.v[name] = True
            elif name in self.INT_KEYS and eq:
                if not re.fullmatch(r"\d{1,12}", value):
                    raise ValueError("fault %s needs a non-negative integer, not %r" % (name, value))
                self.v[name] = int(value)
            elif name in self.STR_KEYS and eq:
                self.v[name] = value
            else:
                raise ValueError("unknown fault %r (see faultserver.py --help)" % item)
        if "status" in self.v and not 100 <= self.v["status"] <= 599:
            raise ValueError("fault status must be 100..599")
        if "redirect" in self.v and self.v["redirect"] not in (301, 302, 303, 307, 308):
            raise ValueError("fault redirect must be 301, 302, 303, 307 or 308")
        if "clen" in self.v and not re.fullmatch(r"[+-]\d{1,12}", self.v["clen"]):
            raise ValueError("fault clen must be +N or -N")
        if "rate" in self.v:
            try:
                self.v["rate"] = float(self.v["rate"])
            except ValueError:
                raise ValueError("fault rate must be a number of MB/s") from None
            if not self.v["rate"] > 0:
                raise ValueError("fault rate must be > 0")

    def get(self, name, default=None):
        return self.v.get(name, default)

    def __contains__(self, name):
        return name in self.v

    def replaces_answer(self):
        return any(k in self.v for k in ("status", "error200", "redirect")) or \
            ("stall" in self.v and "stall-at" not in self.v)


NO_FAULT = Fault("")


class Rule:
    def __init__(self, obj):
        if not isinstance(obj, dict) or not isinstance(obj.get("fault"), str):
            raise ValueError('a rule is {"fault": SPEC, "count": N, "method": M, "match": REGEX}')
        self.fault = Fault(obj["fault"])
        self.count = obj.get("count", 1)
        if not isinstance(self.count, int) or self.count < 1:
            raise ValueError("rule count must be a positive integer")
        self.method = obj.get("method")
        self.match_text = obj.get("match")
        self.match = re.compile(self.match_text) if self.match_text else None

    def matches(self, method, target):
        return (not self.method or self.method.upper() == method) and \
            (not self.match or self.match.search(target) is not None)

    def describe(self):
        return {"fault": self.fault.text, "count": self.count, "method": self.method,
                "match": self.match_text}


# ---------------------------------------------------------------------------------------------
# Shared state


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.root = os.path.realpath(args.root)
        self.state_dir = tempfile.mkdtemp(prefix="faultserver-")
        self.args = args
        self.rules = []
        self.tokens = {}   # token -> expiry (monotonic seconds)
        self.uploads = {}  # upload id -> dict
        self.meta = {}     # path under root -> {"size", "mtime_ns", "etag", "headers"}
        self.reset_stats()

    def reset_stats(self):
        self.stats = {"requests": 0, "by_path": {}, "by_method": {}, "bytes_sent": 0,
                      "bytes_received": 0, "ranges": [], "faults": 0, "connections": 0,
                      "tokens_issued": 0, "recent": []}

    def count(self, key, n=1):
        with self.lock:
            self.stats[key] += n

    def next_rule(self, method, target):
        with self.lock:
            for r in self.rules:
                if r.matches(method, target):
                    r.count -= 1
                    if r.count == 0:
                        self.rules.remove(r)
                    return r.fault
        return None

    def issue_token(self):
        token = "fs-" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = time.monotonic() + self.args.token_ttl
            self.stats["tokens_issued"] += 1
        return token

    def token_valid(self, token):
        with self.lock:
            exp = self.tokens.get(token)
        return exp is not None and time.monotonic() < exp


def xml_error(code, message, extra=""):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>%s'
            '<RequestId>%s</RequestId></Error>' % (xml_escape(code), xml_escape(message), extra,
                                                   secrets.token_hex(8))).encode()


def xml_escape(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# ---------------------------------------------------------------------------------------------
# The request handler: routing, bodies in and out, faults


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as nginx does on keep-alive connections: without it a small body written after
    # the headers waits for the client's delayed ACK (~40 ms), which the chunker bench would time.
    disable_nagle_algorithm = True
    server_version = "faultserver/1"
    timeout = 120  # idle keep-alive connections
    record = None  # this request's entry in stats["recent"], once counted

    def parse_request(self):
        self.record = None  # a fresh request on this connection
        return super().parse_request()

    def setup(self):
        super().setup()
        self.server.state.count("connections")

    def log_message(self, fmt, *args):
        if not self.server.state.args.quiet:
            sys.stderr.write("faultserver: %s %s\n" % (self.address_string(), fmt % args))

    def log_request(self, code="-", size="-"):
        if self.record is not None:
            self.record["status"] = int(code) if str(code).isdigit() else code
        super().log_request(code, size)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = lambda self: self.dispatch()

    # -- entry ------------------------------------------------------------------------------

    def dispatch(self):
        st = self.server.state
        self.fault = NO_FAULT
        self.body_in = None
        url = urlsplit(self.path)
        raw_path, query = url.path, url.query
        spec = None
        if raw_path.startswith("/_fault/"):
            spec, _, rest = raw_path[len("/_fault/"):].partition("/")
            raw_path = "/" + rest
        q = parse_qs(query, keep_blank_values=True)
        if "fault" in q:
            spec = q.pop("fault")[0]
            query = "&".join(p for p in query.split("&") if not p.startswith("fault="))
        self.q = {k: v[0] for k, v in q.items()}
        self.raw_path, self.query = raw_path, query
        self.target = raw_path + ("?" + query if query else "")
        self.rel = unquote(raw_path)
        try:
            if self.rel in ("/_stats", "/_stats/reset", "/_control", "/_uploads"):
                return self.internal()
            with st.lock:
                s = st.stats
                s["requests"] += 1
                s["by_path"][self.rel] = s["by_path"].get(self.rel, 0) + 1
                s["by_method"][self.command] = s["by_method"].get(self.command, 0) + 1
                rng = self.headers.get("Range")
                if rng and len(s["ranges"]) < MAX_RANGES_KEPT:
                    s["ranges"].append(rng)
                self.record = {"request": "%s %s" % (self.command, self.target), "status": None,
                               "authorization": "Authorization" in self.headers}
                if self.headers.get("Authorization"):
                    self.record["auth"] = self.headers["Authorization"].split(" ")[0]
                if self.copy_source():
                    self.record["copy"] = self.copy_source()
                s["recent"].append(self.record)
                del s["recent"][:-MAX_RECENT]
            try:
                fault = Fault(spec) if spec is not None else st.next_rule(self.command, self.target)
            except ValueError as e:
                self.read_body(discard=True)
                return self.send(400, [("Content-Type", "text/plain")], str(e).encode() + b"\n")
            if fault is not None and fault.v:
                self.fault = fault
                st.count("faults")
            if self.fault.replaces_answer():
                self.read_body(discard=True)
                return self.replaced_answer()
            self.route()
        except Aborted:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def route(self):
        path, m = self.rel, self.command
        if path == "/token" and m == "POST":
            return self.token_endpoint()
        if path == METADATA_TOKEN_PATH and m == "GET":
            return self.metadata_token()
        if not self.path_ok():
            self.read_body(discard=True)
            return self.send_error_xml(400, "InvalidURI", "Bad path %s" % path)
        if self.server.state.args.require_auth and not self.auth_ok():
            return
        q = self.q
        if m == "POST" and "uploads" in q:
            return self.mp_initiate()
        if m == "PUT" and "uploadId" in q and "partNumber" in q:
            return self.mp_part()
        if m == "POST" and "uploadId" in q:
            return self.mp_complete()
        if m == "DELETE" and "uploadId" in q:
            return self.mp_abort()
        if m == "GET" and "uploads" in q:
            return self.mp_list()
        if m in ("GET", "HEAD"):
            return self.get_object()
        if m == "PUT" and self.copy_source():
            return self.copy_object()
        if m == "PUT":
            return self.put_object()
        if m == "DELETE":
            return self.delete_object()
        self.read_body(discard=True)
        return self.send_error_xml(405, "MethodNotAllowed", "%s is not supported here" % m)

    def replaced_answer(self):
        f = self.fault
        if "stall" in f:
            time.sleep(f.get("stall") / 1000)
            raise self.abort(rst=False)
        if "redirect" in f:
            loc = f.get("location") or self.target
            return self.send(f.get("redirect"), [("Location", loc)], b"")
        if "status" in f:
            code = f.get("status")
            name, msg = ERROR_CODES.get(code, ("Fault", "Injected fault."))
            hdrs = [("Content-Type", "application/xml")]
            if "retry-after" in f:
                hdrs.append(("Retry-After", str(f.get("retry-after"))))
            return self.send(code, hdrs, xml_error(f.get("code", name), f.get("message", msg)))
        code = f.get("error200")
        code = code if isinstance(code, str) else "InternalError"
        msg = f.get("message", ERROR_CODES.get(500)[1] if code == "InternalError" else "Injected error.")
        body = b" " * f.get("ws", 0) + xml_error(code, msg)
        return self.send(200, [("Content-Type", "application/xml")], body)

    # -- bodies -----------------------------------------------------------------------------

    def abort(self, rst):
        """Close the connection now: RST (SO_LINGER 0) or a clean FIN.  Returns Aborted to raise."""
        sock = self.connection
        try:
            if rst:
                # Let what was already sent reach the client, then reset.
                deadline = time.monotonic() + 1.0
                while time.monotonic() < deadline and self.unsent(sock) > 0:
                    time.sleep(0.005)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                os.close(sock.detach())
            else:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True
        if self.record is not None:
            self.record["aborted"] = "reset" if rst else "closed"
        return Aborted()

    @staticmethod
    def unsent(sock):
        try:
            import fcntl
            import termios
            buf = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
            return struct.unpack("i", buf)[0]
        except (OSError, ImportError, AttributeError):
            return 0

    def read_body(self, sink=None, discard=False, limit=MAX_MEMORY_BODY):
        """Read the request body (Content-Length or chunked) into sink (a file) or memory.
        Returns the bytes when no sink is given.  Applies reset-in."""
        if self.body_in is not None:
            return self.body_in
        cut = self.fault.get("reset-in")
        got = 0
        mem = io.BytesIO() if sink is None else None

        def take(data):
            nonlocal got
            if cut is not None and got + len(data) >= cut:
                data = data[:cut - got]
            got += len(data)
            if mem is not None and not discard:
                if got > limit:
                    raise ValueError("request body over %d bytes" % limit)
                mem.write(data)
            elif sink is not None:
                sink.write(data)
            if cut is not None and got >= cut:
                self.server.state.count("bytes_received", got)
                raise self.abort(rst=True)

        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise self.abort(rst=False)
                n = int(line.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                while n:
                    data = self.rfile.read(min(n, SLICE))
                    if not data:
                        raise self.abort(rst=False)
                    take(data)
                    n -= len(data)
                self.rfile.readline(1024)
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left:
                data = self.rfile.read(min(left, SLICE))
                if not data:
                    raise self.abort(rst=False)
                take(data)
                left -= len(data)
        self.server.state.count("bytes_received", got)
        if cut is not None:  # the body was shorter than K: reset after all of it
            raise self.abort(rst=True)
        self.body_in = b"" if mem is None or discard else mem.getvalue()
        return self.body_in

    def send(self, code, headers, body=None, fileobj=None, offset=0, length=None, content_range=None):
        """Answer with the current fault applied: headers, then body bytes or a file slice."""
        f = self.fault
        st = self.server.state
        if "ttfb" in f:
            time.sleep(f.get("ttfb") / 1000)
        if length is None:
            length = len(body) if body is not None else 0
        endless = "endless" in f and self.command != "HEAD"
        if endless:
            code, content_range = 200, None
        if content_range is not None:
            if "crange" in f:
                content_range = f.get("crange")
            elif "bad-range" in f:
                m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", content_range)
                if m:
                    content_range = "bytes %d-%d/%s" % (int(m[1]) + 1, int(m[2]) + 1, m[3])
        elif "crange" in f or "bad-range" in f:
            code = 206
            content_range = f.get("crange") or "bytes 1-%d/%d" % (length, length)
        announced = length
        lying = "clen" in f
        if lying:
            announced = max(0, length + int(f.get("clen")))
        self.send_interim()
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        for i in range(f.get("fields", 0)):
            self.send_header("X-Filler-%d" % (i + 1), str(i + 1))
        if "head-pad" in f:
            self.send_header("X-Pad", "p" * f.get("head-pad"))
        if "chunked" in f and not endless and self.command != "HEAD" and code not in (204, 304):
            return self.send_chunked(headers, content_range, body, fileobj, offset, length)
        if content_range is not None:
            self.send_header("Content-Range", content_range)
        if endless:
            self.send_header("Connection", "close")
            self.close_connection = True
        elif code != 204:
            self.send_header("Content-Length", str(announced))
        self.end_headers()
        if self.command == "HEAD" or code in (204, 304):
            return
        cut = None
        for k in ("reset", "truncate", "stall-at"):
            if k in f:
                cut = f.get(k) if cut is None else min(cut, f.get(k))
        rate = f.get("rate")
        if cut is None and rate is None and not endless and fileobj is not None:
            sent = self.connection.sendfile(fileobj, offset, length) if length else 0
            self.count_sent(sent)
        else:
            self.paced_body(body, fileobj, offset, length, cut, rate, endless)
        if lying:
            raise self.abort(rst=False)

    def send_interim(self):
        for _ in range(self.fault.get("interim", 0)):
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def flush_headers(self):
        """The head as BaseHTTPRequestHandler built it; with trickle, one byte at a time."""
        head = b"".join(getattr(self, "_headers_buffer", []))
        self._headers_buffer = []
        fault = getattr(self, "fault", NO_FAULT)  # unset before dispatch (a 100 Continue, an error)
        if "trickle" not in fault:
            self.wfile.write(head)
            return
        for i in range(len(head)):
            self.wfile.write(head[i:i + 1])
            self.wfile.flush()
            time.sleep(fault.get("trickle") / 1000)

    def send_chunked(self, headers, content_range, body, fileobj, offset, length):
        f = self.fault
        if content_range is not None:
            self.send_header("Content-Range", content_range)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if fileobj is not None:
            fileobj.seek(offset)
            body = fileobj.read(length)
        ext = (";x=" + "e" * max(0, f.get("chunk-ext", 0) - 3)).encode() if "chunk-ext" in f else b""
        out = b"%x%s\r\n%s\r\n" % (len(body), ext, body) if body else b""
        out += b"0\r\n"
        n, i = f.get("trailers", 0), 0
        while n > 0:
            line = b"X-Trailer-%d: %s\r\n" % (i, b"t" * min(1000, n))
            out += line
            n -= len(line)
            i += 1
        self.wfile.write(out + b"\r\n")
        self.count_sent(len(body))

    def count_sent(self, n):
        if self.record is not None:  # control endpoints are not counted
            self.server.state.count("bytes_sent", n)

    def paced_body(self, body, fileobj, offset, length, cut, rate, endless):
        f = self.fault
        st = self.server.state
        total = float("inf") if endless else length
        stop = total if cut is None else min(cut, total)
        step = SLICE if rate is None else int(min(SLICE, max(1024, rate * 1e6 * 0.02)))
        start = time.monotonic()
        sent = 0
        filler = b"x" * SLICE
        while sent < stop:
            n = int(min(step, stop - sent))
            if rate is not None:  # a slice leaves once the rate allows its last byte
                delay = start + (sent + n) / (rate * 1e6) - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            try:
                if fileobj is not None and not endless:
                    # sendfile: no copy through python, so a paced stream at NFS-like rates
                    # leaves the GIL to the other requests (the chunker bench runs several).
                    k = self.connection.sendfile(fileobj, offset + sent, n)
                    if k < n:
                        self.count_sent(sent + k)
                        raise self.abort(rst=False)  # the file shrank under us
                else:
                    self.wfile.write(filler[:n] if endless else body[sent:sent + n])
            except OSError:
                self.count_sent(sent)
                raise Aborted() from None
            sent += n
        self.count_sent(sent)
        if cut is None:
            return
        if "stall-at" in f and f.get("stall-at") == cut:
            time.sleep(f.get("stall", 0) / 1000)
            raise self.abort(rst=False)
        if "reset" in f and f.get("reset") == cut:
            raise self.abort(rst=True)
        raise self.abort(rst=False)  # truncate

    def send_json(self, code, obj, headers=()):
        body = (json.dumps(obj, indent=1) + "\n").encode()
        self.send(code, [("Content-Type", "application/json")] + list(headers), body)

    def send_error_xml(self, code, name, message, extra=""):
        self.send(code, [("Content-Type", "application/xml")], xml_error(name, message, extra))

    # -- control and statistics -------------------------------------------------------------

    def internal(self):
        st = self.server.state
        path, m = self.rel, self.command
        if path == "/_stats" and m == "GET":
            with st.lock:
                snap = json.loads(json.dumps(st.stats))
            return self.send_json(200, snap)
        if path == "/_stats/reset" and m == "POST":
            self.read_body(discard=True)
            with st.lock:
                st.reset_stats()
            return self.send_json(200, {})
        if path == "/_uploads" and m == "GET":
            with st.lock:
                ups = [{"bucket": u["bucket"], "key": u["key"], "upload_id": uid,
                        "initiated": u["initiated"],
                        "parts": [{"number": n, "size": p["size"], "etag": p["etag"]}
                                  for n, p in sorted(u["parts"].items())]}
                       for uid, u in st.uploads.items()]
            return self.send_json(200, ups)
        if path == "/_control" and m == "POST":
            try:
                obj = json.loads(self.read_body() or b"{}")
                items = obj if isinstance(obj, list) else [obj]
                new = []
                for it in items:
                    if isinstance(it, dict) and (it.get("clear") or it.get("revoke_tokens")):
                        with st.lock:
                            if it.get("clear"):
                                st.rules.clear()
                            if it.get("revoke_tokens"):
                                st.tokens.clear()
                        continue
                    new.append(Rule(it))
            except (ValueError, re.error) as e:
                return self.send_json(400, {"error": str(e)})
            with st.lock:
                st.rules.extend(new)
        elif path == "/_control" and m == "GET":
            pass
        else:
            self.read_body(discard=True)
            return self.send_json(405, {"error": "%s %s is not supported" % (m, path)})
        with st.lock:
            rules = [r.describe() for r in st.rules]
        return self.send_json(200, {"rules": rules})

    # -- GCS auth emulation -----------------------------------------------------------------

    def auth_ok(self):
        h = self.headers.get("Authorization", "")
        if h.startswith("Bearer ") and self.server.state.token_valid(h[7:].strip()):
            return True
        self.read_body(discard=True)
        why = "Invalid or expired token." if h.startswith("Bearer ") else "Authentication required."
        self.send_error_xml(401, "AuthenticationRequired", why)
        return False

    def token_json(self):
        st = self.server.state
        return {"access_token": st.issue_token(), "expires_in": st.args.token_ttl, "token_type": "Bearer"}

    def metadata_token(self):
        if self.headers.get("Metadata-Flavor") != "Google":
            return self.send(403, [("Content-Type", "text/plain")], b"Missing Metadata-Flavor: Google header.\n")
        self.send_json(200, self.token_json(), [("Metadata-Flavor", "Google")])

    def token_endpoint(self):
        try:
            form = parse_qs(self.read_body().decode("ascii"), keep_blank_values=True)
        except (ValueError, UnicodeDecodeError) as e:
            return self.send_json(400, {"error": "invalid_request", "error_description": str(e)})
        grant = form.get("grant_type", [""])[0]
        if grant != JWT_GRANT:
            return self.send_json(400, {"error": "unsupported_grant_type",
                                        "error_description": "Invalid grant_type: %s" % grant})
        why = self.check_jwt(form.get("assertion", [""])[0])
        if why:
            return self.send_json(400, {"error": "invalid_grant", "error_description": why})
        self.send_json(200, self.token_json())

    def check_jwt(self, jwt):
        """None if the assertion is good, else why not (Google's wording where it has one)."""
        args = self.server.state.args
        if not args.jwt_pubkey:
            return "faultserver was started without --jwt-pubkey"
        parts = jwt.split(".")
        if len(parts) != 3:
            return "Invalid JWT: not three base64url parts"
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
        except (ValueError, TypeError):
            return "Invalid JWT: bad base64url or JSON"
        if not isinstance(header, dict) or header.get("alg") != "RS256":
            return "Invalid JWT: alg must be RS256"
        with tempfile.NamedTemporaryFile(dir=self.server.state.state_dir) as sf:
            sf.write(sig)
            sf.flush()
            r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", args.jwt_pubkey, "-signature", sf.name],
                               input=(parts[0] + "." + parts[1]).encode(), capture_output=True)
        if r.returncode != 0 or b"Verified OK" not in r.stdout:
            return "Invalid JWT Signature."
        if not isinstance(claims, dict):
            return "Invalid JWT: claims are not an object"
        aud = args.jwt_aud or "http://%s/token" % self.headers.get("Host", "")
        if not isinstance(claims.get("iss"), str) or not claims["iss"] or \
                (args.jwt_iss and claims["iss"] != args.jwt_iss):
            return "Invalid JWT: bad iss %r" % claims.get("iss")
        if claims.get("aud") != aud:
            return "Invalid JWT: Failed audience check. The right audience is %s" % aud
        if not isinstance(claims.get("scope"), str) or not claims["scope"]:
            return "Invalid JWT: no scope"
        iat, exp, now = claims.get("iat"), claims.get("exp"), time.time()
        if not isinstance(iat, int) or not isinstance(exp, int) or iat > now + 60 or exp <= now or \
                exp > iat + 3600:
            return ("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
                    "timeframe. Check your iat and exp values in the JWT claim.")
        return None

    # -- objects ----------------------------------------------------------------------------

    def path_ok(self):
        parts = self.rel.split("/")[1:]
        return self.rel.startswith("/") and "\0" not in self.rel and \
            all(p not in ("", ".", "..") for p in parts[:-1]) and parts[-1] not in (".", "..")

    def fs_path(self):
        return os.path.join(self.server.state.root, self.rel.lstrip("/"))

    def bucket_key(self):
        bucket, _, key = self.rel.lstrip("/").partition("/")
        return bucket, key

    def kept_headers(self):
        return [(k, v) for k, v in self.headers.items()
                if k.lower().startswith(("x-goog-meta-", "x-amz-meta-")) or k.lower() == "content-type"]

    def remember(self, path, etag, headers):
        s = os.stat(path)
        with self.server.state.lock:
            self.server.state.meta[path] = {"size": s.st_size, "mtime_ns": s.st_mtime_ns, "etag": etag,
                                            "headers": headers}

    def get_object(self):
        path = self.fs_path()
        self.read_body(discard=True)
        try:
            fobj = open(path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return self.send_error_xml(404, "NoSuchKey", "The specified key does not exist.",
                                       "<Key>%s</Key>" % xml_escape(self.rel))
        with fobj:
            s = os.fstat(fobj.fileno())
            if not stat.S_ISREG(s.st_mode):
                return self.send_error_xml(404, "NoSuchKey", "The specified key does not exist.")
            total = s.st_size
            with self.server.state.lock:
                m = self.server.state.meta.get(path)
            if m and (m["size"], m["mtime_ns"]) == (total, s.st_mtime_ns):
                etag, kept = m["etag"], m["headers"]
            else:
                etag, kept = '"%x-%x"' % (s.st_mtime_ns, total), []
            hdrs = [("ETag", etag), ("Accept-Ranges", "bytes"),
                    ("Last-Modified", formatdate(s.st_mtime, usegmt=True))]
            if not any(k.lower() == "content-type" for k, _ in kept):
                hdrs.append(("Content-Type", "application/octet-stream"))
            hdrs += kept
            rng = None if "no-range" in self.fault else parse_range(self.headers.get("Range"), total)
            if rng == "unsatisfiable":
                return self.send(416, [("Content-Range", "bytes */%d" % total)] + hdrs[:1], b"")
            if rng is None:
                return self.send(200, hdrs, fileobj=fobj, length=total)
            a, b = rng
            return self.send(206, hdrs, fileobj=fobj, offset=a, length=b - a + 1,
                             content_range="bytes %d-%d/%d" % (a, b, total))

    def store_body(self, dest):
        """Stream the request body into dest atomically; returns (md5 hex, size)."""
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as out:
                sink = HashingWriter(out)
                self.read_body(sink=sink)
            os.replace(tmp, dest)
        except BaseException:
            os.unlink(tmp)
            raise
        return sink.md5.hexdigest(), sink.size

    def put_object(self):
        if self.rel.endswith("/"):
            self.read_body(discard=True)
            return self.send_error_xml(400, "InvalidURI", "A key may not end with '/'.")
        path = self.fs_path()
        md5, _ = self.store_body(path)
        etag = '"%s"' % md5
        self.remember(path, etag, self.kept_headers())
        self.send(200, [("ETag", etag)], b"")

    def copy_source(self):
        return self.headers.get("x-amz-copy-source") or self.headers.get("x-goog-copy-source")

    def copy_object(self):
        """CopyObject: the source's bytes; its metadata, or the request's with directive REPLACE."""
        self.read_body(discard=True)
        src_rel = "/" + unquote(self.copy_source()).lstrip("/")
        src = os.path.join(self.server.state.root, src_rel.lstrip("/"))
        if any(p in ("", ".", "..") for p in src_rel.split("/")[1:]) or not os.path.isfile(src):
            return self.send_error_xml(404, "NoSuchKey", "The copy source does not exist.")
        path = self.fs_path()
        with self.server.state.lock:
            m = self.server.state.meta.get(src)
        etag = m["etag"] if m else '"%x"' % os.stat(src).st_mtime_ns
        kept = m["headers"] if m else []
        directive = self.headers.get("x-amz-metadata-directive") or self.headers.get("x-goog-metadata-directive")
        if (directive or "").upper() == "REPLACE":
            kept = self.kept_headers()
        if os.path.abspath(src) != os.path.abspath(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            shutil.copyfile(src, path)
        self.remember(path, etag, kept)
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<CopyObjectResult><ETag>%s</ETag></CopyObjectResult>'
                % xml_escape(etag)).encode()
        self.send(200, [("Content-Type", "application/xml")], body)

    def delete_object(self):
        self.read_body(discard=True)
        try:
            os.unlink(self.fs_path())
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            pass
        self.send(204, [], b"")

    # -- multipart --------------------------------------------------------------------------

    def upload(self):
        """The upload named by ?uploadId for this bucket/key, or None (after answering 404)."""
        st = self.server.state
        bucket, key = self.bucket_key()
        with st.lock:
            u = st.uploads.get(self.q.get("uploadId"))
        if u is None or (u["bucket"], u["key"]) != (bucket, key):
            self.read_body(discard=True)
            self.send_error_xml(404, "NoSuchUpload", "The specified upload does not exist.",
                                "<UploadId>%s</UploadId>" % xml_escape(self.q.get("uploadId", "")))
            return None
        return u

    def mp_initiate(self):
        self.read_body(discard=True)
        bucket, key = self.bucket_key()
        if not bucket or not key:
            return self.send_error_xml(400, "InvalidRequest", "Multipart uploads need /BUCKET/KEY.")
        st = self.server.state
        uid = secrets.token_urlsafe(24)
        os.makedirs(os.path.join(st.state_dir, uid))
        with st.lock:
            st.uploads[uid] = {"bucket": bucket, "key": key, "path": self.fs_path(), "parts": {},
                               "headers": self.kept_headers(), "dir": os.path.join(st.state_dir, uid),
                               "initiated": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())}
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult xmlns="%s">'
                "<Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>"
                % (S3_NS, xml_escape(bucket), xml_escape(key), uid)).encode()
        self.send(200, [("Content-Type", "application/xml")], body)

    def mp_part(self):
        u = self.upload()
        if u is None:
            return
        n = self.q.get("partNumber", "")
        if not re.fullmatch(r"\d{1,5}", n) or not 1 <= int(n) <= 10000:
            self.read_body(discard=True)
            return self.send_error_xml(400, "InvalidArgument", "Part number must be an integer between 1 and 10000.")
        n = int(n)
        path = os.path.join(u["dir"], "part-%05d" % n)
        md5, size = self.store_body(path)
        etag = '"%s"' % md5
        with self.server.state.lock:
            u["parts"][n] = {"path": path, "size": size, "etag": etag, "md5": bytes.fromhex(md5)}
        self.send(200, [("ETag", etag)], b"")

    def mp_complete(self):
        u = self.upload()
        if u is None:
            return
        st = self.server.state
        try:
            root = ET.fromstring(self.read_body())
            listed = []
            for p in root.iter():
                if p.tag.split("}")[-1] != "Part":
                    continue
                fields = {c.tag.split("}")[-1]: (c.text or "").strip() for c in p}
                listed.append((int(fields["PartNumber"]), fields["ETag"].strip('"')))
            if root.tag.split("}")[-1] != "CompleteMultipartUpload" or not listed:
                raise ValueError("no parts")
        except (ET.ParseError, ValueError, KeyError):
            return self.send_error_xml(400, "MalformedXML", "The XML you provided was not well-formed or did "
                                       "not validate against our published schema.")
        with st.lock:
            parts = dict(u["parts"])
        for i, (n, etag) in enumerate(listed):
            if i and n <= listed[i - 1][0]:
                return self.send_error_xml(400, "InvalidPartOrder", "The list of parts was not in ascending "
                                           "order. The parts list must be specified in order of the part number.")
            if n not in parts or parts[n]["etag"].strip('"') != etag:
                return self.send_error_xml(400, "InvalidPart", "One or more of the specified parts could not be "
                                           "found. The part may not have been uploaded, or the specified entity "
                                           "tag may not match the part's entity tag.",
                                           "<PartNumber>%d</PartNumber><ETag>%s</ETag>" % (n, xml_escape(etag)))
            if i < len(listed) - 1 and parts[n]["size"] < st.args.min_part_size:
                return self.send_error_xml(400, "EntityTooSmall", "Your proposed upload is smaller than the "
                                           "minimum allowed object size.",
                                           "<PartNumber>%d</PartNumber><ProposedSize>%d</ProposedSize>"
                                           "<MinSizeAllowed>%d</MinSizeAllowed>"
                                           % (n, parts[n]["size"], st.args.min_part_size))
        dest = u["path"]
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".complete-")
        with os.fdopen(fd, "wb") as out:
            for n, _ in listed:
                with open(parts[n]["path"], "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        os.replace(tmp, dest)
        etag = '"%s-%d"' % (hashlib.md5(b"".join(parts[n]["md5"] for n, _ in listed)).hexdigest(), len(listed))
        self.remember(dest, etag, u["headers"])
        with st.lock:
            st.uploads.pop(self.q["uploadId"], None)
        shutil.rmtree(u["dir"], ignore_errors=True)
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult xmlns="%s">'
                "<Location>http://%s%s</Location><Bucket>%s</Bucket><Key>%s</Key><ETag>%s</ETag>"
                "</CompleteMultipartUploadResult>"
                % (S3_NS, xml_escape(self.headers.get("Host", "")), xml_escape(quote(self.rel)),
                   xml_escape(u["bucket"]), xml_escape(u["key"]), xml_escape(etag))).encode()
        self.send(200, [("Content-Type", "application/xml")], body)

    def mp_abort(self):
        u = self.upload()
        if u is None:
            return
        self.read_body(discard=True)
        with self.server.state.lock:
            self.server.state.uploads.pop(self.q["uploadId"], None)
        shutil.rmtree(u["dir"], ignore_errors=True)
        self.send(204, [], b"")

    def mp_list(self):
        self.read_body(discard=True)
        bucket, _ = self.bucket_key()
        with self.server.state.lock:
            ups = sorted((u["key"], uid, u["initiated"]) for uid, u in self.server.state.uploads.items()
                         if u["bucket"] == bucket)
        items = "".join("<Upload><Key>%s</Key><UploadId>%s</UploadId><StorageClass>STANDARD</StorageClass>"
                        "<Initiated>%s</Initiated></Upload>" % (xml_escape(k), uid, t) for k, uid, t in ups)
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="%s">'
                "<Bucket>%s</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>"
                "<MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>%s</ListMultipartUploadsResult>"
                % (S3_NS, xml_escape(bucket), items)).encode()
        self.send(200, [("Content-Type", "application/xml")], body)


class HashingWriter:
    def __init__(self, out):
        self.out, self.md5, self.size = out, hashlib.md5(), 0

    def write(self, data):
        self.out.write(data)
        self.md5.update(data)
        self.size += len(data)


def parse_range(h, total):
    """(first, last) for one satisfiable range, "unsatisfiable", or None to ignore the header."""
    if not h:
        return None
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", h)
    if not m or (m[1] == "" and m[2] == ""):
        return None
    if m[1] == "":
        n = int(m[2])
        return "unsatisfiable" if n == 0 or total == 0 else (max(0, total - n), total - 1)
    a = int(m[1])
    if m[2] != "" and int(m[2]) < a:
        return None
    if a >= total:
        return "unsatisfiable"
    return a, total - 1 if m[2] == "" else min(int(m[2]), total - 1)


# ---------------------------------------------------------------------------------------------


def write_atomic(path, text):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.split("\n")[1:]))
    ap.add_argument("--root", required=True, help="directory served and written")
    ap.add_argument("--host", default="127.0.0.1", help="loopback address to bind (127.0.0.0/8 or ::1)")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--pid-file", help="write the server's PID here")
    ap.add_argument("--jwt-pubkey", help="PEM public key that checks JWT assertions at POST /token")
    ap.add_argument("--jwt-iss", help="required iss claim (default: any)")
    ap.add_argument("--jwt-aud", help="required aud claim (default: http://HOST/token)")
    ap.add_argument("--require-auth", action="store_true", help="object requests need a Bearer token issued here")
    ap.add_argument("--token-ttl", type=int, default=3600, help="lifetime of issued tokens, seconds")
    ap.add_argument("--min-part-size", type=int, default=5 << 20, help="multipart minimum for all but the last part")
    ap.add_argument("--quiet", action="store_true", help="no per-request log on stderr")
    ap.add_argument("--netns", action="store_true",
                    help="allow a non-loopback --host: only inside a network namespace with lo alone")
    args = ap.parse_args()

    host = "127.0.0.1" if args.host == "localhost" else args.host
    alone = [n for _, n in socket.if_nameindex()] == ["lo"]
    if not ipaddress.ip_address(host).is_loopback and not (args.netns and alone):
        ap.error("--host must be a loopback address (any address only with --netns, in a network "
                 "namespace whose only interface is lo)")
    if not os.path.isdir(args.root):
        ap.error("--root %s is not a directory" % args.root)

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 128

    httpd = Server((host, args.port), Handler)
    httpd.state = State(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.pid_file:
        write_atomic(args.pid_file, "%d\n" % os.getpid())
    if args.port_file:
        write_atomic(args.port_file, "%d\n" % httpd.server_address[1])
    try:
        httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
        shutil.rmtree(httpd.state.state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
