/* Unit tests of lib/net/tls through the HTTP client, against `openssl s_server` on loopback with
 * a CA and server certificate made for the test (SAN IP:127.0.0.1, DNS:localhost). */
#include "test.h"

#include "base/err.h"
#include "net/http.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int r = system(cmd);
    return r == -1 ? -1 : WEXITSTATUS(r);
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    bind(fd, (struct sockaddr *)&sa, sl);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    return ntohs(sa.sin_port);
}

static bool port_open(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

/* openssl s_server -HTTP in dir: "GET /name" answers with the file's bytes, a whole response.
 * It serves one connection at a time, so the responses say "Connection: close". */
static pid_t start_s_server(const char *dir, uint16_t port)
{
    char accept[32], log[600];
    snprintf(accept, sizeof accept, "127.0.0.1:%u", (unsigned)port);
    snprintf(log, sizeof log, "%s/s_server.log", dir);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644), nul = open("/dev/null", O_RDONLY);
        if (fd < 0 || nul < 0 || chdir(dir) != 0)
            _exit(127);
        dup2(nul, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execlp("openssl", "openssl", "s_server", "-accept", accept, "-cert", "srv.crt", "-key", "srv.key",
               "-HTTP", "-quiet", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; pid > 0 && i < 200 && !port_open(port); i++) {
        struct timespec ts = {0, 25 * 1000000};
        nanosleep(&ts, NULL);
    }
    return pid;
}

static void stop_pid(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

static int make_certs(const char *d)
{
    /* Two CAs: "ca" signs the server, "other" signs nothing we meet. */
    static const char *const ca_cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout '%s/%s.key' -out "
        "'%s/%s.crt' -days 2 -subj /CN=snapctl-test-%s -addext basicConstraints=critical,CA:TRUE "
        "-addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1";
    if (sh(ca_cmd, d, "ca", d, "ca", "ca") != 0 || sh(ca_cmd, d, "other", d, "other", "other") != 0)
        return -1;
    if (sh("printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\n' > '%s/ext.cnf'", d))
        return -1;
    if (sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout '%s/srv.key' -out '%s/srv.csr' "
           "-subj /CN=localhost >/dev/null 2>&1", d, d))
        return -1;
    return sh("openssl x509 -req -in '%s/srv.csr' -CA '%s/ca.crt' -CAkey '%s/ca.key' -CAcreateserial "
              "-out '%s/srv.crt' -days 2 -extfile '%s/ext.cnf' >/dev/null 2>&1", d, d, d, d, d);
}

static int write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(p, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

TEST(net_tls_verify_with_ca_option_and_fail_without)
{
    if (sh("command -v openssl >/dev/null 2>&1") != 0) {
        fprintf(stderr, "    skipped: openssl is not installed\n");
        return;
    }
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tls", test_tmpdir());
    CHECK(mkdir(dir, 0700) == 0);
    CHECK_EQ(make_certs(dir), 0);
    const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    CHECK_EQ(write_file(dir, "ok.http", ok, strlen(ok)), 0);
    size_t n = 300000;
    char *big = malloc(n + 100);
    int hl = snprintf(big, 100, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", n);
    for (size_t i = 0; i < n; i++)
        big[hl + i] = (char)(i * 131 + (i >> 11));
    CHECK_EQ(write_file(dir, "big.http", big, (size_t)hl + n), 0);

    uint16_t port = free_port();
    pid_t pid = start_s_server(dir, port);
    CHECK(pid > 0);
    if (!port_open(port)) {
        stop_pid(pid);
        CHECK(!"s_server did not start");
    }
    char ca[600], other[600], s[200];
    snprintf(ca, sizeof ca, "%s/ca.crt", dir);
    snprintf(other, sizeof other, "%s/other.crt", dir);
    struct http_opts o = {.ca_file = ca, .retry = {.max_attempts = 1}};
    struct http_client *c = NULL;
    struct http_response rs;
    http_response_init(&rs);
    struct url u = {0}, lh = {0}, bu = {0};
    int e = http_client_new(&o, &c);
    CHECK_EQ(e, 0);

    /* By IP (matched against the IP SAN) and by name (DNS SAN). */
    snprintf(s, sizeof s, "https://127.0.0.1:%u/ok.http", (unsigned)port);
    CHECK_EQ(url_parse(s, &u), 0);
    struct http_request rq = {.method = "GET", .url = &u};
    e = http_do(c, &rq, &rs);
    if (e)
        fprintf(stderr, "    %s\n", snap_errmsg(e));
    CHECK_EQ(e, 0);
    CHECK_EQ(rs.status, 200);
    CHECK_STR((char *)rs.body, "hello");
    snprintf(s, sizeof s, "https://localhost:%u/ok.http", (unsigned)port);
    CHECK_EQ(url_parse(s, &lh), 0);
    rq.url = &lh;
    e = http_do(c, &rq, &rs);
    if (e)
        fprintf(stderr, "    %s\n", snap_errmsg(e));
    CHECK_EQ(e, 0);
    CHECK_STR((char *)rs.body, "hello");

    /* 300 KB over many TLS records, a range of it straight into a buffer. */
    snprintf(s, sizeof s, "https://127.0.0.1:%u/big.http", (unsigned)port);
    CHECK_EQ(url_parse(s, &bu), 0);
    char *dst = malloc(50000);
    CHECK_EQ(http_get_range(c, &bu, NULL, NULL, 100000, 50000, dst, NULL, NULL, &rs), 0);
    CHECK_EQ(rs.status, 200);
    CHECK_EQ(rs.bytes, 50000);
    CHECK_EQ(rs.total_size, n);
    CHECK_MEM(dst, big + hl + 100000, 50000);
    free(dst);
    http_client_free(c);

    /* Trusting another CA: refused, saying whom, why, and what to do. */
    o.ca_file = other;
    CHECK_EQ(http_client_new(&o, &c), 0);
    rq.url = &u;
    snprintf(s, sizeof s, "127.0.0.1:%u: TLS certificate of '127.0.0.1' not trusted", (unsigned)port);
    const char *sp = s;
    CHECK_ERR(http_do(c, &rq, &rs), SNAP_ETLS, sp);
    const char *m = snap_errmsg(SNAP_ETLS);
    CHECK(strstr(m, "GET https://127.0.0.1:"));
    CHECK(strstr(m, "not correctly signed by the trusted CA"));
    CHECK(strstr(m, other));
    CHECK(strstr(m, "SSL_CERT_FILE"));
    CHECK_EQ(rs.attempts, 1);
    http_client_free(c);

    /* A CA file that is not there. */
    o.ca_file = "/nonexistent/ca.pem";
    CHECK_ERR(http_client_new(&o, &c), SNAP_ETLS, "cannot load CA certificates from /nonexistent/ca.pem");

    stop_pid(pid);
    url_free(&u);
    url_free(&lh);
    url_free(&bu);
    http_response_free(&rs);
    free(big);
}
