/*
 * JUnit XML for GitLab and Jenkins test-report views: one test case per
 * destination (as a policy rule would name it) and one per denied DNS name;
 * denials are failures, audits pass with a note. Everything recorded is
 * XML-escaped, and characters XML 1.0 forbids are dropped.
 */
#include <stdint.h>
#include <string.h>

#include "report/report.h"

/* Length of the UTF-8 sequence at p and its code point (input is valid UTF-8
 * from jansson; a stray byte is treated as one forbidden character). */
static size_t utf8_next(const unsigned char *p, uint32_t *cp)
{
	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if ((p[0] & 0xe0) == 0xc0 && (p[1] & 0xc0) == 0x80) {
		*cp = ((uint32_t)(p[0] & 0x1f) << 6) | (p[1] & 0x3f);
		return 2;
	}
	if ((p[0] & 0xf0) == 0xe0 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80) {
		*cp = ((uint32_t)(p[0] & 0x0f) << 12) | ((uint32_t)(p[1] & 0x3f) << 6) |
		      (p[2] & 0x3f);
		return 3;
	}
	if ((p[0] & 0xf8) == 0xf0 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80 &&
	    (p[3] & 0xc0) == 0x80) {
		*cp = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3f) << 12) |
		      ((uint32_t)(p[2] & 0x3f) << 6) | (p[3] & 0x3f);
		return 4;
	}
	*cp = 0xfffe; /* forbidden: dropped */
	return 1;
}

static bool xml_allowed(uint32_t c)
{
	return c == 0x9 || c == 0xa || c == 0xd || (c >= 0x20 && c <= 0xd7ff) ||
	       (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff);
}

static void xml(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	while (*p) {
		uint32_t cp;
		size_t n = utf8_next(p, &cp);

		if (!xml_allowed(cp)) {
			p += n;
			continue;
		}
		switch (cp) {
		case '&':
			fputs("&amp;", out);
			break;
		case '<':
			fputs("&lt;", out);
			break;
		case '>':
			fputs("&gt;", out);
			break;
		case '"':
			fputs("&quot;", out);
			break;
		case '\'':
			fputs("&apos;", out);
			break;
		/* attribute values normalise raw whitespace away: keep it */
		case '\n':
			fputs("&#10;", out);
			break;
		case '\r':
			fputs("&#13;", out);
			break;
		case '\t':
			fputs("&#9;", out);
			break;
		default:
			fwrite(p, 1, n, out);
		}
		p += n;
	}
}

/* A row fails the test run when the run failed on it: denials always, would-be
 * denials when the policy made them fail the run (fail_on_violation). */
static bool row_fails(const struct report *r, const json_t *v)
{
	return report_verdict_denied(jget_str(v, "verdict")) || r->fails_run;
}

/* The finding that ended the job fails; the others are reported, since they did not set the
 * run's exit status. */
static bool finding_fails(const struct report *r, const json_t *f)
{
	return r->lockdown && json_is_true(json_object_get(r->lockdown, "enforced")) &&
	       jget_str(f, "kind") && jget_str(r->lockdown, "kind") &&
	       !strcmp(jget_str(f, "kind"), jget_str(r->lockdown, "kind")) &&
	       jget_int(f, "pid") == jget_int(r->lockdown, "pid");
}

static long long finding_failures(const struct report *r)
{
	long long n = 0;
	json_t *v;
	size_t i;

	json_array_foreach(r->findings, i, v) n += finding_fails(r, v);
	return n;
}

static void junit_findings(const struct report *r, FILE *out)
{
	long long failures = 0;
	json_t *v;
	size_t i;
	char line[1200];

	json_array_foreach(r->findings, i, v) failures += finding_fails(r, v);
	fprintf(out,
		"  <testsuite name=\"runwarden findings\" tests=\"%zu\" failures=\"%lld\" "
		"errors=\"0\" skipped=\"0\">\n",
		json_array_size(r->findings), failures);
	json_array_foreach(r->findings, i, v)
	{
		report_finding_line(v, line, sizeof(line));
		fputs("    <testcase classname=\"runwarden.findings\" name=\"", out);
		xml(out, jget_str(v, "severity"));
		fputc(' ', out);
		xml(out, jget_str(v, "kind"));
		fputs(": ", out);
		xml(out, jget_str(v, "description"));
		fputs("\">\n", out);
		if (finding_fails(r, v)) {
			fputs("      <failure type=\"lockdown\" message=\"", out);
			xml(out, jget_str(r->lockdown, "reason"));
			fputs("\">", out);
			xml(out, line);
			fputs("</failure>\n", out);
		} else {
			fputs("      <system-out>", out);
			xml(out, line);
			fputs("</system-out>\n", out);
		}
		fputs("    </testcase>\n", out);
	}
	fputs("  </testsuite>\n", out);
}

int report_junit(const struct report *r, FILE *out)
{
	long long tests = 0, failures = 0;
	json_t *v;
	size_t i;

	/* Allowed destinations pass; every violation row is its own case. */
	json_array_foreach(r->dests, i, v) tests +=
	    !report_verdict_denied(jget_str(v, "verdict")) &&
	    strcmp(jget_str(v, "verdict") ?: "", "audit");
	json_array_foreach(r->violations, i, v)
	{
		tests++;
		failures += row_fails(r, v);
	}

	json_array_foreach(r->findings, i, v)
	{
		tests++;
		failures += finding_fails(r, v);
	}
	fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	fprintf(out,
		"<testsuites name=\"runwarden\" tests=\"%lld\" failures=\"%lld\" errors=\"0\">\n",
		tests, failures);
	if (json_array_size(r->findings))
		junit_findings(r, out);
	fprintf(out,
		"  <testsuite name=\"runwarden egress\" tests=\"%lld\" failures=\"%lld\" "
		"errors=\"0\" skipped=\"0\"",
		tests - (long long)json_array_size(r->findings), failures - finding_failures(r));
	if (r->summary && jget_str(r->summary, "started_at")) {
		fputs(" timestamp=\"", out);
		xml(out, jget_str(r->summary, "started_at"));
		fputc('"', out);
	}
	fputs(">\n", out);

	json_array_foreach(r->violations, i, v)
	{
		const char *verdict = jget_str(v, "verdict");
		char what[700], who[2048];

		report_what(v, what, sizeof(what));
		report_who(v, who, sizeof(who));
		fputs("    <testcase classname=\"runwarden.", out);
		xml(out, jget_str(v, "step") ?: "job");
		fputs("\" name=\"", out);
		xml(out, what);
		fputs("\">\n", out);
		if (row_fails(r, v)) {
			fputs("      <failure type=\"", out);
			xml(out, verdict);
			fputs("\" message=\"", out);
			xml(out, verdict);
			fputs(": ", out);
			xml(out, what);
			fprintf(out, "\">%lld attempt(s)", jget_int(v, "count"));
			xml(out, who);
			fputs(", verdict ", out);
			xml(out, verdict);
			fputs(".</failure>\n", out);
		} else {
			fprintf(out, "      <system-out>%lld attempt(s)", jget_int(v, "count"));
			xml(out, who);
			fputs(" would be denied in enforce mode</system-out>\n", out);
		}
		fputs("    </testcase>\n", out);
	}
	json_array_foreach(r->dests, i, v)
	{
		const char *verdict = jget_str(v, "verdict");
		char dest[600];

		if (report_verdict_denied(verdict) || (verdict && !strcmp(verdict, "audit")))
			continue; /* a violation row above */
		report_dest_name(v, dest, sizeof(dest));
		fputs("    <testcase classname=\"runwarden.", out);
		xml(out, jget_str(v, "step") ?: "job");
		fputs("\" name=\"", out);
		xml(out, jget_str(v, "proto") ?: "?");
		fputc(' ', out);
		xml(out, dest);
		fprintf(out, "\">\n      <system-out>%lld connection(s), verdict ",
			jget_int(v, "count"));
		xml(out, verdict ?: "none");
		fputs("</system-out>\n    </testcase>\n", out);
	}
	fputs("  </testsuite>\n</testsuites>\n", out);
	return ferror(out) ? -1 : 0;
}
