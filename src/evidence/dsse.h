/*
 * DSSE v1 envelopes (github.com/secure-systems-lab/dsse) and the Sigstore
 * bundle v0.3 that carries one. The signature covers
 * PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body,
 * computed over the exact payload bytes; nothing is re-serialised.
 */
#ifndef RW_EV_DSSE_H
#define RW_EV_DSSE_H
#include <jansson.h>
#include <stddef.h>

#include "common/strbuf.h"
#include "evidence/keys.h"

#define DSSE_INTOTO_TYPE    "application/vnd.in-toto+json"
#define SIGSTORE_BUNDLE_V03 "application/vnd.dev.sigstore.bundle.v0.3+json"
/* Largest attestation file read, and most signatures looked at. */
#define DSSE_MAX_FILE (32u << 20)
#define DSSE_MAX_SIGS 16

void dsse_pae(struct strbuf *out, const char *type, size_t tlen, const void *body, size_t blen);

/* A new envelope object {"payload","payloadType","signatures":[{"keyid","sig"}]}. */
json_t *dsse_sign(const char *type, const void *payload, size_t len, const struct key *k,
		  char *err);
/* Wraps an envelope (reference taken) in a bundle with a public-key hint. */
json_t *sigstore_bundle(json_t *envelope, const char *hint);

struct dsse_sig {
	unsigned char *sig;
	size_t len;
	char *keyid; /* as claimed; informational only */
};

struct dsse_env {
	char *type;
	size_t type_len;
	unsigned char *payload;
	size_t payload_len;
	struct dsse_sig sigs[DSSE_MAX_SIGS];
	size_t nsigs;
	int bundle; /* 1 when read from a Sigstore bundle */
	char *hint; /* the bundle's public-key hint, if any */
};

/* Parses an envelope or a bundle holding one. Unknown fields are ignored. */
int dsse_parse(const char *text, size_t len, struct dsse_env *e, char *err);
/*
 * Checks the signatures against k, the pinned key, and nothing else: the key
 * ids they claim play no part. Returns the index of the first signature that
 * verifies, or -1 with err saying why none did.
 */
int dsse_verify(const struct dsse_env *e, const struct key *k, char *err);
void dsse_env_free(struct dsse_env *e);

#endif
