/*
 * A run's output directory (summary.json + events.ndjson) read back into one
 * model that every report format renders: terminal, GitHub job summary and
 * workflow commands, JUnit XML, and the self-contained HTML page.
 *
 * All strings in the model are as the run recorded them (valid UTF-8, lone
 * surrogates already U+FFFD): each renderer escapes for its own format.
 */
#ifndef RW_REPORT_H
#define RW_REPORT_H
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#define REPORT_MAX_LINE	    (1u << 20) /* bytes per events.ndjson line */
#define REPORT_MAX_EVENTS   2000000ll  /* default; --max-events changes it */
#define REPORT_MAX_SUMMARY  (64u << 20)
#define REPORT_MAX_PROCS    50000
#define REPORT_MAX_PER_PROC 200	   /* connections, names, files listed per process */
#define REPORT_MAX_ITEMS    200000 /* ... all processes together */
#define REPORT_MAX_KEYS	    20000  /* distinct destinations, names, files */
#define REPORT_MAX_DENIALS  1000   /* listed; all are counted */

enum report_kind { RK_EXEC, RK_CONNECT, RK_DNS, RK_FILE, RK_EXIT, RK_COUNT };

struct report {
	const char *dir;
	json_t *summary; /* object, or NULL when summary.json is missing */
	json_t *procs;	 /* processes in first-seen order (see load.c for fields) */
	json_t *dests;	 /* {proto,family,daddr,dport,host,verdict,step,count} */
	json_t *dns;	 /* {query,qtype,answers,verdict,step,count} */
	json_t *files;	 /* {path,count,processes:[{pid,exe}]} */
	json_t *denials; /* connect/dns events with verdict deny or block */
	json_t *audits;	 /* ... with verdict audit */
	json_t *steps;	 /* distinct step names seen, in order */
	json_t *notes;	 /* strings: what is missing or truncated */
	long long counts[RK_COUNT];
	long long n_events, n_denials, n_audits;
	bool have_events; /* events.ndjson was there */
	bool closed;	  /* ... and ended with its "close" record */
};

/* Loads dir. On failure returns -1 with a one-line reason in err. */
int report_load(struct report *r, const char *dir, long long max_events, char *err, size_t errlen);
void report_free(struct report *r);

/* Convenience accessors: NULL / -1 when absent or of another type. */
const char *jget_str(const json_t *o, const char *key);
long long jget_int(const json_t *o, const char *key);

/* Renderers; each returns 0, or -1 on a write error. */
int report_text(const struct report *r, FILE *out);
int report_github(const struct report *r, FILE *md, FILE *cmds);
int report_junit(const struct report *r, FILE *out);
int report_html(const struct report *r, FILE *out);

/* Shared by the renderers: host (or address) and port as people read them. */
void report_dest_name(const json_t *d, char *buf, size_t len);
bool report_verdict_denied(const char *verdict);

#endif
