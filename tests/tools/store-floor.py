#!/usr/bin/env python3
"""store-floor.py URL SIZE N -- what the store itself gives a plain HTTP client, as the floor of
the cold benchmark: N threads, each on its own keep-alive connection, each doing 16 ranged GETs of
4 KiB at random offsets (N requests in flight, as fio keeps N reads in flight), then N threads
each streaming a 4 MiB range.  Prints one line: "TTFB_MS IOPS STREAM_MBPS" -- the median time to
a whole 4 KiB answer with N in flight, the 4 KiB requests per second, and the aggregate MB/s of N
parallel 4 MiB streams.  No snapctl code is involved."""
import http.client
import random
import statistics
import sys
import threading
import time
import urllib.parse

url, size, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
u = urllib.parse.urlsplit(url)
lat, lock = [], threading.Lock()


def get(conn, off, length):
    conn.request("GET", u.path, headers={"Range": f"bytes={off}-{off + length - 1}"})
    r = conn.getresponse()
    body = r.read()
    if r.status != 206 or len(body) != length:
        raise SystemExit(f"store-floor: GET {off}+{length}: HTTP {r.status}, {len(body)} bytes")


def small(seed):
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    rnd = random.Random(seed)
    get(conn, 0, 4096)  # the connection is open before the clock starts
    mine = []
    barrier.wait()
    for _ in range(16):
        t0 = time.monotonic()
        get(conn, rnd.randrange(size // 4096) * 4096, 4096)
        mine.append(time.monotonic() - t0)
    with lock:
        lat.extend(mine)


def stream(i):
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    get(conn, 0, 4096)
    barrier.wait()
    get(conn, (i * (4 << 20)) % max(size - (4 << 20), 1), 4 << 20)


def run(fn):
    threads = [threading.Thread(target=fn, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join()
    return time.monotonic() - t0


barrier = threading.Barrier(n + 1)
secs = run(small)
barrier = threading.Barrier(n + 1)
ssecs = run(stream)
print(f"{statistics.median(lat) * 1000:.1f} {16 * n / secs:.0f} {n * 4 * 1.048576 / ssecs:.0f}")
