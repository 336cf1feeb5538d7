/* serve-nbd-ctl.h -- serve-nbd's export triggers while it runs: SIGUSR1 and a control socket,
 * and the client form `snapctl serve-nbd --control PATH export [--json]`.
 *
 * The control protocol is one line each way on a Unix socket: the client sends "export\n", the
 * server answers one JSON object and a newline:
 *   {"ok":true,"changed":true,"build_id":"...","parent_build_id":"...","generation":N,
 *    "format":4,"diff_bytes":N,"data":"DIR/ID/FILE","header":"DIR/ID/FILE.header"}
 *   {"ok":true,"changed":false,"parent_build_id":"..."}           (nothing written since open)
 *   {"ok":false,"error":"..."}
 * One request per connection; a line longer than 64 bytes or slower than 5 s is dropped.
 */
#ifndef SNAP_SERVE_NBD_CTL_H
#define SNAP_SERVE_NBD_CTL_H

#include <stdbool.h>
#include <stddef.h>

/* Run one export and write its one-line JSON answer (with the newline) into reply[cap].
 * Returns 0 or the snap_err of the failed export (the reply then says why). */
typedef int (*ctl_export_fn)(void *ctx, char *reply, size_t cap);

struct ctl;

/* Start the trigger thread: it exports on SIGUSR1 (printing the answer on stdout) and, when
 * path is not NULL ("PATH" or "unix:PATH"), on each control request.  Installs the SIGUSR1
 * handler. */
int ctl_start(const char *path, ctl_export_fn fn, void *ctx, struct ctl **out);
/* Ask the trigger thread for an export, as SIGUSR1 does (async-signal safe; nothing before
 * ctl_start or after ctl_stop). */
void ctl_poke(void);
/* Stop the thread (an export in progress finishes first) and remove the socket. */
void ctl_stop(struct ctl *c);

/* The client form: ask the server at path to export; print the answer (as JSON with json).
 * Returns the exit code. */
int ctl_client(const char *path, const char *command, bool json);

/* Print one answer line for people (or as it is with json) on stdout, errors on stderr;
 * returns the exit code it stands for.  Used by the client and by the server's own exports. */
int ctl_print_reply(const char *line, size_t len, bool json);
/* Where the server prints its own exports (SIGUSR1): as JSON or for people. */
void ctl_set_json(bool json);

#endif
