#!/usr/bin/python3
"""gen-compressed.py STORE OUT -- build chains of compressed and uncompressed builds.

An independent writer of the bucket layout described in docs/formats.md ("Header v4/v5",
"Compressed builds"); it uses Debian's python3-lz4 and python3-zstandard and nothing of
snapctl.  Into the file store directory STORE it writes, per chain, every build's data object
({id}/{file}, or {id}/{file}.lz4 / .zstd with the sidecar {object}.uncompressed-size) and the
leaf's header {leaf}/{file}.header; into OUT the image the leaf must read as ({name}.img) and
what inspect-header --json --frames must report ({name}.builds.json) and a manifest
OUT/chains.txt, one line per chain:

    name  kind  file  leaf-id  size  sha256-of-image

kind is "good" or "bad-size" (one frame's sizeU larger than what the frame holds).  For the
fault tests OUT/{name}.frames lists each compressed build's frame table:

    build-id  comp  index  startU  startC  sizeU  sizeC

Chains mix uncompressed (no builds-section entry, or an entry of type 0), lz4 and zstd builds,
v4 and v5 headers, 4 KiB and 2 MiB block sizes, zero ranges, and trimmed frame tables.
"""
import hashlib
import json
import os
import random
import struct
import sys
import uuid

import lz4.frame
import zstandard

PAGE = 4096
FRAME = 2 << 20
MiB = 1 << 20
COMP = {"none": 0, "zstd": 1, "lz4": 2}

WORDS = (b"inode block group extent journal superblock bitmap directory entry file data "
         b"usr lib bin etc share var log python3 libc.so.6 ld-linux-x86-64 systemd kernel ").split()


def content(rng, n):
    """Rootfs-like bytes: text runs, binary-ish runs, zero pages, a little random noise."""
    out = bytearray()
    while len(out) < n:
        kind = rng.random()
        m = rng.randrange(1, 64) * 512
        if kind < 0.45:
            line = b" ".join(rng.choice(WORDS) for _ in range(12)) + b"\n"
            out += (line * (m // len(line) + 1))[:m]
        elif kind < 0.65:
            out += bytes(m)
        elif kind < 0.85:
            pat = bytes(rng.randrange(256) for _ in range(rng.randrange(4, 64)))
            out += (pat * (m // len(pat) + 1))[:m]
        else:
            out += rng.randbytes(m)
    return bytes(out[:n])


def compress(comp, data):
    if comp == "lz4":
        # A complete LZ4 frame: 4 MiB max blocks, block checksums on, content checksum off.
        return lz4.frame.compress(data, block_size=lz4.frame.BLOCKSIZE_MAX4MB, block_linked=False,
                                  content_checksum=False, block_checksum=True, store_size=False)
    # A complete zstd frame with its checksum.
    return zstandard.ZstdCompressor(level=3, write_checksum=True, write_content_size=True).compress(data)


class Build:
    def __init__(self, rng, comp, in_section=True, size_in_entry=True):
        self.id = uuid.UUID(bytes=rng.randbytes(16))
        self.comp = comp
        self.in_section = in_section       # False: no builds-section entry (an old build)
        self.size_in_entry = size_in_entry  # False: size 0 in the entry, the sidecar has it
        self.cursor = 0                     # next free storage offset while mapping
        self.refs = []                      # (storage, length) the leaf maps
        self.data = b""
        self.frames = []                    # (startU, startC, sizeU, sizeC)
        self.blob = b""


def plan(rng, size, builds, unit, max_units):
    """The leaf's mapping: runs of pages onto zeros or onto builds, packed per build."""
    entries, off = [], 0
    while off < size:
        n = min(rng.randrange(1, max_units + 1) * unit, size - off)
        owner = rng.choice([None] + builds)
        if owner is None:
            entries.append((off, n, None, 0))
        else:
            if rng.random() < 0.25:                 # leave storage unreferenced: trimmed frames
                owner.cursor += rng.randrange(1, 3) * FRAME
            entries.append((off, n, owner, owner.cursor))
            owner.refs.append((owner.cursor, n))
            owner.cursor += n
        off += n
    merged = []                                     # neighbours of one owner stay separate
    for e in entries:
        if merged and merged[-1][2] is None and e[2] is None:
            merged[-1] = (merged[-1][0], merged[-1][1] + e[1], None, 0)
        else:
            merged.append(e)
    return merged


def make_objects(rng, b, bad_size=False):
    size = b.cursor + rng.randrange(0, 3) * PAGE    # a little tail nobody maps
    b.data = content(rng, size)
    if b.comp == "none":
        b.blob = b.data
        return
    start_c = 0
    for k, start_u in enumerate(range(0, size, FRAME)):
        chunk = b.data[start_u:start_u + FRAME]
        size_u = len(chunk)
        if bad_size and k == 0:
            chunk = chunk[:-PAGE]                   # the frame holds less than its sizeU
        c = compress(b.comp, chunk)
        b.frames.append((start_u, start_c, size_u, len(c)))
        b.blob += c
        start_c += len(c)


def frame_table(b, trim):
    if not trim:
        return b.frames
    keep = []
    for f in b.frames:
        if any(s < f[0] + f[2] and f[0] < s + n for s, n in b.refs):
            keep.append(f)
    return keep


def uvarint(v):
    out = bytearray()
    while True:
        byte = v & 0x7F
        v >>= 7
        if v:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def section_json(builds, trim):
    """What inspect-header --json --frames must say about the builds section."""
    out = []
    for b in sorted((b for b in builds if b.in_section), key=lambda b: b.id.bytes):
        table = frame_table(b, trim) if b.comp != "none" else []
        out.append({"id": str(b.id), "file_size": len(b.data) if b.size_in_entry else 0,
                    "sha256": hashlib.sha256(b.data).hexdigest(), "compression": b.comp,
                    "frames": len(table),
                    "frames_uncompressed_bytes": sum(f[2] for f in table),
                    "frames_compressed_bytes": sum(f[3] for f in table),
                    "frame_table": [dict(start_u=f[0], start_c=f[1], size_u=f[2], size_c=f[3]) for f in table]})
    return out


def header(meta, fmt, builds, entries, trim):
    version, block_size, size, generation, build_id, base_id = meta
    m = struct.pack("<QQQQ", version | fmt, block_size, size, generation) + build_id.bytes + base_id.bytes
    body = bytearray()
    section = sorted((b for b in builds if b.in_section), key=lambda b: b.id.bytes)
    body += struct.pack("<I", len(section))
    for b in section:
        table = frame_table(b, trim) if b.comp != "none" else []
        fsize = len(b.data) if b.size_in_entry else 0
        body += b.id.bytes + struct.pack("<q", fsize) + hashlib.sha256(b.data).digest()
        body += struct.pack("<II", COMP[b.comp], len(table))
        for su, sc, nu, nc in table:
            body += struct.pack("<qqii", su, sc, nu, nc)
    if fmt == 4:
        body += struct.pack("<I", len(entries))
        for off, n, owner, st in entries:
            bid = owner.id.bytes if owner else bytes(16)
            body += struct.pack("<QQ", off, n) + bid + struct.pack("<Q", st)
    else:
        stored = [e for e in entries if e[2] is not None]
        table = []
        for e in stored:
            if e[2].id not in table:
                table.append(e[2].id)
        body += struct.pack("<I", len(table)) + b"".join(u.bytes for u in table)
        body += struct.pack("<I", len(stored))
        prev = 0
        for off, _, _, _ in stored:
            body += uvarint(off // PAGE - prev)
            prev = off // PAGE
        for _, n, _, _ in stored:
            body += uvarint(n // PAGE)
        prev = 0
        for _, _, _, st in stored:
            d = st // PAGE - prev
            prev = st // PAGE
            body += uvarint(d << 1 if d >= 0 else ((-d) << 1) - 1)   # zigzag
        for _, _, owner, _ in stored:
            body += uvarint(table.index(owner.id))
    return m + struct.pack("<BI", 0, len(body)) + lz4.frame.compress(bytes(body))


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def plan_single(rng, size, builds, unit, max_units):
    """The whole device on the one build, so every frame is mapped."""
    b = builds[0]
    b.refs.append((0, size))
    b.cursor = size
    return [(0, size, b, 0)]


def chain(store, out, manifest, name, seed, spec):
    rng = random.Random(seed)
    builds = [Build(rng, *b) for b in spec["builds"]]
    planner = plan_single if spec.get("single") else plan
    entries = planner(rng, spec["size"], builds, spec["unit"], spec["max_units"])
    bad = spec.get("kind") == "bad-size"
    for b in builds:
        make_objects(rng, b, bad_size=bad and b.comp != "none")
    image = bytearray(spec["size"])
    for off, n, owner, st in entries:
        if owner:
            image[off:off + n] = owner.data[st:st + n]
    leaf = uuid.UUID(bytes=rng.randbytes(16))
    base = builds[0].id
    meta = (0, spec["block_size"], spec["size"], len(builds), leaf, base)
    f = spec["file"]
    for b in builds:
        key = f"{b.id}/{f}" + ("" if b.comp == "none" else "." + b.comp)
        write(os.path.join(store, key), b.blob)
        if b.comp != "none":
            write(os.path.join(store, key + ".uncompressed-size"), b"%d" % len(b.data))
    write(os.path.join(store, f"{leaf}/{f}.header"), header(meta, spec["fmt"], builds, entries, spec["trim"]))
    write(os.path.join(out, name + ".img"), bytes(image))
    with open(os.path.join(out, name + ".builds.json"), "w") as bj:
        json.dump({"format": spec["fmt"], "block_size": spec["block_size"], "size": spec["size"],
                   "generation": len(builds), "build_id": str(leaf), "base_build_id": str(base),
                   "builds": section_json(builds, spec["trim"])}, bj, indent=1)
    with open(os.path.join(out, name + ".frames"), "w") as fr:
        for b in builds:
            for k, (su, sc, nu, nc) in enumerate(b.frames):
                fr.write(f"{b.id} {b.comp} {k} {su} {sc} {nu} {nc}\n")
    manifest.write(f"{name} {spec.get('kind', 'good')} {f} {leaf} {spec['size']} "
                   f"{hashlib.sha256(image).hexdigest()}\n")


CHAINS = {
    # rootfs, v4, every kind of build, full frame tables
    "rootfs-v4-mixed": dict(file="rootfs.ext4", fmt=4, block_size=PAGE, size=40 * MiB, unit=PAGE,
                            max_units=700, trim=False,
                            builds=[("none", False), ("lz4",), ("zstd",), ("none",), ("lz4", True, False)]),
    # rootfs, v5, trimmed frame tables
    "rootfs-v5-trimmed": dict(file="rootfs.ext4", fmt=5, block_size=PAGE, size=36 * MiB + 3 * PAGE,
                              unit=PAGE, max_units=900, trim=True,
                              builds=[("zstd",), ("lz4",), ("none",), ("zstd", True, False)]),
    # memfile, 2 MiB blocks, v4 trimmed and v5 full
    "memfile-v4-trimmed": dict(file="memfile", fmt=4, block_size=2 * MiB, size=32 * MiB, unit=2 * MiB,
                               max_units=3, trim=True, builds=[("lz4",), ("zstd",), ("none",)]),
    "memfile-v5": dict(file="memfile", fmt=5, block_size=2 * MiB, size=24 * MiB, unit=PAGE,
                       max_units=1024, trim=False, builds=[("zstd",), ("lz4",)]),
    # faults: one lz4 and one zstd build each, big enough for three frames
    "fault-lz4": dict(file="rootfs.ext4", fmt=4, block_size=PAGE, size=6 * MiB, unit=6 * MiB,
                      max_units=1, trim=False, builds=[("lz4",)], single=True),
    "fault-zstd": dict(file="rootfs.ext4", fmt=5, block_size=PAGE, size=6 * MiB, unit=6 * MiB,
                       max_units=1, trim=False, builds=[("zstd",)], single=True),
    "bad-size-lz4": dict(file="rootfs.ext4", fmt=4, block_size=PAGE, size=6 * MiB, unit=6 * MiB,
                         max_units=1, trim=False, builds=[("lz4",)], single=True, kind="bad-size"),
    "bad-size-zstd": dict(file="rootfs.ext4", fmt=4, block_size=PAGE, size=6 * MiB, unit=6 * MiB,
                          max_units=1, trim=False, builds=[("zstd",)], single=True, kind="bad-size"),
}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    store, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "chains.txt"), "w") as manifest:
        for i, (name, spec) in enumerate(CHAINS.items()):
            chain(store, out, manifest, name, 1000 + i, spec)


if __name__ == "__main__":
    main()
