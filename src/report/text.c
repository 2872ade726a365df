/*
 * The terminal summary: denials first, then what ran and where it went.
 * Every recorded string is passed through ci_clean_label() so a hostile
 * argv or host cannot move the cursor, recolour the terminal or fake a line.
 */
#include <stdlib.h>
#include <string.h>

#include "ci/detect.h"
#include "report/report.h"

#define TERM_MAX 512

/* Prints s cleaned for a terminal; "-" for NULL. */
static void put(FILE *out, const char *s)
{
	char *c;

	if (!s) {
		fputs("-", out);
		return;
	}
	c = ci_clean_label(s, strlen(s), TERM_MAX);
	fputs(c, out);
	free(c);
}

static void put_command(FILE *out, const json_t *cmd)
{
	size_t i;
	json_t *a;

	json_array_foreach(cmd, i, a)
	{
		if (i)
			fputc(' ', out);
		put(out, json_string_value(a) ? json_string_value(a) : "?");
	}
}

int report_text(const struct report *r, FILE *out)
{
	const json_t *s = r->summary;
	json_t *v;
	size_t i;
	char line[1200];

	/* The reason a finding ended the job comes before anything else. */
	report_lockdown_line(r, line, sizeof(line));
	if (line[0]) {
		put(out, line);
		fputc('\n', out);
	}
	fputs("runwarden report: ", out);
	put(out, r->dir);
	fputc('\n', out);
	if (s) {
		json_t *ci = json_object_get(s, "ci");

		fputs("  command: ", out);
		put_command(out, json_object_get(s, "command"));
		fputs("\n  mode: ", out);
		put(out, jget_str(s, "mode"));
		if (jget_int(s, "exit_status") >= 0)
			fprintf(out, "   exit status: %lld", jget_int(s, "exit_status"));
		if (r->lockdown && json_is_true(json_object_get(r->lockdown, "enforced")))
			fprintf(out, "   runwarden exit status: %d (lockdown)",
				REPORT_EXIT_LOCKDOWN);
		else if (r->fails_run)
			fputs("   runwarden exit status: 1 (policy violations)", out);
		if (json_is_number(json_object_get(s, "duration_s")))
			fprintf(out, "   duration: %.1fs",
				json_number_value(json_object_get(s, "duration_s")));
		fprintf(out, "   complete: %s\n",
			json_is_false(json_object_get(s, "complete")) ? "NO" : "yes");
		if (jget_str(ci, "provider")) {
			fputs("  ci: ", out);
			put(out, jget_str(ci, "provider"));
			fputs(" ", out);
			put(out, jget_str(ci, "repository"));
			fputs(" run ", out);
			put(out, jget_str(ci, "run_id"));
			fputs(" job ", out);
			put(out, jget_str(ci, "job"));
			fputc('\n', out);
		}
	}
	json_array_foreach(r->notes, i, v)
	{
		fputs("  note: ", out);
		put(out, json_string_value(v));
		fputc('\n', out);
	}

	/* Findings lead: they are the conclusions, the rest is what they rest on. */
	report_findings_headline(r, line, sizeof(line));
	fputs("\n", out);
	put(out, line);
	fputc('\n', out);
	json_array_foreach(r->findings, i, v)
	{
		report_finding_line(v, line, sizeof(line));
		fputs("  ", out);
		put(out, line);
		fputc('\n', out);
	}
	if (r->n_findings > (long long)json_array_size(r->findings))
		fprintf(out, "  ... and %lld more findings not listed\n",
			r->n_findings - (long long)json_array_size(r->findings));

	report_headline(r, line, sizeof(line));
	fputs("\n", out);
	put(out, line);
	fputc('\n', out);
	/* Denied rows first, then would-be denials: the list the run counted. */
	for (int pass = 0; pass < 2; pass++) {
		json_array_foreach(r->violations, i, v)
		{
			char what[700], who[2048];

			if (report_verdict_denied(jget_str(v, "verdict")) != (pass == 0))
				continue;
			report_what(v, what, sizeof(what));
			report_who(v, who, sizeof(who));
			fputs("  ", out);
			put(out, pass == 0 ? "DENIED" : "would be denied");
			fputs(" (", out);
			put(out, jget_str(v, "verdict"));
			fputs(") ", out);
			put(out, what);
			fprintf(out, "  x%lld", jget_int(v, "count"));
			put(out, who);
			if (jget_str(v, "step")) {
				fputs(" step ", out);
				put(out, jget_str(v, "step"));
			}
			fputc('\n', out);
		}
	}
	if (r->n_violation_rows > (long long)json_array_size(r->violations))
		fprintf(out, "  ... and %lld more kinds of attempt\n",
			r->n_violation_rows - (long long)json_array_size(r->violations));

	fputs("\nevents:", out);
	for (int k = 0; k < RK_COUNT; k++)
		fprintf(out, " %s %lld%s", report_kind_names[k], r->counts[k],
			k + 1 < RK_COUNT ? "," : "\n");
	if (s) {
		json_t *lost = json_object_get(s, "events_lost");
		if (jget_int(lost, "total") > 0) {
			const char *lk[] = {"exec", "fork", "exit", "connect", "dns", "file"};
			fprintf(out, "EVENTS LOST: %lld (", jget_int(lost, "total"));
			for (size_t k = 0; k < sizeof(lk) / sizeof(lk[0]); k++)
				fprintf(out, "%s %lld%s", lk[k],
					jget_int(lost, lk[k]) > 0 ? jget_int(lost, lk[k]) : 0,
					k + 1 < sizeof(lk) / sizeof(lk[0]) ? ", " : ")\n");
		}
		json_array_foreach(json_object_get(s, "missing_hooks"), i, v)
		{
			fputs("missing hook: ", out);
			put(out, jget_str(v, "hook"));
			fputs(" (", out);
			put(out, jget_str(v, "reason"));
			fputs(")\n", out);
		}
	}

	/* Denied destinations first, then the rest, as recorded. */
	fprintf(out, "\ndestinations (%zu):\n", json_array_size(r->dests));
	for (int pass = 0; pass < 2; pass++) {
		json_array_foreach(r->dests, i, v)
		{
			char dest[600];
			if (report_verdict_denied(jget_str(v, "verdict")) != (pass == 0))
				continue;
			report_dest_name(v, dest, sizeof(dest));
			fputs("  ", out);
			put(out, jget_str(v, "verdict"));
			fputs("\t", out);
			put(out, jget_str(v, "proto"));
			fputs("\t", out);
			put(out, dest);
			if (jget_str(v, "host") && jget_str(v, "daddr")) {
				fputs(" (", out);
				put(out, jget_str(v, "daddr"));
				fputs(")", out);
			}
			fprintf(out, "  x%lld", jget_int(v, "count"));
			if (jget_str(v, "step")) {
				fputs("  step ", out);
				put(out, jget_str(v, "step"));
			}
			fputc('\n', out);
		}
	}
	if (json_array_size(r->dns)) {
		fprintf(out, "\nDNS names (%zu):\n", json_array_size(r->dns));
		json_array_foreach(r->dns, i, v)
		{
			fputs("  ", out);
			put(out, jget_str(v, "query"));
			fputs(" ", out);
			put(out, jget_str(v, "qtype"));
			if (jget_str(v, "verdict")) {
				fputs(" ", out);
				put(out, jget_str(v, "verdict"));
			}
			fprintf(out, "  x%lld\n", jget_int(v, "count"));
		}
	}
	if (json_array_size(r->files)) {
		fputs("\nsensitive files:\n", out);
		json_array_foreach(r->files, i, v)
		{
			char who[2048];
			const char *res = jget_str(v, "result");

			report_who(v, who, sizeof(who));
			fputs("  ", out);
			put(out, jget_str(v, "path"));
			if (res && strcmp(res, "ok")) {
				fputs("  attempted, failed with ", out);
				put(out, res);
				fprintf(out, ": x%lld", jget_int(v, "count"));
			} else {
				fprintf(out, "  opened x%lld", jget_int(v, "count"));
			}
			put(out, who);
			fputc('\n', out);
		}
	}
	if (s && json_array_size(json_object_get(s, "leftovers"))) {
		fputs("\nprocesses left running after the job:\n", out);
		json_array_foreach(json_object_get(s, "leftovers"), i, v)
		{
			fprintf(out, "  [pid %lld] ", jget_int(v, "pid"));
			put(out, jget_str(v, "cmdline"));
			fputc('\n', out);
		}
	}
	return ferror(out) ? -1 : 0;
}
