/* serve-nbd-ctl.h -- serve-nbd's export triggers while it runs: SIGUSR1 and a control socket,
 * and the client form `snapctl serve-nbd --control PATH COMMAND [ARGS] [--json]`.
 *
 * The control protocol is one request line on a Unix socket, answered by JSON lines until the
 * server closes the connection.  The commands (their meaning is serve-nbd.c's):
 *   export [NAME [DIR]]     one line per export diffed:
 *     {"ok":true,"changed":true,"build_id":"...","parent_build_id":"...","generation":N,
 *      "format":4,"diff_bytes":N,"data":"DIR/ID/FILE","header":"DIR/ID/FILE.header"}
 *     {"ok":true,"changed":false,"parent_build_id":"..."}           (nothing written since open)
 *     (with "export":"NAME" first when the server serves --export devices)
 *   add NAME HEADER_URL     {"ok":true,"export":"NAME","size":N}
 *   remove NAME             {"ok":true,"export":"NAME"}
 *   list                    one line per export: {"export":"NAME","header":"URL","size":N,"clients":N}
 * and any failure is {"ok":false,"error":"...","exit":N}.  One request per connection; a line
 * longer than 8192 bytes or slower than 5 s is dropped.
 */
#ifndef SNAP_SERVE_NBD_CTL_H
#define SNAP_SERVE_NBD_CTL_H

#include <stdbool.h>
#include <stddef.h>

/* Answer one request line (NUL-terminated; NULL: SIGUSR1, export everything) with JSON lines
 * appended to reply.  Returns 0 or the snap_err of what failed (the reply then says why). */
struct snap_buf;
typedef int (*ctl_fn)(void *ctx, const char *line, struct snap_buf *reply);

struct ctl;

/* Start the trigger thread: it exports on SIGUSR1 (printing the answer on stdout) and, when
 * path is not NULL ("PATH" or "unix:PATH"), on each control request.  Installs the SIGUSR1
 * handler. */
int ctl_start(const char *path, ctl_fn fn, void *ctx, struct ctl **out);
/* Ask the trigger thread for an export, as SIGUSR1 does (async-signal safe; nothing before
 * ctl_start or after ctl_stop). */
void ctl_poke(void);
/* Stop the thread (an export in progress finishes first) and remove the socket. */
void ctl_stop(struct ctl *c);

/* The client form: send words[0..nwords) (a command and its arguments) to the server at path;
 * print the answer (an export's for people, or as JSON with json).  Returns the exit code. */
int ctl_client(const char *path, char *const *words, int nwords, bool json);

/* Print one answer line for people (or as it is with json) on stdout, errors on stderr;
 * returns the exit code it stands for.  Used by the client and by the server's own exports. */
int ctl_print_reply(const char *line, size_t len, bool json);
/* Where the server prints its own exports (SIGUSR1): as JSON or for people. */
void ctl_set_json(bool json);

#endif
