#!/usr/bin/env python3
"""proc-disk.py -- the disk a set of processes uses, unlinked files included (standard library only).

Usage:
  proc-disk.py [--pid PID]... [--exclude DIR]... [--list] [DIR...]

Sums st_blocks * 512 (the space allocated, not the apparent size) over the union of
  * the regular files the PIDs hold open (/proc/PID/fd/*, followed with stat, so a file that was
    unlinked right after creation -- "/path (deleted)" -- counts as long as it is open), and
  * the regular files under each DIR (walked, symlinks not followed),
each file once by (st_dev, st_ino): a chunk file both in DIR and open by a process counts once.
Open files under an --exclude DIR (a log directory: the servers' stderr) are left out.
Prints the total in bytes; --list prints each file first ("BYTES PATH") on stderr.
Exits 1 when a PID is gone (its files can no longer be seen).
"""
import argparse
import os
import stat
import sys


def open_files(pid, exclude):
    """(key, blocks, path) of each regular file PID holds open, outside the excluded dirs."""
    d = f"/proc/{pid}/fd"
    out = []
    for fd in os.listdir(d):
        p = os.path.join(d, fd)
        try:
            st = os.stat(p)
            target = os.readlink(p)
        except FileNotFoundError:  # closed meanwhile
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        path = target[:-len(" (deleted)")] if target.endswith(" (deleted)") else target
        if any(path == x or path.startswith(x + "/") for x in exclude):
            continue
        out.append(((st.st_dev, st.st_ino), st.st_blocks * 512, target))
    return out


def dir_files(top):
    """(key, blocks, path) of each regular file under top."""
    out = []
    for root, _, files in os.walk(top):
        for f in files:
            p = os.path.join(root, f)
            try:
                st = os.lstat(p)
            except FileNotFoundError:  # a temp file renamed or removed meanwhile
                continue
            if stat.S_ISREG(st.st_mode):
                out.append(((st.st_dev, st.st_ino), st.st_blocks * 512, p))
    return out


def main():
    ap = argparse.ArgumentParser(description="disk used by processes' open files and directories")
    ap.add_argument("--pid", type=int, action="append", default=[])
    ap.add_argument("--exclude", action="append", default=[])
    ap.add_argument("--list", action="store_true")
    ap.add_argument("dirs", nargs="*")
    a = ap.parse_args()
    exclude = [os.path.realpath(x) for x in a.exclude]
    seen = {}
    try:
        for pid in a.pid:
            for key, n, path in open_files(pid, exclude):
                seen.setdefault(key, (n, path))
    except FileNotFoundError:
        sys.exit(f"proc-disk.py: process {pid} is gone")
    for d in a.dirs:
        for key, n, path in dir_files(d):
            seen.setdefault(key, (n, path))
    if a.list:
        for n, path in sorted(seen.values(), reverse=True):
            print(n, path, file=sys.stderr)
    print(sum(n for n, _ in seen.values()))


if __name__ == "__main__":
    main()
