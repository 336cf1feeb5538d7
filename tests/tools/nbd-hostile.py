#!/usr/bin/python3
"""nbd-hostile.py URI MIN_BLOCK -- send invalid requests to an NBD server and check each answer.
nbd-hostile.py SCENARIO URI PID [ARGS] -- misbehave in one way (see SCENARIOS at the end) and
check the server copes: bounded time, bounded memory (RssAnon of PID), the connection dropped,
and afterwards a fresh client served at once with RSS and fd count back near their start.

Uses libnbd (nbdsh's module) with strict mode off for what libnbd can express, and a raw socket
for what it cannot (unknown command, bad magic, truncated header).  After each connection-killing
request a fresh connection must still work.  Exits non-zero with a message on the first surprise.
"""
import errno
import os
import socket
import struct
import sys
import threading
import time

import nbd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile import back_to_start, closed_by_server, fail, proc_stats, rss_bound, wait_for  # noqa: E402

if not sys.argv[1].startswith("nbd://"):
    SCENARIO = sys.argv.pop(1)
uri = sys.argv[1]
if uri.startswith("nbd://"):
    host, port = uri[len("nbd://"):].rstrip("/").rsplit(":", 1)
    port = int(port)


def expect_errno(what, want, fn):
    try:
        fn()
    except nbd.Error as e:
        got = e.errno if isinstance(e.errno, str) else errno.errorcode.get(e.errno, e.errno)
        if got != errno.errorcode[want]:
            fail(f"{what}: errno {e.errno} ({e.string}), expected {errno.errorcode[want]}")
        print(f"ok   {what}: {errno.errorcode[want]}")
        return
    fail(f"{what}: succeeded, expected {errno.errorcode[want]}")


def raw_connect():
    s = socket.create_connection((host, port), timeout=5)
    hello = s.recv(18, socket.MSG_WAITALL)
    assert hello[:8] == b"NBDMAGIC", hello
    s.sendall(struct.pack(">I", 3))  # fixed newstyle, no zeroes
    # NBD_OPT_GO for the default export, no info requests.
    s.sendall(struct.pack(">QIIIH", 0x49484156454F5054, 7, 6, 0, 0))
    while True:
        magic, opt, rtype, rlen = struct.unpack(">QIII", s.recv(20, socket.MSG_WAITALL))
        if rlen:
            s.recv(rlen, socket.MSG_WAITALL)
        if rtype == 1:  # ACK
            return s
        if rtype & 0x80000000:
            fail(f"GO refused: {rtype:#x}")


def request(s, typ, off, length, cookie, flags=0, magic=0x25609513):
    s.sendall(struct.pack(">IHHQQI", magic, flags, typ, cookie, off, length))


def simple_reply(s):
    hdr = s.recv(16, socket.MSG_WAITALL)
    if len(hdr) < 16:
        return None
    magic, err, cookie = struct.unpack(">IIQ", hdr)
    assert magic == 0x67446698, hex(magic)
    return err, cookie



def invalid_requests(min_block):
    h = nbd.NBD()
    h.set_strict_mode(0)
    h.connect_uri(uri)
    size = h.get_size()
    buf = bytearray(4096)

    expect_errno("read past the end", errno.EINVAL, lambda: h.pread(4096, size - 2048))
    expect_errno("read at offset beyond size", errno.EINVAL, lambda: h.pread(512, size + 4096))
    expect_errno("offset+length overflow", errno.EINVAL, lambda: h.pread(4096, 2**64 - 2048))
    expect_errno("write past the end", errno.ENOSPC, lambda: h.pwrite(bytes(4096), size - 2048))
    expect_errno("oversize read (33 MiB)", errno.EOVERFLOW, lambda: h.pread(33 << 20, 0))
    expect_errno("oversize write (33 MiB, payload drained)", errno.EINVAL, lambda: h.pwrite(bytes(33 << 20), 0))
    expect_errno("zero-length read", errno.EINVAL, lambda: h.pread(0, 0))
    expect_errno("trim past the end", errno.ENOSPC, lambda: h.trim(8192, size - 4096))
    expect_errno("REQ_ONE on a read", errno.EINVAL, lambda: h.pread(4096, 0, flags=nbd.CMD_FLAG_REQ_ONE))
    if min_block > 1:
        expect_errno("misaligned read", errno.EINVAL, lambda: h.pread(4096, 1))
        expect_errno("misaligned write length", errno.EINVAL, lambda: h.pwrite(bytes(min_block + 1), 0))
    # The connection is still in sync after all of that.
    data = h.pread(4096, 0)
    if len(data) != 4096:
        fail("a valid read after the invalid ones")
    print("ok   connection still in sync after invalid requests")
    h.shutdown()


    s = raw_connect()
    request(s, 99, 0, 4096, cookie=7)
    r = simple_reply(s)
    if r != (errno.EINVAL, 7):
        fail(f"unknown command 99: reply {r}")
    print("ok   unknown command: EINVAL")
    request(s, 0, 0, 4096, cookie=8, flags=0x8000)
    r = simple_reply(s)
    if r != (errno.EINVAL, 8):
        fail(f"unknown flag: reply {r}")
    print("ok   unknown command flag: EINVAL")

    # A second connection is open while the first is broken by a bad magic.
    s2 = raw_connect()
    request(s, 0, 0, 4096, cookie=9, magic=0xdeadbeef)
    if s.recv(1) != b"":
        fail("bad magic: the connection stayed open")
    print("ok   bad magic: that connection alone is dropped")
    request(s2, 0, 0, 4096, cookie=10)
    r = simple_reply(s2)
    if r != (0, 10) or len(s2.recv(4096, socket.MSG_WAITALL)) != 4096:
        fail(f"second connection after the first was dropped: {r}")
    print("ok   second connection keeps working")

    s3 = raw_connect()
    s3.sendall(struct.pack(">IHH", 0x25609513, 0, 0))  # 8 of 28 header bytes, then hang up
    s3.close()
    request(s2, 0, 4096, 4096, cookie=11)
    r = simple_reply(s2)
    if r != (0, 11):
        fail(f"after a truncated header on another connection: {r}")
    s2.recv(4096, socket.MSG_WAITALL)
    print("ok   truncated header on one connection does not disturb another")
    request(s2, 2, 0, 0, cookie=12)  # DISC
    s2.close()
    print("all hostile requests answered")


# ---- scenarios: one misbehaviour each, with bounds on time and memory ------------------------

def good_client(within=3.0, what="a fresh client"):
    """A well-behaved client connects, reads and leaves at once."""
    t0 = time.monotonic()
    g = nbd.NBD()
    g.connect_uri(uri)
    if len(g.pread(4096, 0)) != 4096:
        fail(f"{what}: short read")
    g.shutdown()
    dt = time.monotonic() - t0
    if dt > within:
        fail(f"{what} took {dt:.1f} s (bound {within} s)")
    print(f"ok   {what} served in {dt * 1000:.0f} ms")


def raw_go(s):
    hello = s.recv(18, socket.MSG_WAITALL)
    assert hello[:8] == b"NBDMAGIC", hello
    s.sendall(struct.pack(">I", 3))
    s.sendall(struct.pack(">QIIIH", 0x49484156454F5054, 7, 6, 0, 0))
    while True:
        magic, opt, rtype, rlen = struct.unpack(">QIII", s.recv(20, socket.MSG_WAITALL))
        body = s.recv(rlen, socket.MSG_WAITALL) if rlen else b""
        if rtype == 1:
            return
        if rtype & 0x80000000:
            raise RuntimeError(f"GO refused: {rtype:#x} {body!r}")


def scenario_idle(pid, n, handshake_s, max_clients):
    """Item 6: N connections that never send a byte; clients past GO are capped, not these."""
    base = proc_stats(pid)
    idle = [socket.create_connection((host, port), timeout=5) for _ in range(n)]
    print(f"ok   {n} idle connections open")
    good_client(what=f"a client after {n} idle connections")
    # The cap counts clients past GO: max_clients held open, the next one is refused at GO.
    held = []
    for _ in range(max_clients):
        g = nbd.NBD()
        g.connect_uri(uri)
        held.append(g)
    extra = nbd.NBD()
    try:
        extra.connect_uri(uri)
        fail(f"client {max_clients + 1} was let in past --max-clients {max_clients}")
    except nbd.Error as e:
        print(f"ok   client {max_clients + 1} refused at GO: {e.string}")
    for g in held:
        g.shutdown()
    good_client(what="a client once the others left")
    t0 = time.monotonic()
    wait_for("idle connections closed by the handshake deadline",
             lambda: all(closed_by_server(s) for s in idle), handshake_s + 10)
    print(f"ok   idle connections closed after {time.monotonic() - t0:.1f} s more")
    for s in idle:
        s.close()
    back_to_start(pid, base)


def scenario_stall_write(pid, io_s, conns, size=32 << 20, sent=24 << 20):
    """Item 7: half-sent 32 MiB WRITEs, then silence: dropped after --io-timeout, memory freed."""
    base = proc_stats(pid)
    socks = []
    for i in range(conns):
        s = socket.create_connection((host, port), timeout=30)
        raw_go(s)
        request(s, 1, 0, size, cookie=i)
        s.sendall(bytes(sent))
        socks.append(s)
    peak = proc_stats(pid)[0]
    print(f"ok   {conns} WRITEs of {size >> 20} MiB stalled after {sent >> 20} MiB: RssAnon {peak:.0f} MiB")
    rss_bound("stalled WRITEs", peak, base[0] + conns * (size >> 20) + 16)
    t0 = time.monotonic()
    wait_for("stalled writers dropped", lambda: all(closed_by_server(s) for s in socks), io_s + 10)
    print(f"ok   stalled writers dropped {time.monotonic() - t0:.1f} s later")
    for s in socks:
        s.close()
    good_client()
    back_to_start(pid, base)


def scenario_no_read(pid, io_s, workers=4):
    """Item 7: 64 READs of 32 MiB whose replies are never read: memory bounded, then dropped."""
    base = proc_stats(pid)
    s = socket.create_connection((host, port), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    raw_go(s)
    for i in range(64):
        request(s, 0, 0, 32 << 20, cookie=i)
    peak = 0
    end = time.monotonic() + 2
    while time.monotonic() < end:
        peak = max(peak, proc_stats(pid)[0])
        time.sleep(0.1)
    bound = base[0] + workers * 32 + 24
    print(f"ok   64 unread 32 MiB READs: RssAnon {peak:.0f} MiB (bound {bound:.0f})")
    rss_bound(f"unread READs ({workers} workers x 32 MiB)", peak, bound)
    wait_for("the reader of nothing dropped", lambda: proc_stats(pid)[1] <= base[1], io_s + 10)
    s.close()
    good_client()
    back_to_start(pid, base)


def scenario_hold_unread(pid):
    """Item 1 (the shell sends SIGTERM): a write, then 64 READs never read; holds the socket."""
    s = socket.create_connection((host, port), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    raw_go(s)
    request(s, 1, 0, 4096, cookie=1)
    s.sendall(b"\x5a" * 4096)
    if simple_reply(s) != (0, 1):
        fail("the WRITE before the unread READs failed")
    base = proc_stats(pid)[0]
    for i in range(64):
        request(s, 0, 0, 32 << 20, cookie=100 + i)
    # Ready once the server holds a 32 MiB reply it is stuck in sending.
    time.sleep(1)  # a sanitizer's RssAnon says little: give the server a second more
    wait_for("the server reading the unread READs", lambda: proc_stats(pid)[0] > base + 24, 30)
    print("ready", flush=True)
    time.sleep(300)


def scenario_export_name(pid):
    """Item 9: NBD_OPT_EXPORT_NAME with a 70000-byte name: the server hangs up, no option reply."""
    base = proc_stats(pid)
    s = socket.create_connection((host, port), timeout=10)
    assert s.recv(18, socket.MSG_WAITALL)[:8] == b"NBDMAGIC"
    s.sendall(struct.pack(">I", 3))
    name = b"x" * 70000
    s.sendall(struct.pack(">QII", 0x49484156454F5054, 1, len(name)))
    try:
        s.sendall(name)
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        got = s.recv(20)
    except ConnectionResetError:
        got = b""
    if got:
        fail(f"oversized EXPORT_NAME answered with {got[:20].hex()} (the protocol says: close)")
    print("ok   oversized EXPORT_NAME: connection closed, no option reply")
    s.close()
    good_client()
    back_to_start(pid, base)


def scenario_sub_block(pid):
    """Item 8: a client that never asks for block sizes uses 512-byte sectors."""
    base = proc_stats(pid)
    h = nbd.NBD()
    h.set_request_block_size(False)
    h.connect_uri(uri)
    if h.get_block_size(nbd.SIZE_MINIMUM) != 512:
        fail(f"minimum block size {h.get_block_size(nbd.SIZE_MINIMUM)} for a client that did not ask")
    model = bytearray(h.pread(65536, 0))
    ops = [(512, 512, 0x11), (3584, 1024, 0x22), (8192 + 3584, 4608, 0x33), (20480, 512, 0x44),
           (4096, 4096, 0x55), (30720 + 512, 512 * 7, 0x66)]
    for off, n, b in ops:
        h.pwrite(bytes([b]) * n, off)
        model[off:off + n] = bytes([b]) * n
    h.zero(1024, 512 * 3)
    model[512 * 3:512 * 3 + 1024] = bytes(1024)
    for off, n in [(0, 65536), (512, 512), (3584, 1024), (1536, 3072), (12288 - 512, 1536)]:
        if h.pread(n, off) != bytes(model[off:off + n]):
            fail(f"sub-block read {off}+{n} differs from what was written")
    print("ok   512-byte reads, writes and zeroes across 4 KiB blocks read back as written")
    # Two clients writing different sectors of the same blocks at once lose nothing.
    h2 = nbd.NBD()
    h2.set_request_block_size(False)
    h2.connect_uri(uri)

    def writer(hh, first):
        for rnd in range(40):
            for blk in range(4):
                for sec in range(first, 8, 2):
                    hh.pwrite(bytes([rnd % 16 * 16 + sec]) * 512, 32768 + blk * 4096 + sec * 512)
    ts = [threading.Thread(target=writer, args=(hh, i)) for i, hh in enumerate((h, h2))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    got = h.pread(4 * 4096, 32768)
    for blk in range(4):
        for sec in range(8):
            o = blk * 4096 + sec * 512
            if got[o:o + 512] != bytes([39 % 16 * 16 + sec]) * 512:
                fail(f"sector {sec} of block {blk}: a concurrent read-modify-write lost an update")
    print("ok   concurrent 512-byte writes to the same 4 KiB blocks: no update lost")
    try:
        h.pread(100, 0)
        fail("a 100-byte read was served on a 512-byte connection")
    except nbd.Error as e:
        got = e.errno if isinstance(e.errno, str) else errno.errorcode.get(e.errno, e.errno)
        if got != "EINVAL":
            fail(f"a 100-byte read: errno {e.errno}, expected EINVAL")
    print("ok   unaligned to 512: EINVAL")
    h.shutdown()
    h2.shutdown()
    # A client that asks is held to the backend's 4 KiB.
    g = nbd.NBD()
    g.connect_uri(uri)
    if g.get_block_size(nbd.SIZE_MINIMUM) != 4096:
        fail("a client that asked was not told 4096")
    g.shutdown()
    back_to_start(pid, base)


def scenario_stdio_sigterm(snapctl, out):
    """Item 1 over --stdio: SIGTERM while the client reads no replies still ends, exit 0, export."""
    import signal
    import subprocess
    a, b = socket.socketpair()
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    p = subprocess.Popen([snapctl, "serve-nbd", "--stdio", "--size", "64M", "--export-diff", out, "--json"],
                         stdin=a, stdout=a, stderr=open(out + ".err", "w"))
    a.close()
    raw_go(b)
    request(b, 1, 0, 4096, cookie=1)
    b.sendall(b"\x5a" * 4096)
    if simple_reply(b) != (0, 1):
        fail("the WRITE over --stdio failed")
    for i in range(64):
        request(b, 0, 0, 32 << 20, cookie=100 + i)
    time.sleep(1.5)  # the workers are stuck sending their replies
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("--stdio still up 15 s after SIGTERM with a client reading nothing")
    ms = (time.monotonic() - t0) * 1000
    if rc != 0:
        fail(f"--stdio exited {rc} at SIGTERM: {open(out + '.err').read()}")
    if '"changed":true' not in open(out + ".err").read():
        fail("--stdio: no export at SIGTERM")
    print(f"ok   --stdio SIGTERM with a client reading nothing: exit 0 in {ms:.0f} ms, exported")


SCENARIOS = {
    "stdio-sigterm": lambda a: scenario_stdio_sigterm(uri, a[0]),
    "idle": lambda a: scenario_idle(int(a[0]), int(a[1]), float(a[2]), int(a[3])),
    "stall-write": lambda a: scenario_stall_write(int(a[0]), float(a[1]), int(a[2])),
    "no-read": lambda a: scenario_no_read(int(a[0]), float(a[1])),
    "hold-unread": lambda a: scenario_hold_unread(int(a[0])),
    "export-name": lambda a: scenario_export_name(int(a[0])),
    "sub-block": lambda a: scenario_sub_block(int(a[0])),
}

if "SCENARIO" in globals():
    SCENARIOS[SCENARIO](sys.argv[2:])
else:
    invalid_requests(int(sys.argv[2]))
