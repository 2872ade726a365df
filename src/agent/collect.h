/*
 * The ring-buffer consumer: decodes kernel records in ring order, attributes
 * them through the process table, writes one chained log line per event and
 * feeds the run's aggregates. Single-threaded; runs in the agent's loop.
 */
#ifndef RW_COLLECT_H
#define RW_COLLECT_H
#include <stdbool.h>
#include <stddef.h>

#include "agent/fileid.h"
#include "agent/proctab.h"
#include "agent/sensitive.h"
#include "agent/summary.h"
#include "common/strmap.h"
#include "evidence/evlog.h"

struct collector {
	struct evlog log;
	const struct sensitive_list *sens;
	const char *step;
	pid_t runner_pid;	 /* whole-job mode: the CI runner's worker */
	const char *ci_provider; /* for labelling the runner's control-plane hosts */
	int64_t mono_off;
	struct proctab procs;
	struct strmap dns_pending; /* "cookie:id" -> struct dns_pending */
	struct strmap hosts;	   /* address text -> host name it was resolved from */
	struct strmap redirected;  /* socket cookie -> resolver the job addressed (gate mode) */
	struct summary sum;
	struct strbuf body; /* reused for every line */
	/* The policy's judgement of a DNS name (NULL: no policy, all "allow"). */
	const char *(*dns_verdict)(const void *ctx, const char *qname);
	const void *dns_verdict_ctx;
	bool io_error;
	/* Watched files by identity: "dev:ino" -> the name it is watched as.
	 * watch_file puts one into the kernel's set (NULL: not armed). */
	struct strmap watched;
	int (*watch_file)(const void *ctx, uint32_t kdev, uint64_t ino);
	const void *watch_ctx;
	bool watched_full; /* said once: the kernel's set is full */
	struct exe_cache exes;
};

/* Adds a watched file (found at start, or opened under a watched name). */
void collector_watch(struct collector *c, const char *path, uint32_t kdev, uint64_t ino);

/* Takes log_fd, the new events.ndjson (see evlog_open_fd). */
int collector_init(struct collector *c, int log_fd, const struct sensitive_list *sens,
		   const char *step);
/* ring_buffer_sample_fn */
int collector_handle(void *ctx, void *data, size_t len);
/* Logs DNS questions that never got an answer. */
void collector_finish(struct collector *c);
void collector_free(struct collector *c);

/* Renders helpers, exposed for unit tests. */
void render_open_flags(struct strbuf *sb, unsigned flags);
void render_result(struct strbuf *sb, int result);
void join_components(struct strbuf *sb, const char *data, size_t len);
void render_argv(struct strbuf *sb, const char *data, size_t len);

#endif
