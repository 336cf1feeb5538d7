#!/usr/bin/python3
"""peer-hostile.py SCENARIO HOST:PORT PID URLPATH [ARGS] -- misbehave against `snapctl peer serve`
and check it copes: bounded time and memory, the bad connections closed, and afterwards a good
client served at once with RssAnon and fd count back near their start.

  slowloris N HEAD_S   N connections dripping a request head and N that send nothing
  unread IO_S          a GET of a large file whose response is never read
  hold-unread          the same, holding on (the shell sends SIGTERM); prints "ready"
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile import back_to_start, closed_by_server, fail, proc_stats, rss_bound, wait_for  # noqa: E402

scenario, addr, pid, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
host, port = addr.rsplit(":", 1)
port = int(port)


def good_client(within=3.0):
    t0 = time.monotonic()
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4095\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    dt = time.monotonic() - t0
    if not data.startswith(b"HTTP/1.1 206") or len(data.split(b"\r\n\r\n", 1)[1]) != 4096:
        fail(f"the good client got {data[:60]!r}")
    if dt > within:
        fail(f"the good client took {dt:.1f} s")
    print(f"ok   a good client served in {dt * 1000:.0f} ms")


def unread_get():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return s


def slowloris(n, head_s):
    base = proc_stats(pid)
    drip, silent = [], []
    for _ in range(n):
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(b"GET " + path.encode())
        drip.append(s)
        silent.append(socket.create_connection((host, port), timeout=10))
    print(f"ok   {n} connections dripping a head and {n} silent ones open")
    good_client()
    t0 = time.monotonic()
    end = t0 + head_s + 15

    def all_closed():
        for s in drip:
            try:
                s.send(b"x")  # a byte a poll: slow, but never done
            except OSError:
                pass
        return all(closed_by_server(s) for s in drip + silent)
    wait_for("slow and silent connections closed", all_closed, end - t0)
    print(f"ok   all closed {time.monotonic() - t0:.1f} s later")
    for s in drip + silent:
        s.close()
    good_client()
    back_to_start(pid, base)


def unread(io_s):
    base = proc_stats(pid)
    s = unread_get()
    time.sleep(0.5)
    rss = proc_stats(pid)[0]
    rss_bound("one unread response", rss, base[0] + 16)
    good_client()
    wait_for("the reader of nothing dropped", lambda: proc_stats(pid)[1] <= base[1], io_s + 10)
    print("ok   a response never read: the connection dropped")
    s.close()
    back_to_start(pid, base)


def hold_unread():
    s = unread_get()
    time.sleep(0.5)
    print("ready", flush=True)
    time.sleep(300)
    s.close()


if scenario == "slowloris":
    slowloris(int(sys.argv[5]), float(sys.argv[6]))
elif scenario == "unread":
    unread(float(sys.argv[5]))
elif scenario == "hold-unread":
    hold_unread()
else:
    fail(f"unknown scenario {scenario}")
