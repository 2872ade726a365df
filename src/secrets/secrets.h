/*
 * Secrets leaving (issue #12): the job's own secrets, where they may go, and finding them in
 * what leaves. Sources (sources.c): the values of the job's secret environment variables, the
 * tokens of the credential files it reads (read here, safely: never through a link, regular
 * files only, bounded), and well-known token formats. Matching (secrets.c): Hyperscan, one
 * database for every literal value and format, for the text user space scans (DNS names at the
 * gate, command lines and request targets before they are logged); the kernel gets the same
 * secrets as anchors (bpf/secretscan.bpf.h) and scans what processes send.
 *
 * Nothing here writes a secret anywhere: a secret is named (its variable, its file, its format)
 * and tagged with the job's keyed hash (findings/redact.h), the tag a reviewer can match.
 * docs/policy.md (secrets:) says where each may go.
 */
#ifndef RW_SECRETS_H
#define RW_SECRETS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "events.h"
#include "findings/redact.h"

/* Values shorter than this are not matched (they would match ordinary text), only counted. */
#define SECRET_MIN_LEN 8
/* Longest value kept; longer ones are matched by their first SECRET_VALUE_MAX bytes. */
#define SECRET_VALUE_MAX 4096
/* Destinations per secret. */
#define SECRET_DESTS_MAX 32
/* Credential files read per job, and their size cap. */
#define SECRET_FILES_MAX  256
#define SECRET_FILE_BYTES (256 * 1024)

enum secret_source {
	SECRET_ENV = 1, /* an environment variable's value */
	SECRET_FILE,	/* a token in a credential file */
	SECRET_FORMAT,	/* a well-known token format (no value: the shape) */
};

struct secret {
	uint32_t id; /* kernel id: enum secret_format, or >= SECRET_ID_FIRST */
	enum secret_source src;
	char *name; /* "NPM_TOKEN", "/home/u/.npmrc", "github" */
	char *what; /* the file's key ("_authToken", "password"), NULL otherwise */
	char *value;
	size_t len;
	char tag[REDACT_TAG_LEN]; /* "" for formats */
	/* Hosts it may be sent to: exact names, "**.suffix" (any name below), "*" (anywhere). */
	char *to[SECRET_DESTS_MAX];
	size_t nto;
};

/* The policy's `secrets:` section, as the loader gives it (policy.h). */
struct policy_secrets;

/* Writes the secrets into the kernel maps (loader.c gives the fds). */
struct secrets_kernel {
	int cfg_fd, pairs_fd, anchors_fd, to_fd;
};

struct secrets {
	struct secret *v;
	size_t n, cap;
	uint64_t too_short;	/* values skipped: shorter than SECRET_MIN_LEN */
	uint64_t dropped;	/* past SECRETS_MAX */
	uint64_t files_read;	/* credential files read */
	uint64_t files_skipped; /* not read: a link, not regular, too big, not the job's */
	uint32_t next_id;
	const struct redactor *rd;
	const struct policy_secrets *pol;
	/* Hyperscan: rebuilt when a secret is added (a credential file read during the job). */
	void *db, *scratch;
	bool dirty;
	char hs_error[160]; /* why the database could not be built, "" when it was */
	struct secrets_kernel k;
	bool kernel;		/* k is armed */
	uint64_t kernel_failed; /* anchors or destinations the kernel maps refused */
};

void secrets_init(struct secrets *s, const struct redactor *rd, const struct policy_secrets *pol);
/* The policy's `secrets:` section, once it is loaded (before any secret is added). */
void secrets_set_policy(struct secrets *s, const struct policy_secrets *pol);
/* Wipes every value. */
void secrets_free(struct secrets *s);

/* The environment's secret variables: names the redactor calls secret (redact_secret_name),
 * names ending in _KEY, and the policy's `secrets.env` list. */
void secrets_from_environ(struct secrets *s, char *const *env);
/* One NAME=VALUE block (an ev_env record: NUL-separated), for whole-job mode steps. */
void secrets_from_env_block(struct secrets *s, const char *data, size_t len);
/*
 * A credential file's tokens. path: as the job opened it (its name says the format); kdev/ino:
 * the file the job opened (0: any, at job start); uid: the job process's (only a file it owns
 * is read: a link or hard link to another user's file cannot make runwarden read it; -1: any).
 * Returns the number of new secrets, -1 when the file was not read (counted).
 */
int secrets_from_file(struct secrets *s, const char *path, uint32_t kdev, uint64_t ino,
		      int64_t uid);
/* Is path a credential file whose format secrets_parse_file knows (by its name)? */
bool secrets_file_known(const char *path);
/* Parses a credential file's text (sources.c; exposed for unit tests): calls fn with each
 * token, the key it was under and the host it is for (NULL: none named). */
typedef void (*secret_token_fn)(void *ctx, const char *key, const char *value, size_t len,
				const char *host);
void secrets_parse_file(const char *path, const char *text, size_t len, secret_token_fn fn,
			void *ctx);

/* Adds one secret (value copied). Returns it, or NULL when too short (counted) or a duplicate
 * of one already known (then that one gets the destinations too). */
struct secret *secrets_add(struct secrets *s, enum secret_source src, const char *name,
			   const char *what, const char *value, size_t len, const char *host);

/* The secret with kernel id id, or NULL. */
const struct secret *secrets_by_id(const struct secrets *s, uint32_t id);

/* Matching text: fn gets each match (id, [from, to)). 0, or -1 when there is no database
 * (s->hs_error says why). Overlapping matches of one secret come once, leftmost. */
typedef int (*secret_match_fn)(void *ctx, const struct secret *x, size_t from, size_t to);
int secrets_scan(struct secrets *s, const char *text, size_t len, secret_match_fn fn, void *ctx);
/* Does text hold a secret? Its first match, NULL if none. */
const struct secret *secrets_find(struct secrets *s, const char *text, size_t len, size_t *from,
				  size_t *to);
/* text with every secret replaced by its tag ([redacted:...]; formats by the tag of the
 * matched bytes). Returns the number replaced. */
size_t secrets_redact(struct secrets *s, const char *text, size_t len, struct strbuf *out);

/* May x be sent to host (a name, lower case)? */
bool secret_allowed_to(const struct secret *x, const char *host);

/* The kernel's copy: arms k and writes every secret (again, when more were added). 0, or -1
 * with errno. */
int secrets_kernel_sync(struct secrets *s, const struct secrets_kernel *k);

/* Names, for records. */
const char *secret_source_name(enum secret_source src);
const char *secret_format_name(uint32_t id);
/* The reversed FNV-1a hash the kernel judges destinations by (bpf/secretscan.bpf.h). */
uint64_t secret_rhash(const char *s, size_t n);
uint64_t secret_fnv(const void *p, size_t n);

/* "secrets":{...} members for summary.json (leading comma). */
void secrets_json(const struct secrets *s, struct strbuf *sb);

#endif
