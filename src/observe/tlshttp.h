/* HTTP transactions inside TLS (bpf/tls.bpf.h): request and response heads as OpenSSL saw them
 * in plaintext, paired per (process, SSL object) into one `http` line per transaction. */
#ifndef RUNWARDEN_TLSHTTP_H
#define RUNWARDEN_TLSHTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "common/strbuf.h"
#include "events.h"

/* What a head says, parsed in user space from the copy the kernel sent (never a header's
 * value other than Host and Content-Length: nothing else of the head is kept). */
struct tls_head {
	bool request, h2; /* a request (else a response); HTTP/2's connection preface */
	char method[FB_METHOD];
	char authority[FB_NAME];
	char path[FB_PATH];
	bool path_cut;
	int status;	/* responses: 100-999, 0 if unreadable */
	int64_t length; /* Content-Length, -1 if absent or unreadable */
	bool websocket; /* a request asking Upgrade: websocket */
};

/* One `http` line as collect.c writes it, from heads (HTTP/1.x) or from a decoded HTTP/2
 * stream. NULL strings and negative numbers are written as null. */
struct http_line {
	const struct ev_hdr *h; /* the process that sent the request (else read the response) */
	uint32_t lib;		/* enum tls_lib: whose probes saw it */
	bool h2;
	const char *method, *authority, *path;
	bool path_cut;
	int status; /* 0: none seen */
	int64_t req_bytes, resp_bytes;
	int64_t duration_ns;
	uint32_t stream;       /* HTTP/2 stream id (0: HTTP/1.x) */
	const char *level;     /* the capture level, NULL when summary */
	const char *extra;     /* more members, rendered: ,"request_headers":... (may be NULL) */
	const char *undecoded; /* HTTP/2 not decoded past this point, and why */
};

/* Parses one ev_tls_data; false when it is neither a request head nor a response head. */
bool tls_head_parse(const struct ev_tls_data *e, struct tls_head *out);

#endif
