#!/usr/bin/env bash
# chain-depth.sh -- serve-nbd over deep header chains: threads, open files and memory against the
# chain's depth (issue 14, "one fetch pool per process").
#
#   SNAPCTL=./snapctl tests/bench/chain-depth.sh [--gens "1 10 50 100 200"] [--size 32]
#       [--store http|file] [--json FILE] [--max-threads N] [--max-thread-growth N] [--max-fds-growth N]
#
# Makes a base build (--size MiB of random data, written through `serve-nbd --size --stdio
# --export-diff`) and a chain over it, one generation at a time: each is `serve-nbd --stdio
# --header <previous> --export-diff` with one write of 4-64 KiB of random data at a random
# 4 KiB-aligned offset, exported when the connection ends.  So reading the whole device at depth
# N touches up to N+1 builds, each through its own chunker.  Then for each depth in --gens: serve
# that generation's header from the store (http: the loopback fault server, so chunkers stream;
# file: file://), read the whole device with nbdcopy twice (cold, then warm), compare SHA-256 with
# the expected image, and sample serve-nbd's /proc/PID/status (Threads, RssAnon) and /proc/PID/fd
# every 20 ms during each read; the table shows the peaks.
# "fetch" counts the fetch pool's threads (named snapctl-fetch).  --max-threads N: exit 1 when a
# peak thread count passes N; --max-fetch N: when the fetch threads do; --max-thread-growth N:
# when the deepest chain's thread count during its warm read exceeds the shallowest's by more than
# N (during a cold read the NBD server adds a worker per waiting request); --max-fds-growth N: exit 1 when the
# deepest chain's open files exceed the shallowest's by more than N (one cache file per build read
# is expected: pass the number of builds that may differ).  Exits 1 on wrong data, 77 when a
# needed program is missing.
set -euo pipefail
SNAPCTL=${SNAPCTL:-./snapctl}
gens="1 10 50 100 200" size=32 store=http json="" max_fetch=-1 max_threads=0 max_thread_growth=-1 max_fds_growth=-1
while [ $# -gt 0 ]; do
    case $1 in
    --gens) gens=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --store) store=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    --max-threads) max_threads=$2; shift 2 ;;
    --max-thread-growth) max_thread_growth=$2; shift 2 ;;
    --max-fetch) max_fetch=$2; shift 2 ;;
    --max-fds-growth) max_fds_growth=$2; shift 2 ;;
    *) echo "usage: $0 [--gens \"1 10 50\"] [--size MiB] [--store http|file] [--json FILE]" \
            "[--max-threads N] [--max-thread-growth N] [--max-fetch N] [--max-fds-growth N]" >&2; exit 2 ;;
    esac
done
for p in nbdcopy /usr/bin/python3; do
    command -v $p >/dev/null || { echo "chain-depth.sh: $p is required (apt-get install libnbd-bin python3-libnbd)" >&2; exit 77; }
done
/usr/bin/python3 -c 'import nbd' 2>/dev/null || { echo "chain-depth.sh: python3-libnbd is required" >&2; exit 77; }
TOP=$(cd "$(dirname "$0")/../.." && pwd)
SNAPCTL=$(cd "$(dirname "$SNAPCTL")" && pwd)/$(basename "$SNAPCTL")
T=$(mktemp -d "${TMPDIR:-/tmp}/chain-depth.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"
exec /usr/bin/python3 - "$SNAPCTL" "$TOP" "$T" "$gens" "$size" "$store" "$json" "$max_threads" \
    "$max_thread_growth" "$max_fds_growth" "$max_fetch" <<'EOF'
import hashlib, json, os, random, signal, socket, subprocess, sys, time
import nbd

snap, top, T, gens, size_mib, store, json_out, max_threads, max_thread_growth, max_fds_growth, max_fetch = sys.argv[1:]
gens = sorted(int(g) for g in gens.split())
size = int(size_mib) << 20
max_threads, max_thread_growth, max_fds_growth, max_fetch = (int(max_threads), int(max_thread_growth),
                                                           int(max_fds_growth), int(max_fetch))
S = os.path.join(T, "store")
os.makedirs(S)
os.makedirs(os.path.join(T, "cache"))
env = dict(os.environ, TMPDIR=os.path.join(T, "cache"))
rng = random.Random(14)
procs = []

def stop_all():
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

def builds():
    return {d for d in os.listdir(S) if not d.startswith(".")}

def new_build(args, writes):
    """Serve args over --stdio, apply writes [(offset, bytes)], return the exported build id."""
    before = builds()
    h = nbd.NBD()
    saved = os.dup(2)  # the server's export answers go to its stderr: into a log, not ours
    os.dup2(chain_log.fileno(), 2)
    try:
        h.connect_command([snap, "serve-nbd", "--stdio", "--export-diff", S] + args)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    for off, data in writes:
        h.pwrite(data, off)
    h.shutdown()
    del h
    for _ in range(500):
        made = builds() - before
        if made:
            return made.pop()
        time.sleep(0.01)
    raise SystemExit("chain-depth: no build exported after %r" % args)

# --- the chain ---------------------------------------------------------------------------------
chain_log = open(os.path.join(T, "chain.log"), "w")
t0 = time.time()
img = bytearray(rng.randbytes(size))
chain = [new_build(["--size", "%dM" % int(size_mib)],
                   [(o, bytes(img[o:o + (1 << 20)])) for o in range(0, size, 1 << 20)])]
fname = next(f[:-len(".header")] for f in os.listdir(os.path.join(S, chain[0])) if f.endswith(".header"))
want = {0: hashlib.sha256(img).hexdigest()}
for g in range(1, gens[-1] + 1):
    n = rng.randrange(1, 17) * 4096
    off = rng.randrange(0, (size - n) // 4096 + 1) * 4096
    data = rng.randbytes(n)
    img[off:off + n] = data
    hdr = "file://%s/%s/%s.header" % (S, chain[-1], fname)
    chain.append(new_build(["--header", hdr], [(off, data)]))
    if g in gens:
        want[g] = hashlib.sha256(img).hexdigest()
print("chain: %d generations over a %d MiB base in %.1f s" % (gens[-1], int(size_mib), time.time() - t0),
      flush=True)

# --- the store ---------------------------------------------------------------------------------
def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p

def wait_file(path, proc, what):
    for _ in range(200):
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return open(path).read().strip()
        if proc.poll() is not None:
            raise SystemExit("chain-depth: %s exited %s at start" % (what, proc.returncode))
        time.sleep(0.05)
    raise SystemExit("chain-depth: %s did not start" % what)

if store == "http":
    fs = subprocess.Popen(["python3", os.path.join(top, "tests/tools/faultserver.py"), "--root", S, "--port", "0",
                           "--port-file", os.path.join(T, "fs.port")], stderr=open(os.path.join(T, "fs.log"), "w"))
    procs.append(fs)
    base_url = "http://127.0.0.1:%s" % wait_file(os.path.join(T, "fs.port"), fs, "faultserver")
elif store == "file":
    base_url = "file://" + S
else:
    raise SystemExit("chain-depth: --store http or file")

# --- serve each depth, read it cold and warm ---------------------------------------------------
def sample(pid):
    st = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Threads", "RssAnon"):
                st[k] = int(v.split()[0])
    st["fds"] = len(os.listdir("/proc/%d/fd" % pid))
    fetch = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            fetch += open("/proc/%d/task/%s/comm" % (pid, t)).read().strip() == "snapctl-fetch"
        except OSError:
            pass  # the thread ended meanwhile
    st["fetch"] = fetch
    return st

def read_all(pid, uri, out):
    peak = {"Threads": 0, "RssAnon": 0, "fds": 0, "fetch": 0}
    t = time.time()
    cp = subprocess.Popen(["nbdcopy", uri, out])
    while cp.poll() is None:
        for k, v in sample(pid).items():
            peak[k] = max(peak[k], v)
        time.sleep(0.02)
    if cp.returncode:
        raise SystemExit("chain-depth: nbdcopy exited %d" % cp.returncode)
    for k, v in sample(pid).items():
        peak[k] = max(peak[k], v)
    peak["seconds"] = time.time() - t
    return peak

rows = []
bad = []
try:
    for g in gens:
        port = free_port()
        pidf = os.path.join(T, "srv.pid")
        if os.path.exists(pidf):
            os.unlink(pidf)
        srv = subprocess.Popen([snap, "serve-nbd", "--header", "%s/%s/%s.header" % (base_url, chain[g], fname),
                                "-l", "127.0.0.1:%d" % port, "--pid-file", pidf], env=env)
        procs.append(srv)
        wait_file(pidf, srv, "serve-nbd")
        idle = sample(srv.pid)
        row = {"generation": g, "idle": idle}
        for phase in ("cold", "warm"):
            out = os.path.join(T, "copy")
            row[phase] = read_all(srv.pid, "nbd://127.0.0.1:%d" % port, out)
            with open(out, "rb") as f:
                ok = hashlib.sha256(f.read()).hexdigest() == want[g]
            os.unlink(out)
            row[phase]["ok"] = ok
            if not ok:
                bad.append("generation %d %s read differs from the expected image" % (g, phase))
        srv.send_signal(signal.SIGTERM)
        if srv.wait(30) != 0:
            bad.append("serve-nbd of generation %d exited %d" % (g, srv.returncode))
        rows.append(row)
        c, w = row["cold"], row["warm"]
        if not rows[1:]:
            print("%5s  %7s %7s  %5s  %5s %5s  %9s %9s  %6s %6s  %s" % ("gen", "threads", "(warm)", "fetch", "fds",
                  "(warm)", "RssAnon", "(warm)", "cold s", "warm s", "data"))
        print("%5d  %7d %7d  %5d  %5d %5d  %6d KiB %6d KiB  %6.2f %6.2f  %s" % (
            g, c["Threads"], w["Threads"], max(c["fetch"], w["fetch"]), c["fds"], w["fds"], c["RssAnon"],
            w["RssAnon"], c["seconds"],
            w["seconds"], "ok" if c["ok"] and w["ok"] else "WRONG"), flush=True)
finally:
    stop_all()

if json_out:
    with open(json_out, "w") as f:
        json.dump({"benchmark": "chain-depth", "store": store, "size_mib": int(size_mib), "rows": rows}, f)
peak_threads = max(max(r["cold"]["Threads"], r["warm"]["Threads"]) for r in rows)
if max_threads and peak_threads > max_threads:
    bad.append("serve-nbd peaked at %d threads (at most %d wanted)" % (peak_threads, max_threads))
def peak(r, k):
    return max(r["cold"][k], r["warm"][k])
# Warm reads wait for nothing, so the NBD workers (started per waiting request, lib/nbd) stay few:
# what is left is what the device holds -- the fetch threads.
thread_growth = rows[-1]["warm"]["Threads"] - rows[0]["warm"]["Threads"]
peak_fetch = max(peak(r, "fetch") for r in rows)
if max_fetch >= 0 and peak_fetch > max_fetch:
    bad.append("%d fetch threads (at most %d wanted)" % (peak_fetch, max_fetch))
if max_thread_growth >= 0 and thread_growth > max_thread_growth:
    bad.append("threads grew by %d from generation %d to %d (at most %d wanted)" % (
        thread_growth, rows[0]["generation"], rows[-1]["generation"], max_thread_growth))
fd_growth = max(rows[-1]["cold"]["fds"], rows[-1]["warm"]["fds"]) - max(rows[0]["cold"]["fds"], rows[0]["warm"]["fds"])
if max_fds_growth >= 0 and fd_growth > max_fds_growth:
    bad.append("open files grew by %d from generation %d to %d (at most %d wanted)" % (
        fd_growth, rows[0]["generation"], rows[-1]["generation"], max_fds_growth))
for b in bad:
    print("chain-depth: FAIL: " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
