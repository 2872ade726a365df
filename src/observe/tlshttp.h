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
};

/* Parses one ev_tls_data; false when it is neither a request head nor a response head. */
bool tls_head_parse(const struct ev_tls_data *e, struct tls_head *out);

#endif
