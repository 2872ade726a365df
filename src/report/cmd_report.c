/*
 * runwarden report RUNDIR [--html FILE] [--github-summary FILE] [--junit FILE]
 * Reads a run's output directory and renders it for people: the terminal
 * summary always, plus the formats asked for.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "common/cli.h"
#include "common/util.h"
#include "report/report.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: runwarden report RUNDIR [--html FILE] [--github-summary FILE]\n"
		"                        [--junit FILE] [--quiet] [--max-events N]\n"
		"\n"
		"  --html FILE            one self-contained HTML page (process tree, filter by "
		"step)\n"
		"  --github-summary FILE  append job-summary Markdown to FILE and print ::error /\n"
		"                         ::warning workflow commands for denials and audits\n"
		"  --junit FILE           JUnit XML, one test case per destination or denial\n"
		"  --quiet                no terminal summary\n"
		"  --max-events N         refuse logs with more events (default %lld)\n",
		REPORT_MAX_EVENTS);
}

/* Writes FILE with one renderer; "a" appends (the job summary is shared by
 * every step of a job). */
static int render(const char *path, const char *mode, const struct report *r,
		  int (*fn)(const struct report *, FILE *))
{
	FILE *f = fopen(path, mode);
	int rc;

	if (!f) {
		rw_err("%s: %m", path);
		return -1;
	}
	rc = fn(r, f);
	if (fclose(f) != 0 || rc != 0) {
		rw_err("%s: write failed", path);
		return -1;
	}
	return 0;
}

static int github_md_only(const struct report *r, FILE *f)
{
	return report_github(r, f, NULL);
}

int cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"html", required_argument, NULL, 'H'},
	    {"github-summary", required_argument, NULL, 'g'},
	    {"junit", required_argument, NULL, 'j'},
	    {"max-events", required_argument, NULL, 'm'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *html = NULL, *gh = NULL, *junit = NULL;
	long long max_events = REPORT_MAX_EVENTS;
	bool quiet = false;
	struct report r;
	char err[512];
	int c, rc = 0;

	optind = 1;
	while ((c = cli_getopt("report", argc, argv, "qh", opts)) != -1) {
		uint64_t n;
		switch (c) {
		case 'H':
			html = optarg;
			break;
		case 'g':
			gh = optarg;
			break;
		case 'j':
			junit = optarg;
			break;
		case 'm':
			if (!parse_u64(optarg, 1, 1000000000, &n))
				return cli_usage(
				    "report", "--max-events wants a number from 1 to 1000000000");
			max_events = (long long)n;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return CLI_USAGE;
		}
	}
	if (optind != argc - 1)
		return cli_usage("report", optind == argc ? "no run directory given"
							  : "give exactly one run directory");
	if (report_load(&r, argv[optind], max_events, err, sizeof(err)) != 0) {
		rw_err("report: %s", err);
		report_free(&r);
		return 1;
	}
	if (html && render(html, "w", &r, report_html))
		rc = 1;
	if (junit && render(junit, "w", &r, report_junit))
		rc = 1;
	if (gh && render(gh, "a", &r, github_md_only))
		rc = 1;
	if (!quiet && report_text(&r, stdout))
		rc = 1;
	/* Workflow commands last, on stdout, where the runner reads them. */
	if (gh) {
		FILE *devnull = fopen("/dev/null", "we");
		if (devnull) {
			if (report_github(&r, devnull, stdout))
				rc = 1;
			fclose(devnull);
		}
	}
	fflush(stdout);
	report_free(&r);
	return rc;
}
