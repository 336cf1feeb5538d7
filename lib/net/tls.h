/* tls.h -- TLS connections (mbedTLS 3.6) over a poll-based struct sock: clients, and the
 * server side of `snapctl peer serve --tls-cert F --tls-key F`.
 *
 * A tls_config holds the mbedTLS configuration and the trusted CA chain; it is loaded once and
 * shared read-only by every connection on every thread.  tls_config_system() is the process-wide
 * one: SSL_CERT_FILE if set, else the first CA bundle found among the usual system paths.
 * tls_config_new(ca_file) trusts only ca_file (tests, peers with their own CA).
 *
 * Certificates are always verified (chain and host name: DNS names, and IP addresses in the
 * subjectAltName).  The host is sent as SNI.  Every wait is a poll on the socket with its idle
 * timeout and deadline; the handshake has its own bound on top.  Errors are SNAP_ETLS (and
 * SNAP_ENET/SNAP_ETIMEOUT from the socket) with a message naming the peer; a failed
 * verification says why and how to fix it.
 */
#ifndef SNAP_NET_TLS_H
#define SNAP_NET_TLS_H

#include <stddef.h>

#include "net/sock.h"

struct tls_config;
struct tls_conn;

/* The shared system-trust config (loaded on first call; never freed). */
int tls_config_system(struct tls_config **out);
/* A config trusting only the PEM certificates in ca_file. */
int tls_config_new(const char *ca_file, struct tls_config **out);
void tls_config_free(struct tls_config *cfg);
/* A server config presenting the certificate chain in cert_file with the private key in
 * key_file (PEM).  Clients are not asked for certificates. */
int tls_server_config_new(const char *cert_file, const char *key_file, struct tls_config **out);
/* The CA file the config trusts ("" for a server config). */
const char *tls_config_ca_file(const struct tls_config *cfg);

/* Handshake on the connected socket s (which must outlive the connection), verifying the
 * server's certificate for host.  handshake_ms = 0: only s's idle timeout and deadline. */
int tls_connect(struct tls_config *cfg, struct sock *s, const char *host, unsigned handshake_ms,
                struct tls_conn **out);
/* Server side: handshake with the client on the accepted socket s. */
int tls_accept(struct tls_config *cfg, struct sock *s, unsigned handshake_ms, struct tls_conn **out);
/* Read at least one byte; *got = 0 means the peer closed (close_notify or EOF). */
int tls_read(struct tls_conn *t, void *buf, size_t len, size_t *got);
/* Write all of buf straight from the caller's memory, at most one record (16 KiB) per call
 * into mbedTLS. */
int tls_write(struct tls_conn *t, const void *buf, size_t len);
/* Decrypted bytes buffered inside mbedTLS (readable without touching the socket). */
size_t tls_pending(const struct tls_conn *t);
/* Best-effort close_notify (never waits), then free.  The socket is left open. */
void tls_close(struct tls_conn *t);

#endif
