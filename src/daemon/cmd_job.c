/*
 * `runwarden job start|stop|status`: the client of the whole-job agent
 * (cmd_agent.c). It only turns options into one control request and the
 * reply into an exit status and the text a CI log shows; every decision is
 * the agent's.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "baseline/store.h"
#include "ci/detect.h"
#include "daemon/control.h"
#include "cmds.h"
#include "common/cli.h"
#include "common/util.h"

static const char usage_text[] =
    "usage: runwarden job start [options]\n"
    "       runwarden job stop [--leftovers kill|keep] [--socket PATH]\n"
    "       runwarden job status [--socket PATH]\n"
    "\n"
    "Whole-job mode: asks `runwarden agent` to watch a CI job (see docs/agent.md).\n"
    "\n"
    "start: arms the kernel side, then moves PID into the job's scope; everything\n"
    "PID starts from then on is in the job. Returns once armed.\n"
    "  --pid PID          the process to put under watch. Default: the parent of\n"
    "                     this command (past sudo/su/doas/runuser), i.e. the\n"
    "                     runner process that ran the hook; hooks should pass it\n"
    "                     explicitly ($PPID in a hook script)\n"
    "  --out DIR          evidence directory, created by the agent: it must not exist\n"
    "                     (default ./runwarden-out)\n"
    "  --policy FILE      egress policy (YAML, see docs/policy.md)\n"
    "  --mode MODE        observe (default), learn or enforce\n"
    "  --step NAME        CI step the events belong to\n"
    "  --key FILE         sign the evidence with this private key, owned by root and\n"
    "                     mode 0600 (default: an ephemeral key)\n"
    "  --no-sign          do not write an attestation\n"
    "  --watch GLOB       treat files matching GLOB as sensitive (repeatable)\n"
    "  --allow-partial    arm even if some hooks cannot be attached\n"
    "  --repo R, --workflow W, --job J\n"
    "                     the key the agent's baseline (agent --baseline) records the job\n"
    "                     under; default: this command's CI context\n"
    "\n"
    "stop: releases the runner's processes, kills (default) or releases what the\n"
    "job left running, writes the evidence and exits non-zero on a policy\n"
    "violation or an incomplete record.\n"
    "  --leftovers kill|keep\n"
    "\n"
    "  --socket PATH      the agent's control socket (default " CONTROL_DEFAULT_SOCKET ")\n";

/* The agent's working directory is not ours. */
static int absolute(const char *opt, const char *in, bool must_exist, char *out, size_t len)
{
	char cwd[PATH_MAX];

	if (must_exist) {
		if (!realpath(in, out)) {
			rw_err("%s %s: %s", opt, in, strerror(errno));
			return -1;
		}
		return 0;
	}
	if (in[0] == '/') {
		snprintf(out, len, "%s", in);
		return 0;
	}
	if (!getcwd(cwd, sizeof(cwd))) {
		rw_err("getcwd: %s", strerror(errno));
		return -1;
	}
	if ((size_t)snprintf(out, len, "%s/%s", cwd, in) >= len) {
		rw_err("%s %s: path too long", opt, in);
		return -1;
	}
	return 0;
}

extern char **environ;

/* The agent runs outside the CI job and cannot see its context: the key its baseline keeps
 * the job under comes from here (this command runs in the job's environment), unless the
 * flags gave it. Labels only, as everywhere (docs/baseline.md). */
static void ci_key(json_t *req)
{
	static const char *const map[][2] = {
	    {"repo", "repository"}, {"workflow", "workflow"}, {"job", "job"}};
	json_t *ci = ci_detect(environ, "/");

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		const char *v =
		    i == 1 ? bl_ci_workflow(ci) : json_string_value(json_object_get(ci, map[i][1]));

		if (v && !json_object_get(req, map[i][0]))
			json_object_set_new(req, map[i][0], json_string(v));
	}
	json_decref(ci);
}

static int call(const char *sock, json_t *req, json_t **reply)
{
	char err[512];

	*reply = control_call(sock, req, err, sizeof(err));
	json_decref(req);
	if (!*reply) {
		rw_err("%s", err);
		return -1;
	}
	if (!json_is_true(json_object_get(*reply, "ok"))) {
		const char *e = json_string_value(json_object_get(*reply, "error"));

		rw_err("%s", e ? e : "the agent refused without a reason");
		json_decref(*reply);
		*reply = NULL;
		return -1;
	}
	return 0;
}

static int job_start(int argc, char **argv)
{
	enum {
		O_OUT = 1,
		O_POLICY,
		O_MODE,
		O_KEY,
		O_STEP,
		O_PID,
		O_SOCKET,
		O_WATCH,
		O_PARTIAL,
		O_NOSIGN,
		O_REPO,
		O_WORKFLOW,
		O_JOB
	};
	static const struct option opts[] = {
	    {"out", required_argument, 0, O_OUT},
	    {"policy", required_argument, 0, O_POLICY},
	    {"mode", required_argument, 0, O_MODE},
	    {"key", required_argument, 0, O_KEY},
	    {"step", required_argument, 0, O_STEP},
	    {"pid", required_argument, 0, O_PID},
	    {"socket", required_argument, 0, O_SOCKET},
	    {"watch", required_argument, 0, O_WATCH},
	    {"allow-partial", no_argument, 0, O_PARTIAL},
	    {"no-sign", no_argument, 0, O_NOSIGN},
	    {"repo", required_argument, 0, O_REPO},
	    {"workflow", required_argument, 0, O_WORKFLOW},
	    {"job", required_argument, 0, O_JOB},
	    {"help", no_argument, 0, 'h'},
	    {0, 0, 0, 0},
	};
	const char *sock = CONTROL_DEFAULT_SOCKET, *out = "runwarden-out", *mode = NULL;
	char path[PATH_MAX];
	json_t *req = json_pack("{s:s}", "op", "start"), *watch = json_array(), *reply;
	uint64_t pid;
	int c;

	while ((c = cli_getopt("job start", argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			json_decref(req);
			json_decref(watch);
			return 0;
		case O_OUT:
			out = optarg;
			break;
		case O_POLICY:
		case O_KEY:
			if (absolute(c == O_POLICY ? "--policy" : "--key", optarg, true, path,
				     sizeof(path)))
				goto fail;
			json_object_set_new(req, c == O_POLICY ? "policy" : "key",
					    json_string(path));
			break;
		case O_MODE:
			mode = optarg;
			json_object_set_new(req, "mode", json_string(optarg));
			break;
		case O_STEP:
			json_object_set_new(req, "step", json_string(optarg));
			break;
		case O_PID:
			if (!parse_u64(optarg, 2, INT_MAX, &pid)) {
				cli_usage("job start", "--pid %s: expected a process id above 1",
					  optarg);
				goto fail;
			}
			json_object_set_new(req, "pid", json_integer((json_int_t)pid));
			break;
		case O_SOCKET:
			sock = optarg;
			break;
		case O_WATCH:
			json_array_append_new(watch, json_string(optarg));
			break;
		case O_PARTIAL:
			json_object_set_new(req, "allow_partial", json_true());
			break;
		case O_NOSIGN:
			json_object_set_new(req, "no_sign", json_true());
			break;
		case O_REPO:
		case O_WORKFLOW:
		case O_JOB:
			json_object_set_new(req,
					    c == O_REPO	      ? "repo"
					    : c == O_WORKFLOW ? "workflow"
							      : "job",
					    json_string(optarg));
			break;
		default:
			goto fail;
		}
	}
	if (optind < argc) {
		cli_usage("job start", "unexpected argument '%s'", argv[optind]);
		goto fail;
	}
	if (mode && strcmp(mode, "observe") && strcmp(mode, "learn") && strcmp(mode, "enforce")) {
		cli_usage("job start", "--mode %s: expected observe, learn or enforce", mode);
		goto fail;
	}
	if (absolute("--out", out, false, path, sizeof(path)))
		goto fail;
	ci_key(req);
	json_object_set_new(req, "out", json_string(path));
	if (json_array_size(watch))
		json_object_set(req, "watch", watch);
	json_decref(watch);
	if (call(sock, req, &reply))
		return 1;
	const char *warn = json_string_value(json_object_get(reply, "warnings"));
	if (warn && warn[0])
		rw_err("%s", warn);
	rw_err("job %s armed: pid %lld and everything it starts from now on is watched (mode "
	       "%s); evidence to %s",
	       json_string_value(json_object_get(reply, "id")),
	       (long long)json_integer_value(json_object_get(reply, "pid")),
	       json_string_value(json_object_get(reply, "mode")),
	       json_string_value(json_object_get(reply, "out")));
	json_decref(reply);
	return 0;
fail:
	json_decref(req);
	json_decref(watch);
	return 2;
}

static int job_stop(int argc, char **argv)
{
	enum { O_SOCKET = 1, O_LEFT };
	static const struct option opts[] = {
	    {"socket", required_argument, 0, O_SOCKET},
	    {"leftovers", required_argument, 0, O_LEFT},
	    {"help", no_argument, 0, 'h'},
	    {0, 0, 0, 0},
	};
	const char *sock = CONTROL_DEFAULT_SOCKET;
	json_t *req = json_pack("{s:s}", "op", "stop"), *reply;
	int c, rc;

	while ((c = cli_getopt("job stop", argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			json_decref(req);
			return 0;
		case O_SOCKET:
			sock = optarg;
			break;
		case O_LEFT:
			if (strcmp(optarg, "kill") && strcmp(optarg, "keep")) {
				json_decref(req);
				return cli_usage("job stop",
						 "--leftovers %s: expected kill or keep", optarg);
			}
			json_object_set_new(req, "leftovers", json_string(optarg));
			break;
		default:
			json_decref(req);
			return CLI_USAGE;
		}
	}
	if (optind < argc) {
		json_decref(req);
		return cli_usage("job stop", "unexpected argument '%s'", argv[optind]);
	}
	if (call(sock, req, &reply))
		return 1;
	/* The summary `run` prints, as job.c wrote it in the agent. */
	fputs(json_string_value(json_object_get(reply, "summary")) ?: "", stderr);
	rc = (int)json_integer_value(json_object_get(reply, "status"));
	if (rc < 0 || rc > 255)
		rc = 1;
	if (!json_is_true(json_object_get(reply, "complete")) && rc == 0)
		rc = 1; /* an incomplete record must not pass */
	json_decref(reply);
	return rc;
}

static int job_status(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"socket", required_argument, 0, 1}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	const char *sock = CONTROL_DEFAULT_SOCKET;
	json_t *reply;
	int c;

	while ((c = cli_getopt("job status", argc, argv, "h", opts)) != -1) {
		if (c == 'h') {
			fputs(usage_text, stdout);
			return 0;
		}
		if (c != 1)
			return CLI_USAGE;
		sock = optarg;
	}
	if (optind < argc)
		return cli_usage("job status", "unexpected argument '%s'", argv[optind]);
	if (call(sock, json_pack("{s:s}", "op", "status"), &reply))
		return 1;
	json_dumpf(json_object_get(reply, "job"), stdout, JSON_COMPACT | JSON_ENCODE_ANY);
	putchar('\n');
	json_decref(reply);
	return 0;
}

int cmd_job(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"start", job_start},
	    {"stop", job_stop},
	    {"status", job_status},
	};

	return cli_dispatch("job", argc, argv, subs, sizeof(subs) / sizeof(subs[0]), usage_text);
}
