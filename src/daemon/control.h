/*
 * The agent's control socket: a root-only AF_UNIX stream socket carrying one
 * small JSON request and one JSON reply per connection. Shared by the daemon
 * (`runwarden agent`) and its client (`runwarden job`). docs/agent.md has the
 * message shapes.
 */
#ifndef RW_CONTROL_H
#define RW_CONTROL_H
#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#define CONTROL_DEFAULT_SOCKET	   "/run/runwarden/agent.sock"
#define CONTROL_MAX_REQUEST	   (64 * 1024)	 /* bytes: a request is a handful of paths */
#define CONTROL_MAX_REPLY	   (1024 * 1024) /* bytes: a stop reply carries the summary text */
#define CONTROL_REQUEST_TIMEOUT_MS 2000		 /* the agent is single-threaded: no slow talkers */
#define CONTROL_REPLY_TIMEOUT_MS   300000	 /* stop signs and writes the evidence */

/* Creates the socket's directory (0700, must be root's and private), removes
 * a stale socket, binds 0600 and listens (non-blocking, close-on-exec).
 * Returns the fd, or -1 with a reason in err. */
int control_listen(const char *path, char *err, size_t errlen);

/* Reads one message until EOF (the peer shuts down its write side), at most
 * max bytes and timeout_ms in all; returns a JSON object, or NULL with a
 * reason in err. */
json_t *control_read(int fd, size_t max, int timeout_ms, char *err, size_t errlen);
/* Writes msg as one line of JSON. 0 or -1. */
int control_write(int fd, const json_t *msg);

/* Client side: connect, send req, read the reply. NULL with a reason in err. */
json_t *control_call(const char *path, const json_t *req, char *err, size_t errlen);

#endif
