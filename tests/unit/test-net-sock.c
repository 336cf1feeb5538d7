/* Unit tests of lib/net/sock: poll-based waits on fds >= 1024, timeouts, no SIGPIPE, IPv6. */
#include "test.h"

#include "base/err.h"
#include "base/io.h"
#include "net-testsrv.h"
#include "net/http.h"
#include "net/sock.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

TEST(net_sock_high_fd_timeouts_and_no_sigpipe)
{
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 1600) {
        fprintf(stderr, "    skipped: RLIMIT_NOFILE hard limit %lu < 1600\n", (unsigned long)rl.rlim_max);
        return;
    }
    struct rlimit old = rl;
    if (rl.rlim_cur < 1600) {
        rl.rlim_cur = 1600;
        CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    }
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    /* Far above FD_SETSIZE: select() would overflow its set here, poll() does not care. */
    CHECK(dup2(sv[0], 1500) == 1500);
    close(sv[0]);
    struct sock s;
    CHECK_EQ(sock_adopt(&s, 1500, "pair"), 0);
    s.idle_ms = 50;
    char buf[16];
    size_t got;
    uint64_t t0 = snap_now_ns();
    CHECK_ERR(sock_read(&s, buf, sizeof buf, &got), SNAP_ETIMEOUT, "pair: reading: nothing for 50 ms (idle timeout)");
    CHECK(snap_now_ns() - t0 >= 45000000ull);
    CHECK(sock_alive(&s));
    CHECK_EQ(write(sv[1], "ping", 4), 4);
    CHECK(!sock_alive(&s)); /* bytes nobody asked for: not fit for reuse */
    CHECK_EQ(sock_read(&s, buf, sizeof buf, &got), 0);
    CHECK_EQ(got, 4);
    CHECK_MEM(buf, "ping", 4);
    CHECK_EQ(sock_write(&s, "pong", 4), 0);
    CHECK_EQ(read(sv[1], buf, sizeof buf), 4);
    /* The deadline wins over a longer idle timeout. */
    s.idle_ms = 10000;
    s.deadline_ns = snap_now_ns() + 30000000ull;
    CHECK_ERR(sock_read(&s, buf, sizeof buf, &got), SNAP_ETIMEOUT, "deadline passed");
    s.deadline_ns = 0;
    /* The peer goes away: EOF on read, an error (not SIGPIPE) on write. */
    close(sv[1]);
    CHECK(!sock_alive(&s));
    CHECK_EQ(sock_read(&s, buf, sizeof buf, &got), 0);
    CHECK_EQ(got, 0);
    static char big[1 << 20];
    CHECK_ERR(sock_write(&s, big, sizeof big), SNAP_ENET, "pair: send: Broken pipe");
    sock_close(&s);
    CHECK_EQ(s.fd, -1);
    setrlimit(RLIMIT_NOFILE, &old);
}

TEST(net_sock_connect_ipv6_and_names)
{
    static const struct tsrv_reply r[] = {{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nv6"}};
    struct tsrv *s6 = tsrv_start("::1", r, 1, true);
    if (!s6) {
        fprintf(stderr, "    skipped: no IPv6 loopback\n");
        return;
    }
    struct http_client *c;
    CHECK_EQ(http_client_new(NULL, &c), 0);
    char su[64];
    snprintf(su, sizeof su, "http://[::1]:%u/six", (unsigned)tsrv_port(s6));
    struct url u;
    CHECK_EQ(url_parse(su, &u), 0);
    struct http_response rs;
    http_response_init(&rs);
    struct http_request rq = {.method = "GET", .url = &u};
    CHECK_EQ(http_do(c, &rq, &rs), 0);
    CHECK_STR((char *)rs.body.data, "v6");
    char host[64];
    snprintf(host, sizeof host, "\r\nHost: [::1]:%u\r\n", (unsigned)tsrv_port(s6));
    CHECK(strstr(tsrv_req(s6, 0, NULL), host));
    http_response_free(&rs);
    http_client_free(c);
    url_free(&u);
    tsrv_stop(s6);

    struct sock k;
    sock_init(&k);
    CHECK_ERR(sock_connect(&k, "no-such-host.invalid", 80, 1000), SNAP_ENET, "cannot resolve host 'no-such-host.invalid'");
}
