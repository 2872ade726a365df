/*
 * GitHub output: the job summary (Markdown for $GITHUB_STEP_SUMMARY) and
 * ::error / ::warning workflow commands for denials and audits.
 *
 * Recorded strings are workload-controlled, so each one is escaped for where
 * it lands: Markdown table cells, code spans, and workflow command data
 * (%, CR, LF) or properties (also ':' and ',').
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ci/detect.h"
#include "common/strbuf.h"
#include "report/report.h"

#define MD_MAX	       300
#define MAX_ANNOTATION 50 /* GitHub shows only a few per step anyway */

/* Markdown-inert text: labels are cleaned first (no newlines), then every
 * ASCII punctuation that Markdown or HTML could act on is escaped. */
static void md(FILE *out, const char *s)
{
	char *c;

	if (!s) {
		fputs("-", out);
		return;
	}
	c = ci_clean_label(s, strlen(s), MD_MAX);
	for (const char *p = c; *p; p++) {
		switch (*p) {
		case '<':
			fputs("&lt;", out);
			break;
		case '>':
			fputs("&gt;", out);
			break;
		case '&':
			fputs("&amp;", out);
			break;
		case '|':
			fputs("\\|", out);
			break;
		default:
			if (ispunct((unsigned char)*p) && *p != '.' && *p != '/' && *p != ':' &&
			    *p != '-')
				fputc('\\', out);
			fputc(*p, out);
		}
	}
	free(c);
}

/* Workflow command escaping (actions/toolkit escapeData / escapeProperty). */
static void cmd_escape(struct strbuf *sb, const char *s, bool property)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '%':
			sb_addstr(sb, "%25");
			break;
		case '\r':
			sb_addstr(sb, "%0D");
			break;
		case '\n':
			sb_addstr(sb, "%0A");
			break;
		case ':':
			sb_addstr(sb, property ? "%3A" : ":");
			break;
		case ',':
			sb_addstr(sb, property ? "%2C" : ",");
			break;
		default:
			/* other controls (ESC and friends) would reach the log viewer */
			sb_addch(sb, (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s);
		}
	}
}

static void describe(struct strbuf *sb, const json_t *d)
{
	const char *kind = jget_str(d, "kind");
	char dest[600];

	if (kind && !strcmp(kind, "dns")) {
		sb_addf(sb, "DNS query %s", jget_str(d, "query") ?: "?");
	} else {
		report_dest_name(d, dest, sizeof(dest));
		sb_addf(sb, "connection to %s", dest);
		if (jget_str(d, "host") && jget_str(d, "daddr"))
			sb_addf(sb, " (%s)", jget_str(d, "daddr"));
		if (jget_str(d, "proto"))
			sb_addf(sb, " %s", jget_str(d, "proto"));
	}
	if (jget_str(d, "exe") || jget_str(d, "comm"))
		sb_addf(sb, " by %s", jget_str(d, "exe") ?: jget_str(d, "comm"));
	if (jget_int(d, "pid") >= 0)
		sb_addf(sb, " (pid %lld)", jget_int(d, "pid"));
	if (jget_str(d, "step"))
		sb_addf(sb, " in step %s", jget_str(d, "step"));
}

static void annotate(FILE *cmds, const char *level, const char *title, const json_t *d)
{
	struct strbuf msg = STRBUF_INIT, line = STRBUF_INIT;

	describe(&msg, d);
	sb_addf(&line, "::%s title=", level);
	cmd_escape(&line, title, true);
	sb_addstr(&line, "::");
	cmd_escape(&line, sb_str(&msg), false);
	fprintf(cmds, "%s\n", sb_str(&line));
	sb_release(&msg);
	sb_release(&line);
}

/* A name we can paste into a YAML block and a policy: hostname or address
 * characters only, so nothing recorded can break out of the code fence. */
static bool pasteable(const char *s)
{
	if (!s || !*s || strlen(s) > 253)
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '.' || *s == '-' || *s == ':' ||
		      *s == '_'))
			return false;
	return true;
}

static void dest_table(FILE *md_out, const struct report *r, const char *step, bool all_steps)
{
	json_t *v;
	size_t i;

	fputs("| Verdict | Destination | Address | Proto | Count |\n|---|---|---|---|---|\n",
	      md_out);
	for (int pass = 0; pass < 3; pass++) {
		json_array_foreach(r->dests, i, v)
		{
			const char *verdict = jget_str(v, "verdict"), *st = jget_str(v, "step");
			int rank = report_verdict_denied(verdict)	  ? 0
				   : verdict && !strcmp(verdict, "audit") ? 1
									  : 2;
			char dest[600];

			if (rank != pass)
				continue;
			// cppcheck-suppress nullPointerRedundantCheck ; st is checked before use
			if (!all_steps && !(step ? st && !strcmp(st, step) : !st))
				continue;
			report_dest_name(v, dest, sizeof(dest));
			fputs("| ", md_out);
			fputs(rank == 0 ? ":x: " : rank == 1 ? ":warning: " : "", md_out);
			md(md_out, verdict);
			fputs(" | ", md_out);
			md(md_out, dest);
			fputs(" | ", md_out);
			md(md_out, jget_str(v, "daddr"));
			fputs(" | ", md_out);
			md(md_out, jget_str(v, "proto"));
			fprintf(md_out, " | %lld |\n", jget_int(v, "count"));
		}
	}
	fputc('\n', md_out);
}

int report_github(const struct report *r, FILE *mdf, FILE *cmds)
{
	const json_t *s = r->summary;
	json_t *v, *seen = json_object();
	size_t i;
	bool no_step = false;
	int skipped = 0;

	fputs("## runwarden\n\n", mdf);
	if (r->n_denials)
		fprintf(mdf, ":x: **%lld denied** connection%s or name%s.\n\n", r->n_denials,
			r->n_denials == 1 ? "" : "s", r->n_denials == 1 ? "" : "s");
	else if (r->n_audits)
		fprintf(mdf, ":warning: **%lld** would be denied (audit mode).\n\n", r->n_audits);
	else
		fputs(":white_check_mark: No denials.\n\n", mdf);
	json_array_foreach(r->notes, i, v)
	{
		fputs("> [!WARNING]\n> ", mdf);
		md(mdf, json_string_value(v));
		fputs("\n\n", mdf);
	}

	if (json_array_size(r->denials)) {
		fputs("### Denied\n\n| Step | Process | What | Verdict |\n|---|---|---|---|\n",
		      mdf);
		json_array_foreach(r->denials, i, v)
		{
			struct strbuf what = STRBUF_INIT;
			char dest[600];

			if (jget_str(v, "kind") && !strcmp(jget_str(v, "kind"), "dns")) {
				sb_addf(&what, "DNS %s", jget_str(v, "query") ?: "?");
			} else {
				report_dest_name(v, dest, sizeof(dest));
				sb_addf(&what, "%s %s", jget_str(v, "proto") ?: "", dest);
			}
			fputs("| ", mdf);
			md(mdf, jget_str(v, "step"));
			fputs(" | ", mdf);
			md(mdf, jget_str(v, "exe") ?: jget_str(v, "comm"));
			fprintf(mdf, " (pid %lld) | ", jget_int(v, "pid"));
			md(mdf, sb_str(&what));
			fputs(" | ", mdf);
			md(mdf, jget_str(v, "verdict"));
			fputs(" |\n", mdf);
			sb_release(&what);
		}
		fputc('\n', mdf);
	}

	fputs("### Destinations by step\n\n", mdf);
	json_array_foreach(r->dests, i, v) if (!jget_str(v, "step")) no_step = true;
	json_array_foreach(r->steps, i, v)
	{
		fputs("#### Step ", mdf);
		md(mdf, json_string_value(v));
		fputs("\n\n", mdf);
		dest_table(mdf, r, json_string_value(v), false);
	}
	if (no_step) {
		fputs(json_array_size(r->steps) ? "#### No step recorded\n\n" : "", mdf);
		dest_table(mdf, r, NULL, false);
	}
	if (!json_array_size(r->dests))
		fputs("No connections were recorded.\n\n", mdf);

	/* Everything allowed or audited, once per name and port; denials stay out
	 * so pasting the list never silently allows what policy stopped. */
	fputs("### Suggested allow list\n\n```yaml\nallowed-endpoints: |\n", mdf);
	json_array_foreach(r->dests, i, v)
	{
		const char *host = jget_str(v, "host"), *name = host ? host : jget_str(v, "daddr");
		char key[600];

		if (report_verdict_denied(jget_str(v, "verdict")))
			continue;
		if (!pasteable(name)) {
			skipped++;
			continue;
		}
		if (jget_int(v, "dport") >= 0)
			snprintf(key, sizeof(key), strchr(name, ':') ? "[%s]:%lld" : "%s:%lld",
				 name, jget_int(v, "dport"));
		else
			snprintf(key, sizeof(key), "%s", name);
		if (json_object_get(seen, key))
			continue;
		json_object_set_new(seen, key, json_true());
		fprintf(mdf, "  %s\n", key);
	}
	fputs("```\n\n", mdf);
	if (r->n_denials)
		fputs("Denied destinations are left out; add one only if the job needs it.\n\n",
		      mdf);
	if (skipped)
		fprintf(mdf, "%d destination%s with unusual names left out.\n\n", skipped,
			skipped == 1 ? "" : "s");

	if (json_array_size(r->files)) {
		fputs("### Sensitive files\n\n| File | Opens | Processes |\n|---|---|---|\n", mdf);
		json_array_foreach(r->files, i, v)
		{
			json_t *pp;
			size_t j;
			fputs("| ", mdf);
			md(mdf, jget_str(v, "path"));
			fprintf(mdf, " | %lld | ", jget_int(v, "count"));
			json_array_foreach(json_object_get(v, "processes"), j, pp)
			{
				if (j)
					fputs(", ", mdf);
				md(mdf, jget_str(pp, "exe"));
			}
			fputs(" |\n", mdf);
		}
		fputc('\n', mdf);
	}

	fprintf(mdf, "<details><summary>Run</summary>\n\n| | |\n|---|---|\n");
	fprintf(mdf, "| Events | exec %lld, connect %lld, dns %lld, file %lld, exit %lld |\n",
		r->counts[RK_EXEC], r->counts[RK_CONNECT], r->counts[RK_DNS], r->counts[RK_FILE],
		r->counts[RK_EXIT]);
	if (s) {
		fputs("| Mode | ", mdf);
		md(mdf, jget_str(s, "mode"));
		fprintf(mdf, " |\n| Exit status | %lld |\n", jget_int(s, "exit_status"));
		fprintf(mdf, "| Complete | %s |\n",
			json_is_false(json_object_get(s, "complete")) ? "no" : "yes");
		fprintf(mdf, "| Events lost | %lld |\n",
			jget_int(json_object_get(s, "events_lost"), "total") > 0
			    ? jget_int(json_object_get(s, "events_lost"), "total")
			    : 0);
		json_array_foreach(json_object_get(s, "missing_hooks"), i, v)
		{
			fputs("| Missing hook | ", mdf);
			md(mdf, jget_str(v, "hook"));
			fputs(": ", mdf);
			md(mdf, jget_str(v, "reason"));
			fputs(" |\n", mdf);
		}
	}
	fputs("\n</details>\n\n", mdf);

	if (cmds) {
		int n = 0;
		json_array_foreach(r->denials, i, v) if (n++ < MAX_ANNOTATION)
		    annotate(cmds, "error", "runwarden: denied", v);
		json_array_foreach(r->audits, i, v) if (n++ < MAX_ANNOTATION)
		    annotate(cmds, "warning", "runwarden: would be denied (audit)", v);
		if (n > MAX_ANNOTATION)
			fprintf(cmds, "::warning title=runwarden::%d more; see the job summary\n",
				n - MAX_ANNOTATION);
	}
	json_decref(seen);
	return ferror(mdf) || (cmds && ferror(cmds)) ? -1 : 0;
}
