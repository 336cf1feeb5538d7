/* internal.h -- what lib/nbd's handshake and transmission phases share. */
#ifndef SNAP_NBD_INTERNAL_H
#define SNAP_NBD_INTERNAL_H

#include "nbd/nbd.h"

#include <pthread.h>
#include <stddef.h>

#define NBD_OPT_MAX (64u << 10)          /* option payloads we read; larger ones are refused */
#define NBD_META_ALLOC_ID 1u             /* our id for base:allocation */

struct nbd_conn {
    const struct nbd_export *exp;
    int rfd, wfd;
    const char *peer;
    bool structured;                     /* NBD_OPT_STRUCTURED_REPLY acknowledged */
    bool meta_alloc;                     /* base:allocation selected by SET_META_CONTEXT */
    uint16_t tflags;                     /* transmission flags sent to the client */
    bool asked_block_size;               /* GO listed NBD_INFO_BLOCK_SIZE: it honours min_block */
    uint32_t align;                      /* what requests must be aligned to on this connection:
                                          * the export's min_block, or at most 512 for a client
                                          * that never asked (served by read-modify-write) */
    pthread_mutex_t send_lock;           /* one reply at a time on the wire */
    struct nbd_stats *stats;
    unsigned io_timeout_ms;
    bool (*admit)(void);
    uint64_t deadline_ns;                /* nbd_recv fails past it (0: none); read lock holder */
};

/* The alignment a client gets when it did not ask for block sizes: the NBD default. */
#define NBD_DEFAULT_ALIGN 512u

/* Read/write exactly n bytes; EOF where bytes were owed is SNAP_ESHORT; past c->deadline_ns
 * or a socket timeout, SNAP_ETIMEOUT. */
int nbd_recv(struct nbd_conn *c, void *buf, size_t n);
int nbd_send(struct nbd_conn *c, const void *buf, size_t n);
/* Read and discard n bytes. */
int nbd_discard(struct nbd_conn *c, uint64_t n);

/* Phase one: returns 0 when the client entered transmission, SNAP_ECANCELED on ABORT or
 * a clean close, another snap_err when the client broke the protocol. */
int nbd_handshake(struct nbd_conn *c);
/* Phase two: serve requests until NBD_CMD_DISC or a protocol error. */
int nbd_transmission(struct nbd_conn *c, const struct nbd_conn_opts *opts);

uint16_t nbd_transmission_flags(const struct nbd_conn *c);

#endif
