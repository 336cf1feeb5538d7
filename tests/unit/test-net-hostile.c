/* Unit tests of the HTTP client against hostile origins (scripted loopback server): the cap on
 * interim responses, the head timeout, the minimum rate, a size refused from the head; the
 * address classes of the redirect rule; and the cleaning of temp files of dead writers. */
#include "test.h"

#include "base/err.h"
#include "base/io.h"
#include "net-http-fixture.h"
#include "net/addrclass.h"
#include "net/http.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static enum net_addr_class class_of(const char *a)
{
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    struct sockaddr_in s4 = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, a, &s4.sin_addr) == 1)
        return net_addr_classify((struct sockaddr *)&s4);
    if (inet_pton(AF_INET6, a, &s6.sin6_addr) == 1)
        return net_addr_classify((struct sockaddr *)&s6);
    return (enum net_addr_class)99;
}

TEST(net_addr_classes)
{
    static const struct {
        const char *a;
        enum net_addr_class c;
    } t[] = {
        {"127.0.0.1", NET_ADDR_LOOPBACK}, {"127.255.1.2", NET_ADDR_LOOPBACK}, {"0.0.0.0", NET_ADDR_LOOPBACK},
        {"::1", NET_ADDR_LOOPBACK}, {"::", NET_ADDR_LOOPBACK}, {"::ffff:127.0.0.1", NET_ADDR_LOOPBACK},
        {"10.1.2.3", NET_ADDR_PRIVATE}, {"172.16.0.1", NET_ADDR_PRIVATE}, {"172.31.255.255", NET_ADDR_PRIVATE},
        {"192.168.1.1", NET_ADDR_PRIVATE}, {"100.64.0.1", NET_ADDR_PRIVATE}, {"100.127.255.255", NET_ADDR_PRIVATE},
        {"fd12::1", NET_ADDR_PRIVATE}, {"fc00::1", NET_ADDR_PRIVATE}, {"::ffff:10.0.0.1", NET_ADDR_PRIVATE},
        {"169.254.1.1", NET_ADDR_LINKLOCAL}, {"fe80::1", NET_ADDR_LINKLOCAL}, {"febf::1", NET_ADDR_LINKLOCAL},
        {"169.254.169.254", NET_ADDR_METADATA}, {"169.254.170.2", NET_ADDR_METADATA},
        {"100.100.100.200", NET_ADDR_METADATA}, {"168.63.129.16", NET_ADDR_METADATA},
        {"fd00:ec2::254", NET_ADDR_METADATA}, {"::ffff:169.254.169.254", NET_ADDR_METADATA},
        {"8.8.8.8", NET_ADDR_PUBLIC}, {"172.32.0.1", NET_ADDR_PUBLIC}, {"172.15.255.255", NET_ADDR_PUBLIC},
        {"100.128.0.1", NET_ADDR_PUBLIC}, {"192.169.0.1", NET_ADDR_PUBLIC}, {"203.0.113.1", NET_ADDR_PUBLIC},
        {"2001:db8::1", NET_ADDR_PUBLIC}, {"fec0::1", NET_ADDR_PUBLIC}, {"11.0.0.1", NET_ADDR_PUBLIC},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (class_of(t[i].a) != t[i].c)
            test_failed(__FILE__, __LINE__, "%s: class %s, expected %s", t[i].a,
                        net_addr_class_name(class_of(t[i].a)), net_addr_class_name(t[i].c));
    }
    CHECK_STR(net_addr_class_name(NET_ADDR_LINKLOCAL), "link-local");
}

/* One GET of /x from a server playing the script, with the client options o. */
static int get_with(const struct tsrv_reply *r, size_t n, const struct http_opts *o, struct http_response *rs,
                    uint64_t *ms)
{
    struct hfx f;
    if (hfx_start(&f, r, n, false, o, "/x"))
        return -1;
    struct http_request rq = {.method = "GET", .url = &f.u, .sink = HTTP_SINK_DISCARD};
    uint64_t t0 = snap_now_ns();
    int e = http_do(f.c, &rq, rs);
    *ms = (snap_now_ns() - t0) / 1000000;
    hfx_stop(&f);
    return e;
}

TEST(net_http_hostile_interim_flood)
{
    static char flood[17 * 25 + 64];
    size_t o = 0;
    for (int i = 0; i < 17; i++)
        o += (size_t)snprintf(flood + o, sizeof flood - o, "HTTP/1.1 100 Continue\r\n\r\n");
    snprintf(flood + o, sizeof flood - o, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    const struct tsrv_reply r[] = {{flood, 0, 0, 0, false}, {flood + 25, 0, 0, 0, false}};
    struct http_opts opts = {.retry = {.max_attempts = 3}};
    struct http_response rs;
    http_response_init(&rs);
    uint64_t ms;
    CHECK_ERR(get_with(r, 1, &opts, &rs, &ms), SNAP_EPROTO, "more than 16 interim (1xx) responses");
    CHECK_EQ(rs.attempts, 1); /* not retried */
    /* Sixteen are fine. */
    CHECK_EQ(get_with(r + 1, 1, &opts, &rs, &ms), 0);
    CHECK_EQ(rs.status, 200);
    http_response_free(&rs);
}

TEST(net_http_hostile_head_timeout_and_min_rate)
{
    /* The head arrives after 1.5 s; the head timeout is 300 ms; the idle timeout 30 s. */
    const struct tsrv_reply slow_head[] = {{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 1500, 0, false}};
    struct http_opts opts = {.head_timeout_ms = 300, .retry = {.max_attempts = 3}};
    struct http_response rs;
    http_response_init(&rs);
    uint64_t ms;
    CHECK_ERR(get_with(slow_head, 1, &opts, &rs, &ms), SNAP_ETIMEOUT, "no complete response head 300 ms after");
    CHECK_EQ(rs.attempts, 1);
    CHECK(ms >= 250 && ms < 1400);
    /* A body of 100 bytes of which 10 come, then 3 s of nothing: below 1000 bytes/s over 300 ms. */
    const struct tsrv_reply slow_body[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", 0, 0, 3000, false}};
    struct http_opts o2 = {.speed_limit = 1000, .speed_time_ms = 300, .retry = {.max_attempts = 3}};
    CHECK_ERR(get_with(slow_body, 1, &o2, &rs, &ms), SNAP_ETIMEOUT, "below the minimum rate of 1000 bytes/s");
    CHECK_EQ(rs.attempts, 1);
    CHECK(ms >= 250 && ms < 2500);
    /* At the rate, the same rule lets it through. */
    const struct tsrv_reply ok_body[] = {{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", 0, 0, 0, false}};
    CHECK_EQ(get_with(ok_body, 1, &o2, &rs, &ms), 0);
    http_response_free(&rs);
}

TEST(net_http_hostile_size_from_the_head)
{
    /* 1 TB announced, 10 bytes sent: refused from the head. */
    const struct tsrv_reply huge[] = {{"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n0123456789", 0, 0, 0,
                                       true}};
    struct http_opts opts = {.max_object_size = 1000};
    struct http_response rs;
    http_response_init(&rs);
    uint64_t ms;
    CHECK_ERR(get_with(huge, 1, &opts, &rs, &ms), SNAP_ETOOBIG,
              "the object is 1000000000000 bytes (Content-Length), over the limit of 1000 bytes");
    CHECK_EQ(rs.attempts, 1);
    CHECK_EQ(rs.bytes, 0);
    /* Exactly the limit is fine. */
    const struct tsrv_reply fits[] = {{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", 0, 0, 0, false}};
    opts.max_object_size = 10;
    CHECK_EQ(get_with(fits, 1, &opts, &rs, &ms), 0);
    http_response_free(&rs);
}

/* A PID that is not running: a child that has exited and been reaped. */
static pid_t dead_pid(void)
{
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    waitpid(p, NULL, 0);
    return p;
}

static bool exists(const char *dir, const char *name)
{
    char p[1024];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0;
}

static void touch(const char *dir, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0)
        close(fd);
}

TEST(base_clean_stale_tmp)
{
    char dir[256], n[9][64];
    snprintf(dir, sizeof dir, "%s/stale", test_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    long dead = (long)dead_pid();
    snprintf(n[0], 64, "obj.tmp.%ld", dead);              /* removed */
    snprintf(n[1], 64, "obj.sha256.tmp.%ld", dead);       /* removed */
    snprintf(n[2], 64, ".x.snapctl-tmp.%ld.abc", dead);   /* another tag: kept */
    snprintf(n[3], 64, "obj.tmp.%ld", (long)getpid());    /* ours: kept */
    snprintf(n[4], 64, "obj.tmp.1");                      /* init, alive: kept */
    snprintf(n[5], 64, "obj.tmp.%ldx", dead);             /* not a PID: kept */
    snprintf(n[6], 64, "obj.tmp.txt");                    /* kept */
    snprintf(n[7], 64, ".tmp.%ld", dead);                 /* no object name: kept */
    snprintf(n[8], 64, "locked.tmp.%ld", dead);           /* held by a live writer: kept */
    for (int i = 0; i < 8; i++)
        touch(dir, n[i]);
    char lp[1024];
    snprintf(lp, sizeof lp, "%s/%s", dir, n[8]);
    int lfd = snap_tmp_open(lp, O_WRONLY, 0644);
    CHECK(lfd >= 0);
    CHECK_EQ(snap_clean_stale_tmp(dir, ".tmp."), 2);
    CHECK(!exists(dir, n[0]) && !exists(dir, n[1]));
    for (int i = 2; i < 9; i++)
        if (!exists(dir, n[i]))
            test_failed(__FILE__, __LINE__, "%s was removed", n[i]);
    close(lfd);
    CHECK_EQ(snap_clean_stale_tmp(dir, ".tmp."), 1); /* the writer is gone now */
    CHECK_EQ(snap_clean_stale_tmp(dir, ".snapctl-tmp."), 1);
}
