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

#define REPORT_MAX_VPROCS 16 /* processes named per violation row */

/* Event kinds the report reads, in the order they are counted and shown. */
#define REPORT_KINDS(X)                                                                            \
	X(RK_EXEC, "exec")                                                                         \
	X(RK_CONNECT, "connect")                                                                   \
	X(RK_DNS, "dns")                                                                           \
	X(RK_SOCKET, "socket")                                                                     \
	X(RK_FILE, "file")                                                                         \
	X(RK_EXIT, "exit")

enum report_kind {
#define RK_ENUM_(e, name) e,
	REPORT_KINDS(RK_ENUM_)
#undef RK_ENUM_
	    RK_COUNT
};
extern const char *const report_kind_names[RK_COUNT];

struct report {
	const char *dir;
	json_t *summary; /* object, or NULL when summary.json is missing */
	json_t *procs;	 /* processes in first-seen order (see load.c for fields) */
	json_t *dests;	 /* {proto,family,daddr,dport,host,verdict,step,count} */
	json_t *dns;	 /* {query,qtype,answers,verdict,step,count} */
	json_t *files;	 /* {path,count,processes:[{pid,exe}]} */
	/* The violation list every renderer shows: attempts with verdict deny, block or
	 * audit grouped by kind, verdict, step and what was attempted, each with its count
	 * and the processes that made it: {kind,verdict,step,<identity>,count,processes}.
	 * summary.json's "violations" when the run wrote it (the same list the terminal
	 * summary printed), else built from events.ndjson with the same grouping. */
	json_t *violations;
	long long n_violation_rows; /* rows, including any not listed */
	/* summary.json's findings (highest severity first, as the run listed them) and the
	 * lockdown a finding caused ({reason, kind, severity, enforced}), or NULL. */
	json_t *findings;
	json_t *lockdown;
	long long n_findings; /* listed and unlisted */
	json_t *steps;	      /* distinct step names seen, in order */
	json_t *notes;	      /* strings: what is missing or truncated */
	long long counts[RK_COUNT];
	long long n_events, n_denials, n_audits; /* attempts, not rows */
	bool fails_run;	  /* summary.json: the violations set the run's exit status */
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
/* What a violation row (or one event) attempted, one line: "connect tcp host:443 (addr)",
 * "dns name A", "socket family=ipv4 type=raw protocol=255". Not escaped. */
void report_what(const json_t *v, char *buf, size_t len);
/* " by exe [pid N], ... and K more" for a violation or file row. Not escaped. */
void report_who(const json_t *v, char *buf, size_t len);
/* One finding as one line: "high credential_sweep: ... [step s] (evidence: seq 12, 15)". */
void report_finding_line(const json_t *f, char *buf, size_t len);
/* The lockdown line every format puts first ("" when the run had none). */
void report_lockdown_line(const struct report *r, char *buf, size_t len);
/* "3 findings (1 high, 2 medium)." or "No findings." */
void report_findings_headline(const struct report *r, char *buf, size_t len);
/* Severity of a finding row at or above "high". */
bool report_finding_severe(const json_t *f);
/* The exit status the run gave itself when the summary says why (lockdown, violations), or -1. */
#define REPORT_EXIT_LOCKDOWN 86

/* One-line headline every format starts with, so they say the same thing. */
void report_headline(const struct report *r, char *buf, size_t len);
bool report_verdict_denied(const char *verdict);

#endif
