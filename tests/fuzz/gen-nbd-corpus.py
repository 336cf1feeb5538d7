#!/usr/bin/env python3
"""gen-nbd-corpus.py -- write the seed corpus of fuzz-nbd (tests/fuzz/corpus/nbd/).

Each seed is one config byte (see fuzz-nbd.c) followed by what a client sends: client flags,
options (the way nbdinfo, qemu-nbd and the Linux client negotiate), then transmission requests,
including malformed ones.  Run it again after changing it; the files are committed.

    python3 tests/fuzz/gen-nbd-corpus.py [DIR]
"""
import os
import struct
import sys

IHAVEOPT = 0x49484156454F5054
REQ_MAGIC = 0x25609513
(OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS, OPT_INFO, OPT_GO, OPT_STRUCTURED_REPLY,
 OPT_LIST_META, OPT_SET_META, OPT_EXT_HEADERS) = (1, 2, 3, 5, 6, 7, 8, 9, 10, 11)
READ, WRITE, DISC, FLUSH, TRIM, CACHE, WZERO, BSTATUS = range(8)
FUA, NO_HOLE, DF, REQ_ONE, FAST_ZERO = 1, 2, 4, 8, 16
INFO_NAME, INFO_DESC, INFO_BLOCK_SIZE = 1, 2, 3

RO, MIN512, SIZE_4K, SIZE_ODD, SIZE_0, MINOPS, NAMED, MULTI, FAILTAIL = (
    1, 2, 1 << 2, 2 << 2, 3 << 2, 0x10, 0x20, 0x40, 0x80)


def flags(f=3):
    return struct.pack(">I", f)


def opt(o, data=b""):
    return struct.pack(">QII", IHAVEOPT, o, len(data)) + data


def info_go(o, name=b"", infos=()):
    d = struct.pack(">I", len(name)) + name + struct.pack(">H", len(infos))
    d += b"".join(struct.pack(">H", i) for i in infos)
    return opt(o, d)


def meta(o, name=b"", queries=(b"base:allocation",)):
    d = struct.pack(">I", len(name)) + name + struct.pack(">I", len(queries))
    d += b"".join(struct.pack(">I", len(q)) + q for q in queries)
    return opt(o, d)


def req(cmd, off=0, length=0, fl=0, cookie=None, payload=None):
    cookie = cookie if cookie is not None else 0x1000 + cmd
    b = struct.pack(">IHHQQI", REQ_MAGIC, fl, cmd, cookie, off, length)
    if cmd == WRITE:
        b += payload if payload is not None else bytes((i * 7) & 0xFF for i in range(length))
    return b


def negotiate_qemu(name=b""):
    """qemu-nbd / nbdinfo style: structured replies, base:allocation, GO with info requests."""
    return (flags() + opt(OPT_STRUCTURED_REPLY) + meta(OPT_SET_META, name)
            + info_go(OPT_GO, name, (INFO_BLOCK_SIZE, INFO_NAME, INFO_DESC)))


SEEDS = {
    # Full session as qemu does it, then every command once.
    "qemu-session": bytes([0]) + negotiate_qemu() + req(WRITE, 0, 4096) + req(READ, 0, 4096)
    + req(READ, 4096, 8192, DF) + req(WRITE, 8192, 512, FUA) + req(WRITE, 12288, 12288)
    + req(TRIM, 12288, 4096) + req(WZERO, 16384, 4096, NO_HOLE) + req(WZERO, 20480, 4096, FAST_ZERO)
    + req(READ, 8192, 16384) + req(FLUSH)
    + req(BSTATUS, 0, 65536) + req(BSTATUS, 100, 40000, REQ_ONE) + req(BSTATUS, 4090, 5) + req(CACHE, 0, 65536) + req(DISC),
    # The Linux client: GO with no info requests, simple replies only.
    "linux-go": bytes([MULTI]) + flags() + info_go(OPT_GO) + req(READ, 0, 131072)
    + req(WRITE, 1 << 19, 4096, FUA) + req(READ, (1 << 19) - 512, 8192) + req(FLUSH)
    + req(TRIM, 0, 1 << 20) + req(READ, 1 << 19, 4096) + req(DISC),
    # nbdinfo --list: LIST, INFO, LIST_META_CONTEXT, then ABORT.
    "nbdinfo-list": bytes([NAMED]) + flags() + opt(OPT_LIST) + opt(OPT_STRUCTURED_REPLY)
    + info_go(OPT_INFO, b"build", (INFO_NAME, INFO_DESC, INFO_BLOCK_SIZE))
    + meta(OPT_LIST_META, b"build", ()) + meta(OPT_LIST_META, b"build", (b"base:",))
    + opt(OPT_ABORT),
    # Old-style EXPORT_NAME without NO_ZEROES, on a named read-only 4 KiB export.
    "export-name": bytes([NAMED | RO | SIZE_4K]) + flags(1) + opt(OPT_EXPORT_NAME, b"build")
    + req(READ, 0, 4096) + req(WRITE, 0, 512) + req(TRIM, 0, 512) + req(DISC),
    # 512-byte blocks on an odd size: aligned and unaligned requests, the last partial block.
    "min512-odd": bytes([MIN512 | SIZE_ODD]) + negotiate_qemu() + req(READ, 512, 1024)
    + req(READ, 100, 512) + req(WRITE, 65536, 512) + req(WRITE, 65536, 1024)
    + req(BSTATUS, 65537, 511) + req(READ, 65536 + 512, 512) + req(DISC),
    # The device fails its last 4 KiB: error replies, simple and structured.
    "device-errors": bytes([FAILTAIL]) + negotiate_qemu() + req(READ, (1 << 20) - 4096, 4096)
    + req(WRITE, (1 << 20) - 512, 512) + req(TRIM, (1 << 20) - 4096, 4096)
    + req(WZERO, (1 << 20) - 4096, 4096) + req(CACHE, (1 << 20) - 4096, 4096) + req(FLUSH)
    + req(BSTATUS, (1 << 20) - 8192, 8192) + req(DISC),
    # Only pread/pwrite: TRIM, WRITE_ZEROES, BLOCK_STATUS refused; meta context on a size-0 export.
    "minimal-ops": bytes([MINOPS | SIZE_0]) + flags() + opt(OPT_STRUCTURED_REPLY)
    + meta(OPT_SET_META) + info_go(OPT_GO) + req(READ, 0, 1) + req(TRIM, 0, 0)
    + req(BSTATUS, 0, 1) + req(FLUSH) + req(DISC),
    # Malformed options, each answered with an error, then a good GO.
    "bad-options": bytes([0]) + flags()
    + meta(OPT_SET_META)                                     # before STRUCTURED_REPLY
    + opt(OPT_GO, struct.pack(">I", 100) + b"xy\0\0")        # name longer than the option
    + opt(OPT_GO, struct.pack(">IH", 0, 3) + b"\0\3")        # fewer info requests than said
    + opt(OPT_INFO, b"\0\0")                                 # too short
    + info_go(OPT_GO, b"other")                              # unknown export
    + opt(OPT_LIST, b"x") + opt(OPT_STRUCTURED_REPLY, b"x") + opt(OPT_STARTTLS)
    + opt(OPT_EXT_HEADERS) + opt(99, b"junk")
    + opt(OPT_STRUCTURED_REPLY)
    + opt(OPT_SET_META, struct.pack(">II", 0, 2) + struct.pack(">I", 15) + b"base:allocation")
    + opt(OPT_SET_META, struct.pack(">II", 0, 1) + struct.pack(">I", 99) + b"base")
    + opt(OPT_LIST_META, struct.pack(">II", 0, 0) + b"trailing")
    + struct.pack(">QII", IHAVEOPT, 70000, 70000) + bytes(70000)   # too big: drained
    + info_go(OPT_GO) + req(READ, 0, 512) + req(DISC),
    # Malformed requests after a good GO: each refused, the stream stays in sync.
    "bad-requests": bytes([MIN512]) + negotiate_qemu()
    + req(READ, 1 << 20, 512) + req(READ, (1 << 20) - 512, 1024) + req(READ, 0, 0)
    + req(READ, 0, (32 << 20) + 1) + req(9, 0, 512) + req(READ, 0, 512, 0x80)
    + req(READ, 0, 512, REQ_ONE) + req(TRIM, 0, 512, NO_HOLE) + req(READ, 0, 512, FUA)
    + req(FLUSH, 4096, 0) + req(WRITE, 1 << 20, 512) + req(WRITE, 3, 512)
    + req(CACHE, 0, 100) + req(BSTATUS, 0xFFFFFFFFFFFFF000, 4096)
    + req(READ, 0, 512) + struct.pack(">IHHQQI", 0xDEADBEEF, 0, READ, 1, 0, 512),
    # SET_META_CONTEXT without base:allocation, then with it and again without: BLOCK_STATUS
    # is refused, answered, refused.
    "meta-other": bytes([0]) + flags() + opt(OPT_STRUCTURED_REPLY)
    + meta(OPT_SET_META, b"", (b"qemu:dirty-bitmap:x",)) + info_go(OPT_INFO) + meta(OPT_SET_META)
    + info_go(OPT_INFO) + meta(OPT_SET_META, b"", ()) + info_go(OPT_GO) + req(BSTATUS, 0, 4096)
    + req(DISC),
    "meta-set": bytes([0]) + flags() + opt(OPT_STRUCTURED_REPLY) + meta(OPT_SET_META, b"", (b"x:y",))
    + meta(OPT_SET_META) + info_go(OPT_GO) + req(BSTATUS, 0, 4096) + req(DISC),
    # Writes on a read-only export: refused, payload drained, then reads still work.
    "readonly-writes": bytes([RO]) + flags() + info_go(OPT_GO) + req(WRITE, 0, 4096)
    + req(WZERO, 0, 4096) + req(READ, 0, 4096) + req(DISC),
    # A WRITE whose payload is cut short, and one over 32 MiB (drained until EOF).
    "short-write": bytes([0]) + flags() + info_go(OPT_GO) + req(WRITE, 0, 4096, payload=bytes(100)),
    "huge-write": bytes([0]) + flags() + info_go(OPT_GO)
    + req(WRITE, 0, (32 << 20) + 4096, payload=bytes(4096)),
    # Cut in the middle of a request header; unknown client flags; an option with a bad magic.
    "short-header": bytes([0]) + flags() + info_go(OPT_GO) + req(READ, 0, 512)[:13],
    "bad-client-flags": bytes([0]) + flags(0x80000003) + info_go(OPT_GO),
    "bad-option-magic": bytes([0]) + flags() + struct.pack(">QII", 0x1122334455667788, OPT_GO, 0),
    # A client that hangs up after GO without DISC, and one that aborts at once.
    "no-disc": bytes([0]) + flags() + info_go(OPT_GO) + req(READ, 0, 512),
    "abort": bytes([0]) + flags() + opt(OPT_ABORT),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "nbd")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds in {out}")


if __name__ == "__main__":
    main()
