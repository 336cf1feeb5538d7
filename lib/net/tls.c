/* tls.c -- mbedTLS 3.6: shared client config and CA chain, the server config of a peer (its
 * certificate and key), poll-based I/O through our own bio.
 *
 * Design: mbedTLS's own net_sockets helpers block or use select(), so the bio here does one
 * non-blocking send/recv on the struct sock and maps EAGAIN to WANT_READ/WANT_WRITE; the
 * loops in this file then wait with sock_wait(), which applies the idle timeout and the
 * deadline.  mbedTLS is built with MBEDTLS_THREADING_PTHREAD: the RNG is PSA's
 * (mbedtls_psa_get_random, thread safe), and a config is read-only once built, so one config
 * serves every connection.
 */
#include "net/tls.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/psa_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>

#define TLS_RECORD_MAX 16384 /* mbedtls_ssl_write sends at most one record per call */

struct tls_config {
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca;
    mbedtls_x509_crt own;   /* server: the certificate chain presented */
    mbedtls_pk_context key; /* server: its private key */
    char ca_file[PATH_MAX];
};

struct tls_conn {
    mbedtls_ssl_context ssl;
    struct sock *sock;
    int sys_errno;       /* errno of the last failed send/recv in the bio */
    char host[256];
};

/* Where distributions keep their CA bundle (Debian/Ubuntu/Alpine, Fedora/RHEL, openSUSE, ...). */
static const char *const tls_ca_paths[] = {
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
    "/usr/local/share/certs/ca-root-nss.crt",
};

static const char *tls_strerror(int r, char *buf, size_t len)
{
    mbedtls_strerror(r, buf, len);
    return buf;
}

static pthread_once_t psa_once = PTHREAD_ONCE_INIT;
static int psa_status;

static void psa_init_once(void)
{
    psa_status = psa_crypto_init();
}

static int tls_config_load(const char *ca_file, struct tls_config **out)
{
    pthread_once(&psa_once, psa_init_once);
    if (psa_status != PSA_SUCCESS)
        return snap_fail(SNAP_ETLS, "TLS: psa_crypto_init failed (%d)", psa_status);
    struct tls_config *c = snap_calloc(1, sizeof *c);
    if (!c)
        return snap_fail(SNAP_ENOMEM, "TLS config");
    snprintf(c->ca_file, sizeof c->ca_file, "%s", ca_file);
    mbedtls_ssl_config_init(&c->conf);
    mbedtls_x509_crt_init(&c->ca);
    mbedtls_x509_crt_init(&c->own);
    mbedtls_pk_init(&c->key);
    char eb[128];
    int r = mbedtls_x509_crt_parse_file(&c->ca, ca_file);
    /* A positive r counts certificates mbedTLS could not parse; the rest are usable. */
    if (r < 0 || c->ca.version == 0) {
        int e = snap_fail(SNAP_ETLS, "TLS: cannot load CA certificates from %s: %s", ca_file,
                          r < 0 ? tls_strerror(r, eb, sizeof eb) : "no usable certificate in it");
        tls_config_free(c);
        return e;
    }
    r = mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT);
    if (r) {
        tls_config_free(c);
        return snap_fail(SNAP_ETLS, "TLS: mbedtls_ssl_config_defaults: %s", tls_strerror(r, eb, sizeof eb));
    }
    mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&c->conf, &c->ca, NULL);
    mbedtls_ssl_conf_rng(&c->conf, mbedtls_psa_get_random, MBEDTLS_PSA_RANDOM_STATE);
    *out = c;
    return 0;
}

int tls_config_new(const char *ca_file, struct tls_config **out)
{
    return tls_config_load(ca_file, out);
}

int tls_server_config_new(const char *cert_file, const char *key_file, struct tls_config **out)
{
    pthread_once(&psa_once, psa_init_once);
    if (psa_status != PSA_SUCCESS)
        return snap_fail(SNAP_ETLS, "TLS: psa_crypto_init failed (%d)", psa_status);
    struct tls_config *c = snap_calloc(1, sizeof *c);
    if (!c)
        return snap_fail(SNAP_ENOMEM, "TLS config");
    mbedtls_ssl_config_init(&c->conf);
    mbedtls_x509_crt_init(&c->ca);
    mbedtls_x509_crt_init(&c->own);
    mbedtls_pk_init(&c->key);
    char eb[128];
    int e = 0, r = mbedtls_x509_crt_parse_file(&c->own, cert_file);
    if (r < 0 || c->own.version == 0)
        e = snap_fail(SNAP_ETLS, "TLS: cannot load the certificate from %s: %s (--tls-cert wants a PEM file)",
                      cert_file, r < 0 ? tls_strerror(r, eb, sizeof eb) : "no usable certificate in it");
    if (!e && (r = mbedtls_pk_parse_keyfile(&c->key, key_file, NULL, mbedtls_psa_get_random,
                                            MBEDTLS_PSA_RANDOM_STATE)) != 0)
        e = snap_fail(SNAP_ETLS, "TLS: cannot load the private key from %s: %s (--tls-key wants an "
                      "unencrypted PEM key)", key_file, tls_strerror(r, eb, sizeof eb));
    if (!e && (r = mbedtls_pk_check_pair(&c->own.pk, &c->key, mbedtls_psa_get_random,
                                         MBEDTLS_PSA_RANDOM_STATE)) != 0)
        e = snap_fail(SNAP_ETLS, "TLS: the key in %s does not belong to the certificate in %s", key_file,
                      cert_file);
    if (!e && (r = mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                               MBEDTLS_SSL_PRESET_DEFAULT)) != 0)
        e = snap_fail(SNAP_ETLS, "TLS: mbedtls_ssl_config_defaults: %s", tls_strerror(r, eb, sizeof eb));
    if (!e && (r = mbedtls_ssl_conf_own_cert(&c->conf, &c->own, &c->key)) != 0)
        e = snap_fail(SNAP_ETLS, "TLS: mbedtls_ssl_conf_own_cert: %s", tls_strerror(r, eb, sizeof eb));
    if (e) {
        tls_config_free(c);
        return e;
    }
    mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_NONE);
    mbedtls_ssl_conf_rng(&c->conf, mbedtls_psa_get_random, MBEDTLS_PSA_RANDOM_STATE);
    *out = c;
    return 0;
}

void tls_config_free(struct tls_config *c)
{
    if (!c)
        return;
    mbedtls_ssl_config_free(&c->conf);
    mbedtls_x509_crt_free(&c->ca);
    mbedtls_x509_crt_free(&c->own);
    mbedtls_pk_free(&c->key);
    snap_free(c);
}

const char *tls_config_ca_file(const struct tls_config *c)
{
    return c->ca_file;
}

static pthread_once_t sys_once = PTHREAD_ONCE_INIT;
static struct tls_config *sys_config;
static int sys_err;
static char sys_errmsg[512];

static void tls_system_once(void)
{
    const char *env = getenv("SSL_CERT_FILE");
    const char *path = env && *env ? env : NULL;
    for (size_t i = 0; !path && i < sizeof tls_ca_paths / sizeof tls_ca_paths[0]; i++)
        if (access(tls_ca_paths[i], R_OK) == 0)
            path = tls_ca_paths[i];
    if (!path) {
        sys_err = snap_fail(SNAP_ETLS, "TLS: no CA bundle found (tried /etc/ssl/certs/ca-certificates.crt, "
                            "/etc/pki/tls/certs/ca-bundle.crt, /etc/ssl/cert.pem and others); install "
                            "ca-certificates or set SSL_CERT_FILE to a PEM bundle");
    } else {
        sys_err = tls_config_load(path, &sys_config);
        if (sys_err && env)
            snap_fail_ctx(sys_err, "SSL_CERT_FILE");
    }
    if (sys_err)
        snprintf(sys_errmsg, sizeof sys_errmsg, "%s", snap_errmsg(sys_err));
}

int tls_config_system(struct tls_config **out)
{
    pthread_once(&sys_once, tls_system_once);
    if (sys_err)
        return snap_fail(sys_err, "%s", sys_errmsg);
    *out = sys_config;
    return 0;
}

static int tls_bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct tls_conn *t = ctx;
    long r = sock_send_raw(t->sock, buf, len);
    if (r >= 0)
        return (int)r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    t->sys_errno = errno;
    return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int tls_bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct tls_conn *t = ctx;
    long r = sock_recv_raw(t->sock, buf, len);
    if (r >= 0)
        return (int)r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return MBEDTLS_ERR_SSL_WANT_READ;
    t->sys_errno = errno;
    return MBEDTLS_ERR_NET_RECV_FAILED;
}

/* Wait for what mbedTLS asked for, or turn r into a snap_err.  0 means "call again". */
static int tls_again(struct tls_conn *t, int r, const char *what)
{
    if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_CRYPTO_IN_PROGRESS ||
        r == MBEDTLS_ERR_SSL_ASYNC_IN_PROGRESS)
        return sock_wait(t->sock, POLLIN, what);
    if (r == MBEDTLS_ERR_SSL_WANT_WRITE)
        return sock_wait(t->sock, POLLOUT, what);
    if (r == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
        return 0;
    if (r == MBEDTLS_ERR_NET_SEND_FAILED || r == MBEDTLS_ERR_NET_RECV_FAILED)
        return snap_fail(t->sys_errno == ETIMEDOUT ? SNAP_ETIMEOUT : SNAP_ENET, "%s: TLS %s: %s", t->sock->peer,
                         what, strerror(t->sys_errno));
    char eb[128];
    return snap_fail(SNAP_ETLS, "%s: TLS %s: %s", t->sock->peer, what, tls_strerror(r, eb, sizeof eb));
}

/* The message for a certificate that did not verify: who, why, and what to do about it. */
static int tls_verify_failed(struct tls_conn *t, const struct tls_config *cfg)
{
    char why[512];
    uint32_t flags = mbedtls_ssl_get_verify_result(&t->ssl);
    int n = mbedtls_x509_crt_verify_info(why, sizeof why, "", flags);
    if (n <= 0)
        snprintf(why, sizeof why, "verification flags 0x%x", (unsigned)flags);
    /* One line: the reasons come newline-separated. */
    for (char *p = why; *p; p++)
        if (*p == '\n')
            *p = p[1] ? ';' : '\0';
    const char *fix;
    if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH)
        fix = "connect by a name the certificate lists, or give the server a certificate for that name";
    else if (flags & (MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE))
        fix = "check this host's clock, or renew the server's certificate";
    else
        fix = "point SSL_CERT_FILE or the CA-file option at a bundle holding the CA that signed the server's "
              "certificate (or make the server send its intermediate certificates)";
    return snap_fail(SNAP_ETLS, "%s: TLS certificate of '%s' not trusted: %s (CA bundle %s); fix: %s", t->sock->peer,
                     t->host, why, cfg->ca_file, fix);
}

/* Set up a connection on s; host (client side) is verified and sent as SNI. */
static int tls_setup(struct tls_config *cfg, struct sock *s, const char *host, struct tls_conn **out)
{
    struct tls_conn *t = snap_calloc(1, sizeof *t);
    if (!t)
        return snap_fail(SNAP_ENOMEM, "TLS connection");
    t->sock = s;
    snprintf(t->host, sizeof t->host, "%s", host ? host : "");
    mbedtls_ssl_init(&t->ssl);
    char eb[128];
    int r = mbedtls_ssl_setup(&t->ssl, &cfg->conf);
    if (r == 0 && host)
        r = mbedtls_ssl_set_hostname(&t->ssl, host);
    if (r) {
        int e = snap_fail(r == MBEDTLS_ERR_SSL_ALLOC_FAILED ? SNAP_ENOMEM : SNAP_ETLS, "%s: TLS setup: %s",
                          s->peer, tls_strerror(r, eb, sizeof eb));
        tls_close(t);
        return e;
    }
    mbedtls_ssl_set_bio(&t->ssl, t, tls_bio_send, tls_bio_recv, NULL);
    *out = t;
    return 0;
}

static int tls_handshake(struct tls_config *cfg, struct tls_conn *t, unsigned handshake_ms)
{
    struct sock *s = t->sock;
    uint64_t saved = s->deadline_ns;
    if (handshake_ms) {
        uint64_t d = snap_now_ns() + (uint64_t)handshake_ms * 1000000;
        if (!s->deadline_ns || d < s->deadline_ns)
            s->deadline_ns = d;
    }
    int r, e = 0;
    while ((r = mbedtls_ssl_handshake(&t->ssl)) != 0) {
        if (r == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
            e = tls_verify_failed(t, cfg);
            break;
        }
        if ((e = tls_again(t, r, "handshake")) != 0)
            break;
    }
    if (e == SNAP_ETIMEOUT && handshake_ms && s->deadline_ns != saved && snap_now_ns() >= s->deadline_ns)
        e = snap_fail(SNAP_ETIMEOUT, "%s: TLS handshake not done within %u ms (handshake timeout)", s->peer,
                      handshake_ms);
    s->deadline_ns = saved;
    return e;
}

int tls_connect(struct tls_config *cfg, struct sock *s, const char *host, unsigned handshake_ms,
                struct tls_conn **out)
{
    struct tls_conn *t;
    int e = tls_setup(cfg, s, host, &t);
    if (!e && (e = tls_handshake(cfg, t, handshake_ms)) != 0)
        tls_close(t);
    if (!e)
        *out = t;
    return e;
}

int tls_accept(struct tls_config *cfg, struct sock *s, unsigned handshake_ms, struct tls_conn **out)
{
    struct tls_conn *t;
    int e = tls_setup(cfg, s, NULL, &t);
    if (!e && (e = tls_handshake(cfg, t, handshake_ms)) != 0)
        tls_close(t);
    if (!e)
        *out = t;
    return e;
}

int tls_read(struct tls_conn *t, void *buf, size_t len, size_t *got)
{
    if (len > INT_MAX)
        len = INT_MAX;
    for (;;) {
        int r = mbedtls_ssl_read(&t->ssl, buf, len);
        if (r > 0) {
            *got = (size_t)r;
            return 0;
        }
        /* A peer that closes without close_notify is common; framing (Content-Length,
         * chunked) decides whether the data ended early. */
        if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || r == MBEDTLS_ERR_SSL_CONN_EOF) {
            *got = 0;
            return 0;
        }
        int e = tls_again(t, r, "read");
        if (e)
            return e;
    }
}

int tls_write(struct tls_conn *t, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        size_t n = len < TLS_RECORD_MAX ? len : TLS_RECORD_MAX;
        int r = mbedtls_ssl_write(&t->ssl, p, n);
        if (r > 0) {
            p += r;
            len -= (size_t)r;
            continue;
        }
        int e = tls_again(t, r, "write");
        if (e)
            return e;
    }
    return 0;
}

size_t tls_pending(const struct tls_conn *t)
{
    return mbedtls_ssl_get_bytes_avail(&t->ssl);
}

void tls_close(struct tls_conn *t)
{
    if (!t)
        return;
    if (t->sock && t->sock->fd >= 0 && mbedtls_ssl_is_handshake_over(&t->ssl))
        (void)mbedtls_ssl_close_notify(&t->ssl); /* one non-blocking try */
    mbedtls_ssl_free(&t->ssl);
    snap_free(t);
}
