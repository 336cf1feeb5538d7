#!/usr/bin/python3
"""nbd-hostile.py URI MIN_BLOCK -- send invalid requests to an NBD server and check each answer.

Uses libnbd (nbdsh's module) with strict mode off for what libnbd can express, and a raw socket
for what it cannot (unknown command, bad magic, truncated header).  After each connection-killing
request a fresh connection must still work.  Exits non-zero with a message on the first surprise.
"""
import errno
import socket
import struct
import sys

import nbd

uri, min_block = sys.argv[1], int(sys.argv[2])
host, port = uri[len("nbd://"):].rstrip("/").rsplit(":", 1)
port = int(port)


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


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
