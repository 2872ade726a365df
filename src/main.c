/* runwarden: see, fence and prove what a CI job does. Subcommand dispatch only. */
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "cmds.h"
#include "common/util.h"

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

static const struct cmd cmds[] = {
    {"run", cmd_run, "run a command and record what it does"},
    {"report", cmd_report, "render a run directory: terminal, HTML, GitHub summary, JUnit"},
    {"keygen", cmd_keygen, "write a signing key pair for the evidence"},
    {"verify", cmd_verify, "check a run's signed evidence against a pinned key"},
    {"agent", cmd_agent, "the whole-job daemon behind `job start/stop`"},
    {"job", cmd_job, "whole-job mode: job start|stop|status (talks to the agent)"},
    {"kernel", cmd_kernel, "the resident kernel side: kernel load|status|unload"},
    {"version", cmd_version, "print the version"},
    {"policy", cmd_policy, "check a policy file (policy check FILE)"},
    {"learn", cmd_learn, "suggest a policy from observed runs' event logs"},
    {"baseline", cmd_baseline, "the store of past runs: add, show, prune, export"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: runwarden <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].help);
	fprintf(f, "\n'runwarden <command> --help' describes each command.\n");
}

int main(int argc, char **argv)
{
	/* One malloc arena. The only threads are short ones (the two halves of a cold load, link
	 * teardown), and glibc gave the loading thread an arena of its own that kept ~11 MiB of
	 * freed pages resident for the rest of the job (bench/rss.py: 12 MiB less RSS with one
	 * arena, cold start unchanged). */
	mallopt(M_ARENA_MAX, 1);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version"))
		return cmd_version(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	rw_err("unknown command '%s' (try 'runwarden --help')", argv[1]);
	return 2;
}
