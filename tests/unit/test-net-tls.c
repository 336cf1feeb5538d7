/* Unit tests of lib/net/tls through the HTTP client, against `openssl s_server` on loopback with
 * a CA and server certificate made for the test (SAN IP:127.0.0.1, DNS:localhost). */
#include "test.h"

#include "base/err.h"
#include "net/http.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/psa_util.h>
#include <mbedtls/ssl.h>
#include <psa/crypto.h>
#include <pthread.h>
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

/* The checks against a running s_server; the caller stops it whatever happens here. */
static void tls_verify_checks(const char *dir, uint16_t port, const char *big, int hl, size_t n)
{
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
    CHECK_STR((char *)rs.body.data, "hello");
    snprintf(s, sizeof s, "https://localhost:%u/ok.http", (unsigned)port);
    CHECK_EQ(url_parse(s, &lh), 0);
    rq.url = &lh;
    e = http_do(c, &rq, &rs);
    if (e)
        fprintf(stderr, "    %s\n", snap_errmsg(e));
    CHECK_EQ(e, 0);
    CHECK_STR((char *)rs.body.data, "hello");

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

    url_free(&u);
    url_free(&lh);
    url_free(&bu);
    http_response_free(&rs);
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
    if (pid > 0 && port_open(port))
        tls_verify_checks(dir, port, big, hl, n);
    else
        test_failed(__FILE__, __LINE__, "openssl s_server did not start (see %s/s_server.log)", dir);
    stop_pid(pid);
    free(big);
}

/* An mbedTLS echo server on loopback: answers each request with its own body, keep-alive, so
 * a large PUT goes out in 16 KiB records and comes back into a buffer over one connection. */
struct echo_srv {
    int lfd;
    uint16_t port;
    pthread_t th;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt crt;
    mbedtls_pk_context key;
    int requests;
};

static int echo_send(void *ctx, const unsigned char *b, size_t n)
{
    ssize_t r = send(*(int *)ctx, b, n, MSG_NOSIGNAL);
    return r < 0 ? MBEDTLS_ERR_NET_SEND_FAILED : (int)r;
}

static int echo_recv(void *ctx, unsigned char *b, size_t n)
{
    ssize_t r = recv(*(int *)ctx, b, n, 0);
    return r < 0 ? MBEDTLS_ERR_NET_RECV_FAILED : (int)r;
}

static int echo_read(mbedtls_ssl_context *ssl, unsigned char *b, size_t n)
{
    int r;
    do
        r = mbedtls_ssl_read(ssl, b, n);
    while (r == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET || r == MBEDTLS_ERR_SSL_WANT_READ);
    return r;
}

static void *echo_run(void *arg)
{
    struct echo_srv *es = arg;
    int fd = accept(es->lfd, NULL, NULL);
    mbedtls_ssl_context ssl;
    mbedtls_ssl_init(&ssl);
    size_t cap = 4u << 20, len = 0;
    unsigned char *buf = malloc(cap);
    if (fd < 0 || mbedtls_ssl_setup(&ssl, &es->conf) != 0)
        goto out;
    mbedtls_ssl_set_bio(&ssl, &fd, echo_send, echo_recv, NULL);
    if (mbedtls_ssl_handshake(&ssl) != 0)
        goto out;
    for (;;) {
        char *end = NULL;
        while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
            int r = echo_read(&ssl, buf + len, cap - len);
            if (r <= 0)
                goto out;
            len += (size_t)r;
        }
        size_t head = (size_t)(end + 4 - (char *)buf);
        char *cl = memmem(buf, head, "Content-Length: ", 16);
        size_t clen = cl ? strtoull(cl + 16, NULL, 10) : 0;
        while (len < head + clen) {
            int r = echo_read(&ssl, buf + len, cap - len);
            if (r <= 0)
                goto out;
            len += (size_t)r;
        }
        char resp[128];
        int rl = snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", clen);
        const unsigned char *parts[2] = {(unsigned char *)resp, buf + head};
        size_t lens[2] = {(size_t)rl, clen};
        for (int i = 0; i < 2; i++)
            for (size_t off = 0; off < lens[i];) {
                int w = mbedtls_ssl_write(&ssl, parts[i] + off, lens[i] - off);
                if (w <= 0)
                    goto out;
                off += (size_t)w;
            }
        es->requests++;
        memmove(buf, buf + head + clen, len - head - clen);
        len -= head + clen;
    }
out:
    mbedtls_ssl_free(&ssl);
    free(buf);
    if (fd >= 0)
        close(fd);
    return NULL;
}

TEST(net_tls_bulk_both_ways_keepalive)
{
    if (sh("command -v openssl >/dev/null 2>&1") != 0) {
        fprintf(stderr, "    skipped: openssl is not installed\n");
        return;
    }
    char dir[512], path[600], ca[600];
    snprintf(dir, sizeof dir, "%s/tls-bulk", test_tmpdir());
    CHECK(mkdir(dir, 0700) == 0);
    CHECK_EQ(make_certs(dir), 0);
    CHECK_EQ(psa_crypto_init(), PSA_SUCCESS);
    struct echo_srv es = {0};
    mbedtls_ssl_config_init(&es.conf);
    mbedtls_x509_crt_init(&es.crt);
    mbedtls_pk_init(&es.key);
    snprintf(path, sizeof path, "%s/srv.crt", dir);
    CHECK_EQ(mbedtls_x509_crt_parse_file(&es.crt, path), 0);
    snprintf(path, sizeof path, "%s/srv.key", dir);
    CHECK_EQ(mbedtls_pk_parse_keyfile(&es.key, path, NULL, mbedtls_psa_get_random, NULL), 0);
    CHECK_EQ(mbedtls_ssl_config_defaults(&es.conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                         MBEDTLS_SSL_PRESET_DEFAULT), 0);
    mbedtls_ssl_conf_rng(&es.conf, mbedtls_psa_get_random, NULL);
    CHECK_EQ(mbedtls_ssl_conf_own_cert(&es.conf, &es.crt, &es.key), 0);
    es.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    CHECK(bind(es.lfd, (struct sockaddr *)&sa, sl) == 0 && listen(es.lfd, 4) == 0);
    getsockname(es.lfd, (struct sockaddr *)&sa, &sl);
    es.port = ntohs(sa.sin_port);
    pthread_create(&es.th, NULL, echo_run, &es);

    snprintf(ca, sizeof ca, "%s/ca.crt", dir);
    struct http_opts o = {.ca_file = ca, .retry = {.max_attempts = 1}};
    struct http_client *c;
    CHECK_EQ(http_client_new(&o, &c), 0);
    char su[64];
    snprintf(su, sizeof su, "https://127.0.0.1:%u/part", (unsigned)es.port);
    struct url u;
    CHECK_EQ(url_parse(su, &u), 0);
    size_t n = (1u << 20) + 12345; /* not a multiple of the record size */
    uint8_t *up = malloc(n), *down = malloc(n);
    for (size_t i = 0; i < n; i++)
        up[i] = (uint8_t)(i * 7 + (i >> 13));
    struct http_response rs;
    http_response_init(&rs);
    for (int round = 0; round < 2; round++) {
        memset(down, 0, n);
        struct http_request rq = {.method = "PUT", .url = &u, .body = up, .body_len = n,
                                  .sink = HTTP_SINK_BUFFER, .dst = down, .dst_len = n};
        int e = http_do(c, &rq, &rs);
        if (e)
            fprintf(stderr, "    %s\n", snap_errmsg(e));
        CHECK_EQ(e, 0);
        CHECK_EQ(rs.bytes, n);
        CHECK_MEM(down, up, n);
    }
    struct http_stats st;
    http_client_stats(c, &st);
    CHECK_EQ(st.connects, 1);
    CHECK_EQ(st.reused, 1);
    http_client_free(c); /* closes the connection: the echo thread ends */
    pthread_join(es.th, NULL);
    CHECK_EQ(es.requests, 2);
    close(es.lfd);
    mbedtls_ssl_config_free(&es.conf);
    mbedtls_x509_crt_free(&es.crt);
    mbedtls_pk_free(&es.key);
    http_response_free(&rs);
    url_free(&u);
    free(up);
    free(down);
}
