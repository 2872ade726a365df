/*
 * `runwarden baseline add|show|prune|export`: the store of finished runs that first-seen
 * results are judged against (docs/baseline.md).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baseline/baseline.h"
#include "baseline/store.h"
#include "cmds.h"
#include "common/cli.h"
#include "common/util.h"

static const char usage_text[] =
    "usage: runwarden baseline add RUNDIR... [--repo R --workflow W --job J --step S]\n"
    "       runwarden baseline show [--repo R] [--workflow W] [--job J] [--step S]\n"
    "       runwarden baseline prune --keep N | --older-than DAYS\n"
    "       runwarden baseline export [--repo R] [--workflow W] [--job J]\n"
    "\n"
    "Keeps finished runs by repository, workflow/job and step, and marks what a run did\n"
    "that earlier runs of its job never did (first seen: destinations, executables, DNS\n"
    "parent domains).\n"
    "\n"
    "  --baseline STORE   a SQLite file (default " BL_DEFAULT_PATH ")\n"
    "                     or a postgresql://user@host/db URI (password: ~/.pgpass or\n"
    "                     PGPASSFILE, never in the URI, which every process can read)\n"
    "  --repo, --workflow, --job\n"
    "                     the key; add takes them from the run's CI context unless given\n"
    "  --step S           add: the step of events without one; show: only this step\n"
    "  --min-runs N       add: runs of a step before a first-seen result is medium\n"
    "                     rather than info (default 5)\n"
    "  --keep N           prune: keep the N newest runs of each key\n"
    "  --older-than DAYS  prune: remove runs added more than DAYS days ago\n";

struct bl_cli {
	const char *spec;
	struct bl_filter f;
	uint64_t min_runs, keep, older_days;
	bool keep_set, older_set;
	bool must_exist; /* reading or pruning: a missing store is a mistake, not a new one */
};

static int parse(const char *cmd, int argc, char **argv, struct bl_cli *c)
{
	enum { O_STORE = 1, O_REPO, O_WORKFLOW, O_JOB, O_STEP, O_MIN, O_KEEP, O_OLDER, O_HELP };
	static const struct option opts[] = {
	    {"baseline", required_argument, 0, O_STORE},
	    {"repo", required_argument, 0, O_REPO},
	    {"workflow", required_argument, 0, O_WORKFLOW},
	    {"job", required_argument, 0, O_JOB},
	    {"step", required_argument, 0, O_STEP},
	    {"min-runs", required_argument, 0, O_MIN},
	    {"keep", required_argument, 0, O_KEEP},
	    {"older-than", required_argument, 0, O_OLDER},
	    {"help", no_argument, 0, O_HELP},
	    {0, 0, 0, 0},
	};
	int o;

	optind = 1;
	while ((o = cli_getopt(cmd, argc, argv, "h", opts)) != -1) {
		switch (o) {
		case O_STORE:
			c->spec = optarg;
			break;
		case O_REPO:
			c->f.repo = optarg;
			break;
		case O_WORKFLOW:
			c->f.workflow = optarg;
			break;
		case O_JOB:
			c->f.job = optarg;
			break;
		case O_STEP:
			c->f.step = optarg;
			break;
		case O_MIN:
			if (!parse_u64(optarg, 1, 100000, &c->min_runs))
				return cli_usage(cmd, "--min-runs %s: expected a number 1-100000",
						 optarg);
			break;
		case O_KEEP:
			if (!parse_u64(optarg, 1, 1000000, &c->keep))
				return cli_usage(cmd, "--keep %s: expected a number 1-1000000",
						 optarg);
			c->keep_set = true;
			break;
		case O_OLDER:
			if (!parse_u64(optarg, 1, 36500, &c->older_days))
				return cli_usage(cmd, "--older-than %s: expected days, 1-36500",
						 optarg);
			c->older_set = true;
			break;
		case O_HELP:
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			return CLI_USAGE;
		}
	}
	return 0;
}

static int open_store(struct bl_store *s, const struct bl_cli *c)
{
	char err[BL_ERRLEN + 256];

	memset(s, 0, sizeof(*s));
	s->min_runs = (int)c->min_runs;
	s->must_exist = c->must_exist;
	if (bl_store_open(s, c->spec, err, sizeof(err))) {
		rw_err("%s", err);
		return -1;
	}
	if (s->schema_from && s->schema_from < BL_SCHEMA_VERSION)
		fprintf(stderr, "runwarden: baseline %s: schema migrated from v%d to v%d\n",
			s->db->where, s->schema_from, BL_SCHEMA_VERSION);
	return 0;
}

static void say_added(const char *dir, const struct bl_run *r)
{
	size_t n = 0, medium = 0;
	struct strbuf sb = STRBUF_INIT;

	strmap_for_each(e, &r->items)
	{
		const struct bl_item *it = e->val;

		n += it->first_seen;
		medium += it->first_seen && !strcmp(it->severity, "medium");
	}
	sb_addf(&sb, "%s: ", dir);
	if (r->already) {
		printf("%salready recorded\n", sb.buf);
		sb_release(&sb);
		return;
	}
	printf("%srecorded as run %lld: %zu items, %zu first seen (%zu medium)", sb.buf,
	       (long long)r->id, r->items.count, n, medium);
	if (r->left_out)
		printf(", %llu items left out (over %d of a kind per run, or too long)",
		       (unsigned long long)r->left_out, BL_MAX_ITEMS);
	putchar('\n');
	baseline_print_first_seen(r, stdout, 50);
	sb_release(&sb);
}

static int do_add(struct bl_cli *c, int n, char **dirs)
{
	struct bl_store s;
	char err[BL_ERRLEN + 256];
	int rc = 0;

	if (!n)
		return cli_usage("baseline add", "no run directory given");
	if (open_store(&s, c))
		return 1;
	for (int i = 0; i < n; i++) {
		struct bl_run r;

		bl_run_init(&r);
		bl_set(&r.repo, c->f.repo);
		bl_set(&r.workflow, c->f.workflow);
		bl_set(&r.job, c->f.job);
		bl_set(&r.run_step, c->f.step);
		if (bl_run_read_dir(&r, dirs[i], err, sizeof(err)) ||
		    bl_store_add(&s, &r, err, sizeof(err))) {
			/* Name the run: the store's own message may not. */
			if (!strstr(err, dirs[i]))
				rw_err("%s: %s", dirs[i], err);
			else
				rw_err("%s", err);
			rc = 1;
		} else {
			say_added(dirs[i], &r);
		}
		bl_run_free(&r);
	}
	bl_store_close(&s);
	return rc;
}

int cmd_baseline(int argc, char **argv)
{
	struct bl_cli c = {0};
	struct bl_store s;
	char err[BL_ERRLEN + 256];
	const char *sub;
	char cmd[32];
	int rc;

	if (argc < 2)
		return cli_usage("baseline", "no subcommand given (add, show, prune or export)");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage_text, stdout);
		return 0;
	}
	sub = argv[1];
	if (strcmp(sub, "add") && strcmp(sub, "show") && strcmp(sub, "prune") &&
	    strcmp(sub, "export"))
		return cli_usage("baseline",
				 "unknown subcommand '%.40s' (add, show, prune, export)", sub);
	snprintf(cmd, sizeof(cmd), "baseline %s", sub);
	if ((rc = parse(cmd, argc - 1, argv + 1, &c)))
		return rc;
	argc--;
	argv++;
	if (!strcmp(sub, "add"))
		return do_add(&c, argc - optind, argv + optind);
	if (optind < argc)
		return cli_usage(cmd, "unexpected argument '%.100s'", argv[optind]);
	c.must_exist = true;
	if (!strcmp(sub, "prune")) {
		uint64_t deleted = 0;

		if (!c.keep_set && !c.older_set)
			return cli_usage(cmd, "give --keep N or --older-than DAYS");
		if (open_store(&s, &c))
			return 1;
		rc = bl_store_prune(&s, c.keep, c.older_days * 86400, &deleted, err, sizeof(err));
		if (rc)
			rw_err("%s", err);
		else
			printf("pruned %llu runs\n", (unsigned long long)deleted);
		bl_store_close(&s);
		return rc ? 1 : 0;
	}
	if (open_store(&s, &c))
		return 1;
	rc = !strcmp(sub, "show") ? bl_store_show(&s, &c.f, stdout, err, sizeof(err))
				  : bl_store_export(&s, &c.f, stdout, err, sizeof(err));
	if (rc)
		rw_err("%s", err);
	bl_store_close(&s);
	return rc ? 1 : 0;
}
