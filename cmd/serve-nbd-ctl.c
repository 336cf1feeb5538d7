/* serve-nbd-ctl.c -- export triggers of a running serve-nbd (SIGUSR1, the control socket) and
 * the control client.  The protocol is described in serve-nbd-ctl.h.
 *
 * One thread polls a wake pipe and the control socket.  SIGUSR1 is taken by the applet's signal
 * thread (lib/base/cancel), which only writes a byte to the pipe (ctl_poke); the export itself
 * runs on this thread.  The control socket is mode 0600 and only root or our own uid
 * is served (SO_PEERCRED); each client gets its own thread (at most CTL_CLIENTS_MAX at once), so
 * a silent client costs nobody else its 5 s; exports themselves are serialized by the device.
 */
#include "serve-nbd-ctl.h"

#include "cli.h"

#include "base/buf.h"
#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"
#include "device/device.h"
#include "net/listen.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_LINE_MAX 8192       /* a request line: a command, a name, a URL or a directory */
#define CTL_REPLY_MAX (4u << 20) /* an answer: a line per export at most */
#define CTL_READ_MS 5000
#define CTL_CLIENTS_MAX 16      /* control clients served at once; more are closed at accept */

struct ctl {
    pthread_t thread;
    int lfd;                    /* -1 without a control socket */
    char path[PATH_MAX];
    ctl_fn fn;
    void *ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned nclients;          /* under mu: client threads running */
    int client_fds[CTL_CLIENTS_MAX]; /* under mu: their sockets (-1 = free), shut at stop */
};

struct ctl_client_arg {
    struct ctl *c;
    int fd, slot;
};

static int g_wake[2] = {-1, -1};
static _Atomic int g_poke_fd = -1; /* g_wake[1] once ready: the signal thread reads it */
static bool g_json;
static pthread_mutex_t g_print_mu = PTHREAD_MUTEX_INITIALIZER;

void ctl_set_json(bool json) { g_json = json; }

void ctl_poke(void)
{
    int e = errno;
    int fd = g_poke_fd;
    if (fd >= 0 && write(fd, "e", 1) < 0) {
        /* a full pipe already holds a pending export */
    }
    errno = e;
}

static const char *sock_path(const char *p)
{
    return strncmp(p, "unix:", 5) == 0 ? p + 5 : p;
}

/* Read one request line from a control client into line[cap] (at most cap - 1 bytes, the
 * newline replaced by a NUL; *len = its length, which may include NUL bytes sent by the client);
 * false if it is too long, slow or broken.  Bytes after the newline are ignored. */
static bool read_line(int fd, char *line, size_t cap, size_t *len)
{
    size_t n = 0;
    uint64_t deadline = snap_now_ns() + (uint64_t)CTL_READ_MS * 1000000u;
    while (n < cap - 1) {
        uint64_t now = snap_now_ns();
        if (now >= deadline)
            return false;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        ssize_t k = read(fd, line + n, cap - 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        n += (size_t)k;
        char *nl = memchr(line, '\n', n);
        if (nl) {
            *nl = '\0';
            *len = (size_t)(nl - line);
            return true;
        }
    }
    return false;
}

static void serve_client(struct ctl *c, int fd)
{
    char *line = snap_malloc(CTL_LINE_MAX + 1);
    size_t len;
    if (!line || !read_line(fd, line, CTL_LINE_MAX + 1, &len)) {
        snap_warn("control: dropped a request that was too long, too slow or cut short");
        snap_free(line);
        return;
    }
    struct snap_buf b;
    snap_buf_init(&b, 4096, CTL_REPLY_MAX);
    if (strlen(line) != len) { /* "export\0junk" is nothing we know */
        const char *bad = "{\"ok\":false,\"error\":\"unknown command (a NUL byte in the request)\",\"exit\":2}\n";
        snap_buf_append(&b, bad, strlen(bad));
    } else {
        c->fn(c->ctx, line, &b);
    }
    if (b.len)
        snap_write_full(fd, b.data, b.len, "control client");
    snap_buf_free(&b);
    snap_free(line);
}

/* Print each line of an answer of the server's own (SIGUSR1). */
static void print_lines(const struct snap_buf *b)
{
    const char *p = (const char *)b->data, *end = p + b->len;
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        ctl_print_reply(p, n, g_json);
        p += n;
    }
}

static void *client_main(void *p)
{
    struct ctl_client_arg *a = p;
    struct ctl *c = a->c;
    serve_client(c, a->fd);
    pthread_mutex_lock(&c->mu);
    c->client_fds[a->slot] = -1;
    close(a->fd);
    c->nclients--;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    snap_free(a);
    return NULL;
}

/* Accept one control client: checked for its uid, then served on a thread of its own. */
static void accept_client(struct ctl *c)
{
    int fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    unsigned uid = 0;
    if (!net_unix_peer_trusted(fd, &uid)) {
        snap_warn("control: refused a client of uid %u (only root and uid %u may export)", uid,
                  (unsigned)geteuid());
        close(fd);
        return;
    }
    struct ctl_client_arg *a = snap_calloc(1, sizeof *a);
    pthread_mutex_lock(&c->mu);
    int slot = -1;
    for (int i = 0; i < CTL_CLIENTS_MAX && slot < 0; i++)
        if (c->client_fds[i] < 0)
            slot = i;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (a && slot >= 0) {
        *a = (struct ctl_client_arg){c, fd, slot};
        c->client_fds[slot] = fd;
        c->nclients++;
        if (pthread_create(&t, &attr, client_main, a) != 0) {
            c->client_fds[slot] = -1;
            c->nclients--;
            slot = -1;
        }
    }
    pthread_mutex_unlock(&c->mu);
    pthread_attr_destroy(&attr);
    if (!a || slot < 0) {
        snap_warn("control: refused a client: %d requests in progress already", CTL_CLIENTS_MAX);
        close(fd);
        snap_free(a);
    }
}

static void *ctl_thread(void *arg)
{
    struct ctl *c = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = g_wake[0], .events = POLLIN}, {.fd = c->lfd, .events = POLLIN}};
        int r = poll(p, c->lfd >= 0 ? 2 : 1, -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        if (p[0].revents & POLLIN) {
            char b[16];
            ssize_t k = read(g_wake[0], b, sizeof b);
            if (k > 0 && memchr(b, 'q', (size_t)k))
                break;
            if (k > 0) {
                struct snap_buf out;
                snap_buf_init(&out, 4096, CTL_REPLY_MAX);
                c->fn(c->ctx, NULL, &out);
                print_lines(&out);
                snap_buf_free(&out);
            }
        }
        if (c->lfd >= 0 && (p[1].revents & POLLIN))
            accept_client(c);
    }
    return NULL;
}

int ctl_start(const char *path, ctl_fn fn, void *ctx, struct ctl **out)
{
    struct ctl *c = snap_calloc(1, sizeof *c);
    if (!c)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    c->lfd = -1;
    c->fn = fn;
    c->ctx = ctx;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    for (int i = 0; i < CTL_CLIENTS_MAX; i++)
        c->client_fds[i] = -1;
    int err = 0;
    if (g_wake[0] < 0 && pipe2(g_wake, O_CLOEXEC | O_NONBLOCK) < 0)
        err = snap_fail_errno("control: pipe");
    else
        g_poke_fd = g_wake[1];
    if (!err && path) {
        char addr[PATH_MAX + 8];
        snprintf(c->path, sizeof c->path, "%s", sock_path(path));
        snprintf(addr, sizeof addr, "unix:%s", c->path);
        if ((err = net_listen_mode(addr, 0600, &c->lfd)) != 0)
            snap_fail_ctx(err, "control socket");
    }
    if (!err) {
        if (pthread_create(&c->thread, NULL, ctl_thread, c) != 0)
            err = snap_fail(SNAP_ENOMEM, "control: cannot start a thread");
    }
    if (err) {
        if (c->lfd >= 0) {
            close(c->lfd);
            unlink(c->path);
        }
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        snap_free(c);
        return err;
    }
    *out = c;
    return 0;
}

void ctl_stop(struct ctl *c)
{
    if (!c)
        return;
    while (write(g_wake[1], "q", 1) < 0 && errno == EINTR) {
    }
    pthread_join(c->thread, NULL);
    /* Clients still being served: end their reads and wait (an export in progress finishes). */
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < CTL_CLIENTS_MAX; i++)
        if (c->client_fds[i] >= 0)
            shutdown(c->client_fds[i], SHUT_RD);
    while (c->nclients)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    /* Drain what is left so a later ctl_start does not see a stale request. */
    char b[64];
    while (read(g_wake[0], b, sizeof b) > 0) {
    }
    if (c->lfd >= 0) {
        close(c->lfd);
        unlink(c->path);
    }
    snap_free(c);
}

/* s, or "?" for a field the answer lacks. */
static const char *or_unknown(const char *s) { return *s ? s : "?"; }

int ctl_print_reply(const char *line, size_t len, bool json)
{
    static struct device_export_answer a; /* under g_print_mu: 9 KiB, not on a thread's stack */
    pthread_mutex_lock(&g_print_mu);
    int rc = 0, err = device_export_answer_parse(line, len, &a);
    if (err) {
        fprintf(stderr, "snapctl serve-nbd: the control answer is not JSON: %s\n", snap_errmsg(err));
        rc = SNAP_EXIT_FAIL;
    } else if (!a.ok) {
        fprintf(stderr, "snapctl serve-nbd: export failed: %s\n", *a.error ? a.error : "(no reason given)");
        rc = a.exit_code;
    } else if (json) {
        fwrite(line, 1, len, stdout);
        if (len == 0 || line[len - 1] != '\n')
            fputc('\n', stdout);
    } else if (!a.changed) {
        printf("no changes since build %s: nothing exported\n", *a.parent_build_id ? a.parent_build_id : "(empty)");
    } else {
        printf("exported build %s (generation %lld, %lld diff bytes)\n  data:   %s\n  header: %s\n",
               or_unknown(a.build_id), (long long)a.generation, (long long)a.diff_bytes, or_unknown(a.data),
               or_unknown(a.header));
    }
    fflush(stdout);
    pthread_mutex_unlock(&g_print_mu);
    return rc;
}

/* The answer of a server to one request, read until it closes (at most CTL_REPLY_MAX). */
static int read_answer(int fd, const char *p, struct snap_buf *b)
{
    for (;;) {
        if (snap_buf_reserve(b, b->len + 65536 < CTL_REPLY_MAX ? b->len + 65536 : CTL_REPLY_MAX) ||
            b->len >= b->cap)
            return snap_fail(SNAP_ETOOBIG, "control socket %s: an answer of more than %u bytes", p, CTL_REPLY_MAX);
        ssize_t k = read(fd, b->data + b->len, b->cap - b->len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return snap_fail_errno("control socket %s: read", p);
        if (k == 0)
            return 0;
        b->len += (size_t)k;
    }
}

/* Print an answer: export answers for people (or as JSON), the others as the JSON lines they
 * are; a {"ok":false,...} line on stderr.  Returns the exit code of the first failure. */
static int print_answer(const char *command, const struct snap_buf *b, bool json)
{
    bool export = strncmp(command, "export", 6) == 0 && (command[6] == '\0' || command[6] == ' ');
    const char *q = (const char *)b->data, *end = q + b->len;
    int rc = 0;
    while (q && q < end) {
        const char *nl = memchr(q, '\n', (size_t)(end - q));
        if (!nl)
            return cli_fail(snap_fail(SNAP_EPROTO, "control answer cut short"), "see the server's log");
        size_t n = (size_t)(nl - q) + 1;
        int lrc = 0;
        if (export) {
            lrc = ctl_print_reply(q, n, json);
        } else if (strncmp(q, "{\"ok\":false", 11) == 0) {
            static struct device_export_answer a; /* the client is one thread */
            lrc = SNAP_EXIT_FAIL;
            if (device_export_answer_parse(q, n, &a) == 0)
                lrc = a.exit_code;
            fprintf(stderr, "snapctl serve-nbd: %s failed: %s\n", command, *a.error ? a.error : "(no reason given)");
        } else {
            fwrite(q, 1, n, stdout);
        }
        rc = rc ? rc : lrc;
        q += n;
    }
    fflush(stdout);
    return rc;
}

int ctl_client(const char *path, char *const *words, int nwords, bool json)
{
    const char *p = sock_path(path);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(p) >= sizeof sun.sun_path)
        return cli_usage_error("--control %s: socket path too long", path);
    static const char *const known[] = {"export", "add", "remove", "list"};
    bool ok = false;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        ok |= strcmp(words[0], known[i]) == 0;
    if (!ok)
        return cli_usage_error("unknown control command '%s'; the commands are export [NAME [DIR]], "
                               "add NAME HEADER_URL, remove NAME and list", words[0]);
    char req[CTL_LINE_MAX + 1];
    size_t n = 0;
    for (int i = 0; i < nwords; i++) {
        size_t l = strlen(words[i]);
        if (n + l + 1 > CTL_LINE_MAX)
            return cli_usage_error("the control request is longer than %d bytes", CTL_LINE_MAX);
        memcpy(req + n, words[i], l);
        n += l;
        req[n++] = i + 1 < nwords ? ' ' : '\n';
    }
    strcpy(sun.sun_path, p);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return cli_fail(snap_fail_errno("socket"), NULL);
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        int err = snap_fail_errno("control socket %s", p);
        close(fd);
        return cli_fail(err, "is serve-nbd running with --control unix:PATH on that path?");
    }
    struct snap_buf b;
    snap_buf_init(&b, 65536, CTL_REPLY_MAX);
    int err = snap_write_full(fd, req, n, "control socket");
    if (!err)
        err = read_answer(fd, p, &b);
    close(fd);
    int rc = err ? cli_fail(err, NULL) : b.len == 0 ? cli_fail(snap_fail(SNAP_EPROTO, "control socket %s: no answer", p), "see the server's log")
                                                     : print_answer(words[0], &b, json);
    snap_buf_free(&b);
    return rc;
}
