"""hostile.py -- what the hostile-client tools share: watch a server's memory and fds, wait with
a bound, tell a connection the server closed."""
import os
import sys
import time


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def proc_stats(pid):
    """(RssAnon in MiB, open fds) of the server."""
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                rss = int(line.split()[1]) / 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def wait_for(what, pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return time.monotonic()
        time.sleep(0.05)
    fail(f"{what}: not within {timeout} s")


# Under a sanitizer, freed memory sits in quarantine or shadow: memory bounds are printed, not held.
SANITIZED = os.environ.get("VARIANT") in ("asan", "tsan")


def rss_bound(what, rss, bound):
    if rss > bound and not SANITIZED:
        fail(f"{what}: RssAnon {rss:.0f} MiB above the bound {bound:.0f} MiB")


def back_to_start(pid, base, rss_slack=24, fd_slack=2, timeout=15):
    """RSS and fd count return near their values before the misbehaviour."""
    def near():
        rss, fds = proc_stats(pid)
        return (SANITIZED or rss <= base[0] + rss_slack) and fds <= base[1] + fd_slack
    wait_for("RSS and fds back near their start", near, timeout)
    rss, fds = proc_stats(pid)
    print(f"ok   server back to RssAnon {rss:.1f} MiB, {fds} fds (start {base[0]:.1f} MiB, {base[1]} fds)")


def closed_by_server(s):
    """True once the server has closed s (EOF or reset); buffered replies are skipped."""
    s.setblocking(False)
    try:
        while True:
            d = s.recv(1 << 20)
            if not d:
                return True
    except BlockingIOError:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True
