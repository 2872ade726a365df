/*
 * Secrets out of the evidence. Command lines are logged, summarised and signed, and the evidence
 * is meant to be shared: values that look like secrets (known token formats, KEY=VALUE and
 * --flag VALUE where the name says password/token/secret, URL passwords, Authorization headers,
 * private keys) are replaced before anything is written by a tag, [redacted:<HMAC>], the
 * HMAC-SHA256 of the value under a key of the job's (first 16 bytes, hex). The same value gives
 * the same tag throughout the job, so a reviewer can follow one secret from line to line; the key
 * is drawn for each job and never written anywhere, so no one can test guesses against the
 * evidence.
 * docs/findings.md lists the rules.
 */
#ifndef RW_REDACT_H
#define RW_REDACT_H
#include <stdbool.h>
#include <stddef.h>

#include "common/strbuf.h"

#define REDACT_KEY_BYTES 32
/* "[redacted:" + 32 hex + "]" and a NUL */
#define REDACT_TAG_LEN 44

/* More spans to redact in one argument: the job's own secret values (src/secrets/, matched
 * with Hyperscan), whatever their shape. Fills up to max [a, b) pairs, returns how many. */
typedef size_t (*redact_extra_fn)(void *ctx, const char *s, size_t n, size_t (*spans)[2],
				  size_t max);

struct redactor {
	unsigned char key[REDACT_KEY_BYTES];
	bool ready;
	redact_extra_fn extra; /* NULL: the rules below only */
	void *extra_ctx;
};

/* key NULL: a fresh random key, for this job only. 0, or -1 (errno) when no randomness. */
int redactor_init(struct redactor *r, const unsigned char *key);
void redactor_wipe(struct redactor *r);

/* Does a variable or option name say its value is a secret ("NPM_TOKEN", "db_password")? */
bool redact_secret_name(const char *name, size_t n);

/* The tag of one secret value. */
void redact_tag(const struct redactor *r, const void *secret, size_t n, char out[REDACT_TAG_LEN]);

/*
 * An argv area (NUL-separated, as the kernel copies it) as a JSON array of strings, secrets
 * replaced. tags (may be NULL) gets the distinct tags written, as comma-separated JSON
 * strings. Returns how many values were redacted.
 */
size_t redact_argv_json(const struct redactor *r, const char *data, size_t len, struct strbuf *json,
			struct strbuf *tags);
/* Free text (a header value, a body): token-looking spans replaced, raw bytes appended to out.
 * whole: the value is a secret as a whole (an Authorization header). Returns spans replaced. */
size_t redact_text(const struct redactor *r, const char *s, size_t n, bool whole,
		   struct strbuf *out);
/* One argument vector of C strings, each redacted into out[i] (malloc'd, caller frees). */
size_t redact_argv_strings(const struct redactor *r, char *const *argv, char **out);

#endif
