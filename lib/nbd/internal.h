/* internal.h -- what lib/nbd's handshake and transmission phases share. */
#ifndef SNAP_NBD_INTERNAL_H
#define SNAP_NBD_INTERNAL_H

#include "nbd/nbd.h"

#include "base/buf.h"

#include <pthread.h>
#include <stddef.h>
#include <sys/uio.h>

#define NBD_OPT_MAX (64u << 10)          /* option payloads we read; larger ones are refused */
#define NBD_META_ALLOC_ID 1u             /* our id for base:allocation */

struct nbd_exports;
struct nbd_entry;

struct nbd_conn {
    const struct nbd_export *exp;        /* the export served; set at GO when picked by name */
    const struct nbd_export *only;       /* nbd_serve: the one export there is */
    struct nbd_exports *reg;             /* nbd_serve_exports: where names are looked up */
    struct nbd_entry *entry;             /* reg's entry held from GO to the connection's end */
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
    uint64_t deadline_ns;                /* nbd_recv fails past it (0: none); the reader's */
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

/* ---- one request (dispatch.c reads and routes it, conn.c executes and answers it) ---- */

struct dev_extent;
struct nbd_slot {
    struct nbd_slot *next;      /* dispatch.c: the free list or the work queue */
    uint16_t flags, type;
    uint64_t cookie, offset;
    uint32_t length;
    uint32_t early_error;       /* wire error decided when the request was read, or 0 */
    struct snap_buf buf;        /* the request's data (a WRITE's payload, a READ's reply) */
    uint32_t data_off;          /* a READ's data starts here in buf (sub-block reads) */
    uint8_t *blk;               /* one backend block for read-modify-write, on first use */
    struct dev_extent *ext;     /* BLOCK_STATUS descriptors, allocated on first use */
    uint8_t head[32];           /* the reply's header while the reply waits to be sent */
};

#define NBD_STAT(c, field, v) atomic_fetch_add_explicit(&(c)->stats->field, (v), memory_order_relaxed)

/* The wire error to answer s with before running it, or 0 (s's header fields are set). */
uint32_t nbd_validate(const struct nbd_conn *c, const struct nbd_slot *s);
/* Run s (anything, waiting as long as the backend needs) and send its reply.  Returns 0, or the
 * snap_err of a reply that could not be sent (the socket is shut then). */
int nbd_execute(struct nbd_conn *c, struct nbd_slot *s);
/* Count a READ or WRITE of s that succeeded. */
void nbd_count(struct nbd_conn *c, const struct nbd_slot *s);
/* The smallest write the backend takes whole; and whether s is finer than that on c. */
uint32_t nbd_backend_block(const struct nbd_conn *c);
bool nbd_sub_block(const struct nbd_conn *c, const struct nbd_slot *s);
/* s's reply with wire error `error` as iovecs over s->head (and a READ's data in s->buf): returns
 * how many (1 or 2).  Counts an error reply in the stats. */
int nbd_reply_iov(struct nbd_conn *c, struct nbd_slot *s, uint32_t error, struct iovec iov[2]);
/* Send whole under the send lock; on failure the socket is shut and the error returned. */
int nbd_send_iov(struct nbd_conn *c, struct iovec *iov, int n);
/* The same for a READ reply whose data is s->length bytes of file fd at off (zero-copy). */
int nbd_send_ref(struct nbd_conn *c, struct nbd_slot *s, int fd, uint64_t off);

#endif
