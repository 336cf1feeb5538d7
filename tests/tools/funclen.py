#!/usr/bin/env python3
"""funclen.py -- list the C functions of lib/ and cmd/ by length; exit 1 if one is over the limit.

    tests/tools/funclen.py [--max N] [--top N] [DIR_OR_FILE ...]

A function starts at a column-0 definition line (its signature may go on over indented lines,
and its return type may stand alone on the column-0 line before) followed by a column-0 "{", or
at a column-0 definition line that itself ends in "{"; it ends at the next column-0 "}".  Its
length counts every line from the first line of the signature to that "}".  One-line functions
("static inline int f(void) { return 0; }") are one line long.

Prints "FILE:LINE: NAME is N lines (limit M)" for each function over --max (default 120) and
exits 1 if there is any; --top N first prints the N longest as "N  FILE:LINE  NAME".
Without paths it reads lib/ and cmd/ under the repository top.
"""
import argparse
import os
import re
import sys

NAME_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")
INITIALIZER_RE = re.compile(r"^[^(]*=|=\s*\{")  # "int x = f(1);", "t tbl[] __attribute__((...)) = {"
NOT_FUNC = ("struct ", "union ", "enum ", "typedef ", "#", "/", "*", "}")


def is_signature_start(line):
    """A column-0 line that may begin a function definition."""
    return bool(line) and not line[0].isspace() and not line.startswith(NOT_FUNC)


def signature_start(lines, brace):
    """Index of the first line of the signature that the column-0 "{" at index brace closes."""
    i = brace - 1
    while i >= 0 and lines[i][:1].isspace() and lines[i].strip():
        i -= 1  # indented continuation lines of a multi-line signature
    if i < 0 or not is_signature_start(lines[i]):
        return None
    if "(" not in lines[i] and i + 1 < brace:
        return None
    # "static int\nname(...)": the return type alone on the line before.
    if i > 0 and is_signature_start(lines[i - 1]) and not lines[i - 1].rstrip().endswith((";", ")", "{")) \
            and "(" not in lines[i - 1] and "=" not in lines[i - 1]:
        return i - 1
    return i


def function_name(text):
    """The name before the parameter list (the first "name(" that is not an attribute)."""
    for m in NAME_RE.finditer(text):
        if m.group(1) not in ("__attribute__", "__declspec"):
            return m.group(1)
    return None


def functions(path):
    """Yield (line, name, length) for each function defined in one C file."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        start = None
        if line.startswith("{"):
            start = signature_start(lines, i)
        elif is_signature_start(line) and "(" in line and not INITIALIZER_RE.search(line):
            body = line.rstrip()
            if body.endswith("}") and "{" in body:  # one-line function
                name = function_name(line)
                if name:
                    yield i + 1, name, 1
                i += 1
                continue
            if body.endswith("{"):
                start = i
        if start is None:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not lines[end].startswith("}"):
            end += 1
        name = function_name(" ".join(lines[start:i + 1]))
        if name:
            yield start + 1, name, end - start + 1
        i = end + 1


def c_files(paths):
    for p in paths:
        if os.path.isfile(p):
            yield p
            continue
        for root, dirs, files in os.walk(p):
            dirs.sort()
            for n in sorted(files):
                if n.endswith((".c", ".h")):
                    yield os.path.join(root, n)


def main():
    ap = argparse.ArgumentParser(description="List C functions by length; fail on those over a limit.")
    ap.add_argument("--max", type=int, default=120, help="longest allowed function, in lines (120)")
    ap.add_argument("--top", type=int, default=0, metavar="N", help="print the N longest functions")
    ap.add_argument("paths", nargs="*", help="files or directories (default: lib cmd)")
    args = ap.parse_args()
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    paths = args.paths or [os.path.join(top, "lib"), os.path.join(top, "cmd")]
    found = []
    for path in c_files(paths):
        rel = os.path.relpath(path, top) if path.startswith(top) else path
        for line, name, length in functions(path):
            found.append((length, rel, line, name))
    if not found:
        print("funclen: no C function found under " + " ".join(paths) + "; check the paths", file=sys.stderr)
        return 2
    found.sort(key=lambda f: (-f[0], f[1], f[2]))
    for length, rel, line, name in found[:args.top]:
        print("%4d  %s:%d  %s" % (length, rel, line, name))
    over = [f for f in found if f[0] > args.max]
    for length, rel, line, name in over:
        print("%s:%d: %s is %d lines (limit %d); split it into named steps" % (rel, line, name, length, args.max))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
