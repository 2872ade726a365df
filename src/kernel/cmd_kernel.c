/*
 * `runwarden kernel`: the resident kernel side (pool.h) by hand. `run` and the
 * agent load one when they need it; this loads it ahead of the first job (the
 * Action's pre step, a runner's boot), shows what is loaded, and unloads it.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmds.h"
#include "common/cli.h"
#include "common/util.h"
#include "kernel/loader.h"
#include "kernel/pool.h"

static const char usage_text[] =
    "usage: runwarden kernel load [--idle SECONDS] [--ring-mb N]\n"
    "       runwarden kernel status\n"
    "       runwarden kernel unload\n"
    "\n"
    "The resident kernel side: runwarden's kernel programs loaded, verified and\n"
    "attached once and lent to one job at a time, so a job is armed by writing maps\n"
    "(milliseconds) instead of loading programs. `run` and the agent use a free copy\n"
    "when there is one and otherwise load one and leave it behind.\n"
    "\n"
    "  load      load a copy now (if no matching copy is loaded)\n"
    "  status    what is loaded, in use, idle\n"
    "  unload    unload every copy not in use (the tracepoints detach now)\n"
    "  --idle SECONDS  a copy unused this long is unloaded (default 600; 0: never)\n"
    "  --ring-mb N     ring buffer of the copy, as `run --ring-mb` (default 16)\n";

enum { O_IDLE = 256, O_RING, O_HELP };

static int parse(const char *cmd, int argc, char **argv, uint64_t *idle, uint64_t *ring_mb)
{
	static const struct option opts[] = {
	    {"idle", required_argument, 0, O_IDLE},
	    {"ring-mb", required_argument, 0, O_RING},
	    {"help", no_argument, 0, O_HELP},
	    {0, 0, 0, 0},
	};
	int c;

	optind = 1;
	while ((c = cli_getopt(cmd, argc, argv, "h", opts)) != -1) {
		switch (c) {
		case O_IDLE:
			if (!idle || !parse_u64(optarg, 0, 365ULL * 86400, idle))
				return cli_usage(cmd, "--idle %s: expected whole seconds", optarg);
			break;
		case O_RING:
			if (!ring_mb || !parse_u64(optarg, 1, 1024, ring_mb) ||
			    (*ring_mb & (*ring_mb - 1)))
				return cli_usage(
				    cmd, "--ring-mb %s: expected a power of two between 1 and 1024",
				    optarg);
			break;
		case O_HELP:
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			return CLI_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
	return 0;
}

static int do_load(int argc, char **argv)
{
	uint64_t idle = POOL_IDLE_DEFAULT, ring_mb = 16;
	char err[512] = "", what[64] = "";
	int rc = parse("kernel load", argc, argv, &idle, &ring_mb);

	if (rc)
		return rc;
	if (loader_preload((uint32_t)(ring_mb << 20), (unsigned)idle, what, sizeof(what), err,
			   sizeof(err))) {
		rw_err("kernel load: %s", err);
		return 1;
	}
	printf("%s\n", what);
	return 0;
}

static size_t missing_hooks(json_t *meta)
{
	size_t i, n = 0;
	json_t *h;

	json_array_foreach(json_object_get(meta, "hooks"), i, h) n +=
	    json_string_length(json_object_get(h, "reason")) > 0;
	return n;
}

/* One line per slot: loaded or not, in use or idle, what it holds. */
static int do_status(int argc, char **argv)
{
	char err[256];
	int rc = parse("kernel status", argc, argv, NULL, NULL), loaded = 0;

	if (rc)
		return rc;
	if (pool_prepare(err, sizeof(err))) {
		rw_err("kernel status: %s", err);
		return 1;
	}
	for (int id = 0; id < POOL_SLOTS; id++) {
		struct pool_slot s;
		int busy = pool_lock(id, &s, err, sizeof(err));
		char *text;
		json_t *meta;

		if (busy < 0) {
			rw_err("kernel status: %s", err);
			return 1;
		}
		if (busy) {
			s.id = id; /* read-only from here on */
			snprintf(s.bpf_dir, sizeof(s.bpf_dir), POOL_BPF_DIR "/%d", id);
		}
		if (!pool_loaded(&s)) {
			if (!busy)
				close(s.lock_fd);
			continue;
		}
		loaded++;
		text = pool_read_meta(&s);
		meta = text ? json_loads(text, 0, NULL) : NULL;
		if (!meta || !json_is_integer(json_object_get(meta, "loaded_ns")))
			/* Being loaded (no metadata yet), or metadata nobody can trust. */
			printf("slot %d: %s, %s\n", id, busy ? "in use" : "idle",
			       busy ? "loading" : "unreadable metadata (not lent out)");
		else
			printf("slot %d: %s, runwarden %s, loaded %llds ago, missing hooks: %zu\n",
			       id, busy ? "in use" : "idle",
			       json_string_value(json_object_get(meta, "version")) ?: "?",
			       (long long)((now_real_ns() - json_integer_value(json_object_get(
								meta, "loaded_ns"))) /
					   1000000000LL),
			       missing_hooks(meta));
		json_decref(meta);
		free(text);
		if (!busy)
			close(s.lock_fd);
	}
	if (!loaded)
		printf("nothing loaded\n");
	return 0;
}

static int do_unload(int argc, char **argv)
{
	int rc = parse("kernel unload", argc, argv, NULL, NULL);

	return rc ? rc : pool_unload(false);
}

static int do_hold(int argc, char **argv)
{
	uint64_t idle = POOL_IDLE_DEFAULT;
	int rc = parse("kernel hold", argc, argv, &idle, NULL);

	return rc ? rc : pool_hold((unsigned)idle);
}

int cmd_kernel(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"load", do_load}, {"status", do_status}, {"unload", do_unload}, {"hold", do_hold}};

	return cli_dispatch("kernel", argc, argv, subs, sizeof(subs) / sizeof(subs[0]), usage_text);
}
