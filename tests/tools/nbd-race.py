#!/usr/bin/env python3
"""nbd-race.py URI SECONDS -- readers of base pages racing writers of the same blocks.

Every 4 KiB block of the device starts uniform (all bytes equal, base value (i % 250) + 1), and
every write fills whole blocks with one byte value of its own (251..255 or 0 never collide with
a base value: see below).  Two connections write the same range over and over while two others
read it -- 4 KiB reads (copied replies) and 256 KiB reads (zero-copy where the pages allow) --
for SECONDS.  Each block of every reply must be uniform and hold either the block's base value
or a value some writer used: a mix is a torn block.  Prints the counts; exits 1 on the first torn
block, naming it."""
import sys
import threading
import time

import nbd

uri, seconds = sys.argv[1], float(sys.argv[2])
BS = 4096
RANGE = 4 << 20            # the raced range: [0, 4 MiB) = 1024 blocks
WRITE_VALUES = (251, 252, 253, 254, 255)
stop = threading.Event()
failed = []
counts = {"reads": 0, "writes": 0, "blocks": 0}
lock = threading.Lock()


def base_value(block):
    return (block % 250) + 1


def check(buf, off):
    for i in range(0, len(buf), BS):
        blk = buf[i:i + BS]
        b = (off + i) // BS
        v = blk[0]
        if blk.count(v) != BS:
            return f"block {b} (offset {off + i}) is torn: bytes {sorted(set(blk))[:8]}"
        if v != base_value(b) and v not in WRITE_VALUES:
            return f"block {b} holds {v}: neither its base value {base_value(b)} nor a written one"
    return None


def writer(k):
    h = nbd.NBD()
    h.connect_uri(uri)
    n = 0
    while not stop.is_set():
        v = WRITE_VALUES[(n + k) % len(WRITE_VALUES)]
        off = ((n * 7 + k * 13) % (RANGE // (64 * 1024))) * 64 * 1024
        h.pwrite(bytes([v]) * (64 * 1024), off)
        n += 1
    h.shutdown()
    with lock:
        counts["writes"] += n


def reader(size):
    h = nbd.NBD()
    h.connect_uri(uri)
    n = blocks = 0
    while not stop.is_set():
        off = ((n * 5) % (RANGE // size)) * size
        err = check(h.pread(size, off), off)
        if err:
            failed.append(err)
            stop.set()
        n += 1
        blocks += size // BS
    h.shutdown()
    with lock:
        counts["reads"] += n
        counts["blocks"] += blocks


threads = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
threads += [threading.Thread(target=reader, args=(s,)) for s in (4096, 256 * 1024)]
for t in threads:
    t.start()
time.sleep(seconds)
stop.set()
for t in threads:
    t.join()
if failed:
    print("FAIL:", failed[0])
    sys.exit(1)
print(f"ok   {counts['reads']} reads ({counts['blocks']} blocks checked) raced {counts['writes']} writes of the same blocks: none torn")
