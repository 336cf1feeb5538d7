#!/usr/bin/env python3
"""awsmeta.py -- the AWS credential services on loopback, for tests (python3 standard library only).

Usage:
  awsmeta.py --access-key AK --secret-key SK [--session-token T] [--ttl SECONDS]
             [--port 0] [--port-file F] [--pid-file P] [--role NAME] [--region R]
             [--ecs-token VALUE] [--web-token VALUE] [--source-key AK] [--imdsv1]

One threaded HTTP/1.1 server playing, on one port:
  * EC2 instance metadata, IMDSv2: PUT /latest/api/token (X-aws-ec2-metadata-token-ttl-seconds
    1..21600, else 400) -> a session token valid that long; GET /latest/meta-data/... wants
    X-aws-ec2-metadata-token of a live token (401 otherwise; --imdsv1 also takes none):
    iam/security-credentials/ -> the role name, iam/security-credentials/ROLE -> the credentials
    JSON {Code, LastUpdated, Type, AccessKeyId, SecretAccessKey, Token, Expiration},
    placement/region -> the region;
  * the ECS / EKS container endpoint: GET /ecs/ANYTHING -> the credentials JSON; under
    /ecs/auth/ the Authorization header must equal --ecs-token (401 otherwise), as EKS Pod
    Identity and ECS on Outposts want;
  * STS: POST /sts (form body) Action=AssumeRoleWithWebIdentity (WebIdentityToken must equal
    --web-token when given, RoleArn and RoleSessionName required) and Action=AssumeRole (a SigV4
    Authorization whose Credential is --source-key when given, else any) -> the STS XML answer;
    errors as STS's <ErrorResponse>.
The credentials handed out are --access-key / --secret-key (with --session-token as Token /
SessionToken when given), expiring --ttl seconds after each request (default 3600).

Control: GET /_stats -> {"imds_token", "imds_role", "imds_creds", "ecs", "sts_web", "sts_assume",
"refused", "stalled", "last_assume_key", "ttls"}; POST /_control {"stall": true} makes every later
credential request hang (a metadata service that is down: it accepts and never answers),
{"stall": false} undoes it, {"ttl": N} changes the lifetime, {"expire_tokens": true} forgets
every IMDS session token.
"""

import argparse
import json
import os
import secrets
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs
from xml.sax.saxutils import escape


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class State:
    def __init__(self, a):
        self.a = a
        self.lock = threading.Lock()
        self.ttl = a.ttl
        self.stall = False
        self.tokens = {}
        self.stats = {"imds_token": 0, "imds_role": 0, "imds_creds": 0, "ecs": 0, "sts_web": 0, "sts_assume": 0,
                      "refused": 0, "stalled": 0, "last_assume_key": "", "ttls": []}

    def count(self, k):
        with self.lock:
            self.stats[k] += 1

    def creds(self):
        now = time.time()
        with self.lock:
            self.stats["ttls"].append(self.ttl)
            return {"AccessKeyId": self.a.access_key, "SecretAccessKey": self.a.secret_key,
                    "Token": self.a.session_token, "Expiration": iso(now + self.ttl)}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "awsmeta"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body, ctype="text/plain"):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def stalled(self):
        st = self.server.st
        if st.stall and not self.path.startswith("/_"):
            st.count("stalled")
            time.sleep(30)
            self.close_connection = True
            return True
        return False

    def refuse(self, code, msg):
        self.server.st.count("refused")
        self.reply(code, msg + "\n")

    def do_PUT(self):
        st = self.server.st
        self.body()
        if self.stalled():
            return
        if self.path != "/latest/api/token":
            return self.reply(404, "not found\n")
        try:
            ttl = int(self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", ""))
        except ValueError:
            ttl = 0
        if not 1 <= ttl <= 21600:
            return self.reply(400, "bad X-aws-ec2-metadata-token-ttl-seconds\n")
        tok = "imds-" + secrets.token_hex(16)
        with st.lock:
            st.tokens[tok] = time.time() + ttl
        st.count("imds_token")
        self.reply(200, tok)

    def imds_ok(self):
        st = self.server.st
        tok = self.headers.get("X-aws-ec2-metadata-token")
        if tok is None and st.a.imdsv1:
            return True
        with st.lock:
            return tok is not None and st.tokens.get(tok, 0) > time.time()

    def do_GET(self):
        st = self.server.st
        if self.path == "/_stats":
            with st.lock:
                return self.reply(200, json.dumps(st.stats), "application/json")
        if self.stalled():
            return
        base = "/latest/meta-data/"
        if self.path.startswith(base):
            if not self.imds_ok():
                return self.refuse(401, "no valid IMDSv2 session token")
            rest = self.path[len(base):]
            if rest == "iam/security-credentials/":
                st.count("imds_role")
                return self.reply(200, st.a.role)
            if rest == "iam/security-credentials/" + st.a.role:
                st.count("imds_creds")
                c = st.creds()
                c.update({"Code": "Success", "LastUpdated": iso(time.time()), "Type": "AWS-HMAC"})
                return self.reply(200, json.dumps(c), "application/json")
            if rest == "placement/region":
                return self.reply(200, st.a.region)
            return self.reply(404, "not found\n")
        if self.path.startswith("/ecs/"):
            if self.path.startswith("/ecs/auth/") and self.headers.get("Authorization") != st.a.ecs_token:
                return self.refuse(401, "missing or wrong Authorization")
            st.count("ecs")
            c = st.creds()
            c["RoleArn"] = "arn:aws:iam::000000000000:role/" + st.a.role
            return self.reply(200, json.dumps(c), "application/json")
        self.reply(404, "not found\n")

    def sts_error(self, code, name, msg):
        self.server.st.count("refused")
        body = ("<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>"
                "<RequestId>0</RequestId></ErrorResponse>" % (name, escape(msg)))
        self.reply(code, body, "text/xml")

    def do_POST(self):
        st = self.server.st
        raw = self.body()
        if self.path == "/_control":
            req = json.loads(raw or b"{}")
            with st.lock:
                if "stall" in req:
                    st.stall = bool(req["stall"])
                if "ttl" in req:
                    st.ttl = int(req["ttl"])
                if req.get("expire_tokens"):
                    st.tokens.clear()
            return self.reply(200, "{}", "application/json")
        if self.stalled():
            return
        if self.path.rstrip("/") != "/sts":
            return self.reply(404, "not found\n")
        form = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
        action = form.get("Action")
        if not form.get("RoleArn") or not form.get("RoleSessionName"):
            return self.sts_error(400, "ValidationError", "RoleArn and RoleSessionName are required")
        if action == "AssumeRoleWithWebIdentity":
            if st.a.web_token and form.get("WebIdentityToken") != st.a.web_token:
                return self.sts_error(400, "InvalidIdentityToken", "the web identity token was not accepted")
            st.count("sts_web")
        elif action == "AssumeRole":
            auth = self.headers.get("Authorization", "")
            pre = "AWS4-HMAC-SHA256 Credential="
            key = auth[len(pre):].split("/")[0] if auth.startswith(pre) else ""
            if not key or (st.a.source_key and key != st.a.source_key):
                return self.sts_error(403, "InvalidClientTokenId", "the security token included is invalid")
            with st.lock:
                st.stats["last_assume_key"] = key
            st.count("sts_assume")
        else:
            return self.sts_error(400, "InvalidAction", "unknown Action")
        c = st.creds()
        tok = "<SessionToken>%s</SessionToken>" % escape(c["Token"]) if c["Token"] else ""
        body = ("<{a}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><{a}Result><Credentials>"
                "<AccessKeyId>{ak}</AccessKeyId><SecretAccessKey>{sk}</SecretAccessKey>{tok}"
                "<Expiration>{exp}</Expiration></Credentials>"
                "<AssumedRoleUser><Arn>{arn}</Arn><AssumedRoleId>AROA:{sn}</AssumedRoleId></AssumedRoleUser>"
                "</{a}Result><ResponseMetadata><RequestId>0</RequestId></ResponseMetadata></{a}Response>").format(
                    a=action, ak=escape(c["AccessKeyId"]), sk=escape(c["SecretAccessKey"]), tok=tok,
                    exp=c["Expiration"], arn=escape(form["RoleArn"]), sn=escape(form["RoleSessionName"]))
        self.reply(200, body, "text/xml")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--access-key", required=True)
    p.add_argument("--secret-key", required=True)
    p.add_argument("--session-token", default="")
    p.add_argument("--ttl", type=int, default=3600)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--pid-file")
    p.add_argument("--role", default="snapctl-test-role")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--ecs-token", default="")
    p.add_argument("--web-token", default="")
    p.add_argument("--source-key", default="")
    p.add_argument("--imdsv1", action="store_true")
    a = p.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.st = State(a)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if a.pid_file:
        with open(a.pid_file, "w") as f:
            f.write("%d\n" % os.getpid())
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(tmp, a.port_file)
    sys.stdout.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
