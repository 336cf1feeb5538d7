#!/usr/bin/env python3
"""promcheck.py -- check a /metrics answer against the Prometheus text format, and read values.

Usage:
  promcheck.py FILE                          check FILE; exit 1 with the first violation
  promcheck.py FILE NAME [LABEL=VALUE ...]   check, then print the sum of the samples of NAME
                                             whose labels include every LABEL=VALUE given
                                             (LABEL= matches an empty value)

What is checked (text exposition format 0.0.4):
  * every line is `# HELP name text`, `# TYPE name counter|gauge|histogram|summary|untyped`, another
    comment, or a sample `name{label="value",...} value` (labels optional, values with \\\\ \\" \\n
    escapes only, no label twice), and the file ends with a newline;
  * a family's HELP and TYPE come once each, before its first sample, and its samples are
    contiguous (no other family in between);
  * a counter's samples end in _total (ours all do) and no value is negative or NaN;
  * a histogram has, per label set, _bucket lines with le ascending and counts cumulative (never
    decreasing), the last le="+Inf" equal to its _count, and a _sum.
"""
import math
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(r"^(" + NAME + r")(\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def fail(lineno, msg):
    print("promcheck: line %d: %s" % (lineno, msg), file=sys.stderr)
    sys.exit(1)


def parse_labels(text, lineno):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        if not m:
            fail(lineno, "malformed label set {%s}" % text)
        key = m.group(1)
        if key in labels:
            fail(lineno, "label %s twice" % key)
        labels[key] = re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1), m.group(2))
        pos = m.end()
    return labels


def parse_value(text, lineno):
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    try:
        return float(text)
    except ValueError:
        fail(lineno, "value %r is not a number" % text)


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and types.get(base) == "histogram":
            return base
    return name


def check_histograms(samples, types):
    series = {}
    for lineno, name, labels, value in samples:
        fam = family_of(name, types)
        if types.get(fam) != "histogram":
            continue
        key = (fam, tuple(sorted((k, v) for k, v in labels.items() if k != "le")))
        h = series.setdefault(key, {"buckets": [], "sum": None, "count": None, "line": lineno})
        if name.endswith("_bucket"):
            if "le" not in labels:
                fail(lineno, "a bucket without le")
            h["buckets"].append((parse_value(labels["le"], lineno), value, lineno))
        elif name.endswith("_sum"):
            h["sum"] = value
        else:
            h["count"] = value
    for (fam, labels), h in series.items():
        where = "%s%s" % (fam, dict(labels))
        b = h["buckets"]
        if not b or h["sum"] is None or h["count"] is None:
            fail(h["line"], "histogram %s lacks buckets, _sum or _count" % where)
        for (le0, n0, _), (le1, n1, line) in zip(b, b[1:]):
            if le1 <= le0:
                fail(line, "histogram %s: le not ascending" % where)
            if n1 < n0:
                fail(line, "histogram %s: buckets not cumulative" % where)
        if b[-1][0] != math.inf:
            fail(b[-1][2], "histogram %s does not end with le=\"+Inf\"" % where)
        if b[-1][1] != h["count"]:
            fail(b[-1][2], "histogram %s: +Inf bucket %s != _count %s" % (where, b[-1][1], h["count"]))


def check(path):
    text = open(path, encoding="utf-8").read()
    if text and not text.endswith("\n"):
        fail(text.count("\n") + 1, "no newline at the end")
    helps, types, samples, done, current = {}, {}, [], set(), None
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not re.fullmatch(NAME, name):
                    fail(lineno, "bad metric name %r" % name)
                seen = helps if parts[1] == "HELP" else types
                if name in seen:
                    fail(lineno, "second %s for %s" % (parts[1], name))
                if name in done or any(s[1] == name or family_of(s[1], types) == name for s in samples):
                    fail(lineno, "%s of %s after its samples" % (parts[1], name))
                if parts[1] == "TYPE":
                    if len(parts) != 4 or parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                        fail(lineno, "bad TYPE line")
                    types[name] = parts[3]
                else:
                    helps[name] = parts[3] if len(parts) == 4 else ""
            continue
        if not line.strip():
            fail(lineno, "empty line")
        m = SAMPLE.match(line)
        if not m:
            fail(lineno, "not a sample: %r" % line)
        name, labels = m.group(1), parse_labels(m.group(3) or "", lineno)
        value = parse_value(m.group(4), lineno)
        fam = family_of(name, types)
        if fam not in helps or fam not in types:
            fail(lineno, "sample of %s before its HELP and TYPE" % fam)
        if fam != current:
            if fam in done:
                fail(lineno, "samples of %s are not together" % fam)
            if current:
                done.add(current)
            current = fam
        if math.isnan(value) or value < 0:
            fail(lineno, "%s: value %s" % (name, value))
        if types[fam] == "counter" and not name.endswith("_total"):
            fail(lineno, "counter %s does not end in _total" % name)
        samples.append((lineno, name, labels, value))
    check_histograms(samples, types)
    return samples


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    samples = check(sys.argv[1])
    if len(sys.argv) == 2:
        return
    want = dict(a.split("=", 1) for a in sys.argv[3:])
    found = [v for _, n, l, v in samples if n == sys.argv[2] and all(l.get(k) == x for k, x in want.items())]
    if not found:
        print("promcheck: no sample %s %s" % (sys.argv[2], want), file=sys.stderr)
        sys.exit(1)
    total = sum(found)
    print(int(total) if total == int(total) else total)


if __name__ == "__main__":
    main()
