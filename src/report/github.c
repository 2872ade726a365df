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

static void annotate(FILE *cmds, const char *level, const char *title, const json_t *d)
{
	struct strbuf msg = STRBUF_INIT, line = STRBUF_INIT;
	char what[700], who[2048];

	report_what(d, what, sizeof(what));
	report_who(d, who, sizeof(who));
	sb_addf(&msg, "%s x%lld%s", what, jget_int(d, "count"), who);
	if (jget_str(d, "step"))
		sb_addf(&msg, " in step %s", jget_str(d, "step"));
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
	char headline[300], lockdown[1200];
	bool no_step = false;
	int skipped = 0;

	report_lockdown_line(r, lockdown, sizeof(lockdown));
	if (lockdown[0]) {
		fputs(":rotating_light: **", mdf);
		md(mdf, lockdown);
		fputs("**\n\n", mdf);
	}
	fputs("## runwarden\n\n", mdf);
	report_findings_headline(r, headline, sizeof(headline));
	fputs(json_array_size(r->findings) ? ":mag: **" : "", mdf);
	md(mdf, headline);
	fputs(json_array_size(r->findings) ? "**\n\n" : "\n\n", mdf);
	if (json_array_size(r->findings)) {
		fputs("### Findings\n\n| Severity | Finding | What | Process | Step | Evidence "
		      "(seq) |\n"
		      "|---|---|---|---|---|---|\n",
		      mdf);
		json_array_foreach(r->findings, i, v)
		{
			struct strbuf ev = STRBUF_INIT, who = STRBUF_INIT;
			json_t *e;
			size_t k;

			json_array_foreach(json_object_get(v, "evidence"), k, e)
			{
				if (k == 8) {
					sb_addstr(&ev, " ...");
					break;
				}
				sb_addf(&ev, "%s%lld", k ? " " : "",
					(long long)json_integer_value(e));
			}
			sb_addf(&who, "%s [pid %lld]", jget_str(v, "exe") ?: "?",
				jget_int(v, "pid"));
			fputs("| ", mdf);
			fputs(report_finding_severe(v) ? ":x: " : ":warning: ", mdf);
			md(mdf, jget_str(v, "severity"));
			fputs(" | ", mdf);
			md(mdf, jget_str(v, "kind"));
			fputs(" | ", mdf);
			md(mdf, jget_str(v, "description"));
			fputs(" | ", mdf);
			md(mdf, sb_str(&who));
			fputs(" | ", mdf);
			md(mdf, jget_str(v, "step"));
			fputs(" | ", mdf);
			md(mdf, sb_str(&ev));
			fputs(" |\n", mdf);
			sb_release(&ev);
			sb_release(&who);
		}
		if (r->n_findings > (long long)json_array_size(r->findings))
			fprintf(mdf, "\n%lld more findings not listed.\n",
				r->n_findings - (long long)json_array_size(r->findings));
		fputc('\n', mdf);
	}
	report_headline(r, headline, sizeof(headline));
	fputs(r->n_denials || r->fails_run ? ":x: **"
	      : r->n_audits		   ? ":warning: **"
					   : ":white_check_mark: **",
	      mdf);
	md(mdf, headline);
	fputs("**\n\n", mdf);
	json_array_foreach(r->notes, i, v)
	{
		fputs("> [!WARNING]\n> ", mdf);
		md(mdf, json_string_value(v));
		fputs("\n\n", mdf);
	}

	if (json_array_size(r->violations)) {
		fputs("### Denied\n\n| Verdict | What | Count | Processes | Step |\n"
		      "|---|---|---|---|---|\n",
		      mdf);
		for (int pass = 0; pass < 2; pass++) {
			json_array_foreach(r->violations, i, v)
			{
				char what[700], who[2048];

				if (report_verdict_denied(jget_str(v, "verdict")) != (pass == 0))
					continue;
				report_what(v, what, sizeof(what));
				report_who(v, who, sizeof(who));
				fputs("| ", mdf);
				md(mdf, jget_str(v, "verdict"));
				fputs(" | ", mdf);
				md(mdf, what);
				fprintf(mdf, " | %lld | ", jget_int(v, "count"));
				md(mdf, who[0] ? who + 4 : NULL); /* without " by " */
				fputs(" | ", mdf);
				md(mdf, jget_str(v, "step"));
				fputs(" |\n", mdf);
			}
		}
		if (r->n_violation_rows > (long long)json_array_size(r->violations))
			fprintf(mdf, "\n%lld more rows in summary.json.\n",
				r->n_violation_rows - (long long)json_array_size(r->violations));
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
		fputs("### Sensitive files\n\n| File | Result | Count | Processes |\n"
		      "|---|---|---|---|\n",
		      mdf);
		json_array_foreach(r->files, i, v)
		{
			const char *res = jget_str(v, "result");
			char who[2048];

			report_who(v, who, sizeof(who));
			fputs("| ", mdf);
			md(mdf, jget_str(v, "path"));
			fputs(" | ", mdf);
			md(mdf, res && strcmp(res, "ok") ? res : "opened");
			fprintf(mdf, " | %lld | ", jget_int(v, "count"));
			md(mdf, who[0] ? who + 4 : NULL);
			fputs(" |\n", mdf);
		}
		fputc('\n', mdf);
	}

	fprintf(mdf, "<details><summary>Run</summary>\n\n| | |\n|---|---|\n");
	fputs("| Events |", mdf);
	for (int k = 0; k < RK_COUNT; k++)
		fprintf(mdf, "%s %s %lld", k ? "," : "", report_kind_names[k], r->counts[k]);
	fputs(" |\n", mdf);
	if (s) {
		fputs("| Mode | ", mdf);
		md(mdf, jget_str(s, "mode"));
		fprintf(mdf, " |\n| Exit status | %lld |\n", jget_int(s, "exit_status"));
		if (r->lockdown && json_is_true(json_object_get(r->lockdown, "enforced")))
			fprintf(mdf, "| runwarden exit status | %d (lockdown) |\n",
				REPORT_EXIT_LOCKDOWN);
		else if (r->fails_run)
			fputs("| runwarden exit status | 1 (policy violations) |\n", mdf);
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

		if (lockdown[0]) {
			struct strbuf l = STRBUF_INIT;

			sb_addstr(&l, "::error title=runwarden lockdown::");
			cmd_escape(&l, lockdown, false);
			fprintf(cmds, "%s\n", sb_str(&l));
			sb_release(&l);
		}
		json_array_foreach(r->findings, i, v)
		{
			struct strbuf l = STRBUF_INIT;
			char line[1200];

			if (n++ >= MAX_ANNOTATION)
				continue;
			report_finding_line(v, line, sizeof(line));
			sb_addf(&l, "::%s title=", report_finding_severe(v) ? "error" : "warning");
			cmd_escape(&l, "runwarden finding", true);
			sb_addstr(&l, "::");
			cmd_escape(&l, line, false);
			fprintf(cmds, "%s\n", sb_str(&l));
			sb_release(&l);
		}
		for (int pass = 0; pass < 2; pass++) {
			json_array_foreach(r->violations, i, v)
			{
				bool denied = report_verdict_denied(jget_str(v, "verdict"));

				if (denied != (pass == 0) || n++ >= MAX_ANNOTATION)
					continue;
				annotate(cmds, denied ? "error" : "warning",
					 denied ? "runwarden: denied"
						: "runwarden: would be denied (audit)",
					 v);
			}
		}
		if (n > MAX_ANNOTATION)
			fprintf(cmds, "::warning title=runwarden::%d more; see the job summary\n",
				n - MAX_ANNOTATION);
	}
	json_decref(seen);
	return ferror(mdf) || (cmds && ferror(cmds)) ? -1 : 0;
}
