/* The PostgreSQL backend of the baseline store (libpq): a fleet of runners writes to one
 * server. Writers run serializable transactions; store.c retries the ones the server
 * refuses to serialise (SQLSTATE 40001, 40P01).
 *
 * libpq is loaded when a postgresql:// store is first opened, not linked: it brings TLS,
 * Kerberos and LDAP libraries with it, which no other use of this root process needs, and a
 * runner without libpq5 can still run everything else. */
#include "baseline/db.h"
#include "common/xalloc.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#define BL_LIBPQ "libpq.so.5"

/* The libpq functions used, by name: X(name). */
#define PQ_FUNCS(X)                                                                                \
	X(PQclear)                                                                                 \
	X(PQconnectdbParams)                                                                       \
	X(PQconninfoFree)                                                                          \
	X(PQconninfoParse)                                                                         \
	X(PQerrorMessage)                                                                          \
	X(PQexec)                                                                                  \
	X(PQexecParams)                                                                            \
	X(PQfinish)                                                                                \
	X(PQfreemem)                                                                               \
	X(PQgetisnull)                                                                             \
	X(PQgetvalue)                                                                              \
	X(PQnfields)                                                                               \
	X(PQntuples)                                                                               \
	X(PQresultErrorField)                                                                      \
	X(PQresultStatus)                                                                          \
	X(PQsetNoticeProcessor)                                                                    \
	X(PQstatus)

static struct {
#define PQ_PTR_(name) __typeof__(name) *name;
	PQ_FUNCS(PQ_PTR_)
#undef PQ_PTR_
} pq;

/* Loads libpq once; 0, or -1 with err filled. */
static int load_libpq(char *err, size_t errlen)
{
	static void *lib;
	void *h;

	if (lib)
		return 0;
	h = dlopen(BL_LIBPQ, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(err, errlen,
			 "--baseline postgresql://: cannot load " BL_LIBPQ
			 " (install libpq5): %.200s",
			 dlerror());
		return -1;
	}
#define PQ_SYM_(name)                                                                              \
	if (!(pq.name = (__typeof__(name) *)dlsym(h, #name))) {                                    \
		snprintf(err, errlen, BL_LIBPQ " has no %s", #name);                               \
		dlclose(h);                                                                        \
		return -1;                                                                         \
	}
	PQ_FUNCS(PQ_SYM_)
#undef PQ_SYM_
	lib = h;
	return 0;
}

/* An unreachable server must not hang a CI job for the kernel's TCP timeout. The URI's own
 * connect_timeout, when given, wins. */
#define BL_PG_CONNECT_TIMEOUT "10"

/* libpq's messages end in newlines and may span lines; ours are one line. */
static void one_line(char *dst, size_t len, const char *src)
{
	size_t j = 0;

	for (size_t i = 0; src && src[i] && j + 1 < len; i++) {
		char c = src[i] == '\n' || src[i] == '\r' || src[i] == '\t' ? ' ' : src[i];

		if (c == ' ' && (j == 0 || dst[j - 1] == ' '))
			continue;
		dst[j++] = c;
	}
	while (j && dst[j - 1] == ' ')
		j--;
	dst[j] = 0;
}

static int pg_classify(const PGresult *res)
{
	const char *state = res ? pq.PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (!state)
		return BL_ERR;
	if (!strcmp(state, "40001") || !strcmp(state, "40P01"))
		return BL_RETRY;
	if (!strcmp(state, "23505"))
		return BL_CONFLICT;
	return BL_ERR;
}

static int pg_exec(struct bl_db *db, const char *sql, int n, const char *const *params,
		   bl_row_fn fn, void *ctx)
{
	PGconn *c = db->h;
	/* Without parameters PQexec takes several statements (schema scripts). */
	PGresult *res =
	    n ? pq.PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0) : pq.PQexec(c, sql);
	ExecStatusType st = pq.PQresultStatus(res);
	int rc = BL_OK;

	if (st == PGRES_TUPLES_OK && fn) {
		int rows = pq.PQntuples(res), ncol = pq.PQnfields(res);
		const char **vals = xcalloc(ncol ? ncol : 1, sizeof(*vals));

		for (int r = 0; r < rows; r++) {
			for (int k = 0; k < ncol; k++)
				vals[k] =
				    pq.PQgetisnull(res, r, k) ? NULL : pq.PQgetvalue(res, r, k);
			if (fn(ctx, ncol, vals))
				break;
		}
		free(vals);
	} else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		const char *msg = res ? pq.PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

		one_line(db->err, sizeof(db->err), msg ? msg : pq.PQerrorMessage(c));
		rc = pq.PQstatus(c) == CONNECTION_OK ? pg_classify(res) : BL_ERR;
	}
	pq.PQclear(res);
	return rc;
}

static void pg_close(struct bl_db *db)
{
	pq.PQfinish(db->h);
	free(db);
}

static const struct bl_db_ops pg_ops = {.exec = pg_exec, .close = pg_close};

/* "NOTICE: relation already exists, skipping" is not for the job's log. */
static void quiet_notices(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* The URI without its password, for messages: postgresql://user@host:port/dbname. */
static int describe(const char *uri, char *out, size_t len, char *err, size_t errlen)
{
	char *perr = NULL;
	PQconninfoOption *opts = pq.PQconninfoParse(uri, &perr);
	const char *host = NULL, *port = NULL, *dbname = NULL, *user = NULL;
	bool password = false;

	if (!opts) {
		char line[300];

		one_line(line, sizeof(line), perr ? perr : "out of memory");
		snprintf(err, errlen, "--baseline: not a valid PostgreSQL URI: %s", line);
		pq.PQfreemem(perr);
		return -1;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val)
			continue;
		if (!strcmp(o->keyword, "host"))
			host = o->val;
		else if (!strcmp(o->keyword, "port"))
			port = o->val;
		else if (!strcmp(o->keyword, "dbname"))
			dbname = o->val;
		else if (!strcmp(o->keyword, "user"))
			user = o->val;
		else if (!strcmp(o->keyword, "password"))
			password = true;
	}
	/* Said, not refused: it works, and the operator may have no other way today. */
	if (password)
		fprintf(stderr,
			"runwarden: warning: the --baseline URI carries a password, which "
			"every process here can read in /proc/PID/cmdline; use ~/.pgpass or "
			"PGPASSFILE\n");
	snprintf(out, len, "postgresql://%.40s%s%.80s%s%.10s/%.60s", user ? user : "",
		 user ? "@" : "", host ? host : "", port ? ":" : "", port ? port : "",
		 dbname ? dbname : "");
	pq.PQconninfoFree(opts);
	return 0;
}

struct bl_db *bl_pg_open(const char *uri, char *err, size_t errlen)
{
	const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
	const char *vals[] = {BL_PG_CONNECT_TIMEOUT, "runwarden", uri, NULL};
	char where[256], line[300];
	struct bl_db *db;
	PGconn *c;

	if (load_libpq(err, errlen) || describe(uri, where, sizeof(where), err, errlen))
		return NULL;
	c = pq.PQconnectdbParams(keys, vals, 1);
	if (!c || pq.PQstatus(c) != CONNECTION_OK) {
		one_line(line, sizeof(line), c ? pq.PQerrorMessage(c) : "out of memory");
		snprintf(err, errlen, "baseline %s: cannot connect: %s", where, line);
		pq.PQfinish(c);
		return NULL;
	}
	pq.PQsetNoticeProcessor(c, quiet_notices, NULL);
	db = xcalloc(1, sizeof(*db));
	db->backend = BL_POSTGRES;
	db->ops = &pg_ops;
	db->h = c;
	snprintf(db->where, sizeof(db->where), "%s", where);
	return db;
}
