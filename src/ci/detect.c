/*
 * CI platform detection and per-process step labels, from the variables each
 * platform documents (docs/ci.md). Labels only: nothing here grants anything.
 */
#include "ci/detect.h"
#include "ci/platforms.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/jsonw.h"
#include "common/strbuf.h"
#include "common/util.h"

/* Characters that could forge lines or reorder text in a report. */
static bool is_hostile_cp(uint32_t cp)
{
	return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) || cp == 0x2028 ||
	       cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

char *ci_clean_label(const char *s, size_t len, size_t max)
{
	struct strbuf sb = STRBUF_INIT;
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (s && i < len) {
		uint32_t cp;
		size_t n = utf8_decode(p + i, len - i, &cp);
		const char *piece = (const char *)p + i;
		size_t plen = n;

		if (n == 0) {
			piece = "\xef\xbf\xbd"; /* U+FFFD */
			plen = 3;
			n = 1;
		} else if (is_hostile_cp(cp)) {
			piece = " ";
			plen = 1;
		}
		if (sb.len + plen > max)
			break;
		sb_add(&sb, piece, plen);
		i += n;
	}
	return sb_detach(&sb);
}

/* One place to look variables up: an envp array or a NUL-separated block. */
struct envsrc {
	char *const *envp;
};

static const char *env_get(const struct envsrc *e, const char *name)
{
	size_t nl = strlen(name);

	if (!e->envp)
		return NULL;
	/* First match wins, as getenv(3) does. */
	for (char *const *p = e->envp; *p; p++)
		if (!strncmp(*p, name, nl) && (*p)[nl] == '=')
			return *p + nl + 1;
	return NULL;
}

static bool env_true(const struct envsrc *e, const char *name)
{
	const char *v = env_get(e, name);
	return v && !strcasecmp(v, "true");
}

static bool env_set(const struct envsrc *e, const char *name)
{
	const char *v = env_get(e, name);
	return v && *v;
}

static bool is_dir(const char *root, const char *rel)
{
	struct strbuf sb = STRBUF_INIT;
	struct stat st;
	bool ok;

	sb_addf(&sb, "%s%s", root && *root ? root : "/", rel);
	ok = stat(sb_str(&sb), &st) == 0 && S_ISDIR(st.st_mode);
	sb_release(&sb);
	return ok;
}

const struct ci_platform_def ci_platforms[CI_PLATFORM_COUNT] = {
#define CI_DEF_(id, nm, mk, m1, m2, s1, s2) [CI_##id] = {nm, mk, {m1, m2}, {s1, s2}},
    CI_PLATFORMS(CI_DEF_)
#undef CI_DEF_
};

/* Context keys, in output order. */
enum field {
	F_REPOSITORY,
	F_WORKFLOW,
	F_JOB,
	F_JOB_ID,
	F_RUN_ID,
	F_RUN_ATTEMPT,
	F_COMMIT,
	F_REF,
	F_RUNNER,
	F_SERVER_URL,
	F_URL,
	F_STEP,
	F_COUNT
};

static const char *const field_names[F_COUNT] = {
    "repository", "workflow", "job",	"job_id",     "run_id", "run_attempt",
    "commit",	  "ref",      "runner", "server_url", "url",	"step",
};

#define ALT 3 /* variables tried in order for one field */

/* Context variables per platform; the step variables come from CI_PLATFORMS. */
struct platform {
	const char *vars[F_COUNT][ALT];
};

/*
 * Variables per platform and field, first non-empty wins. Composite values
 * (GitHub's run URL, CircleCI's owner/name, Drone's server URL) are built in
 * composite() below. Sources: each platform's variable reference, see
 * docs/ci.md.
 */
static const struct platform platforms[CI_PLATFORM_COUNT] = {
    [CI_GITHUB] = {{
	[F_REPOSITORY] = {"GITHUB_REPOSITORY"},
	[F_WORKFLOW] = {"GITHUB_WORKFLOW"},
	[F_JOB] = {"GITHUB_JOB"},
	[F_RUN_ID] = {"GITHUB_RUN_ID"},
	[F_RUN_ATTEMPT] = {"GITHUB_RUN_ATTEMPT"},
	[F_COMMIT] = {"GITHUB_SHA"},
	[F_REF] = {"GITHUB_REF"},
	[F_RUNNER] = {"RUNNER_NAME"},
	[F_SERVER_URL] = {"GITHUB_SERVER_URL"},
    }},
    [CI_GITLAB] = {{
	[F_REPOSITORY] = {"CI_PROJECT_PATH"},
	[F_WORKFLOW] = {"CI_PIPELINE_NAME"},
	[F_JOB] = {"CI_JOB_NAME"},
	[F_JOB_ID] = {"CI_JOB_ID"},
	[F_RUN_ID] = {"CI_PIPELINE_ID"},
	[F_COMMIT] = {"CI_COMMIT_SHA"},
	[F_REF] = {"CI_COMMIT_REF_NAME"},
	[F_RUNNER] = {"CI_RUNNER_DESCRIPTION", "CI_RUNNER_ID"},
	[F_SERVER_URL] = {"CI_SERVER_URL"},
	[F_URL] = {"CI_JOB_URL"},
    }},
    [CI_BUILDKITE] = {{
	[F_REPOSITORY] = {"BUILDKITE_REPO"},
	[F_WORKFLOW] = {"BUILDKITE_PIPELINE_SLUG"},
	[F_JOB] = {"BUILDKITE_STEP_KEY", "BUILDKITE_LABEL"},
	[F_JOB_ID] = {"BUILDKITE_JOB_ID"},
	[F_RUN_ID] = {"BUILDKITE_BUILD_NUMBER", "BUILDKITE_BUILD_ID"},
	[F_RUN_ATTEMPT] = {"BUILDKITE_RETRY_COUNT"},
	[F_COMMIT] = {"BUILDKITE_COMMIT"},
	[F_REF] = {"BUILDKITE_TAG", "BUILDKITE_BRANCH"},
	[F_RUNNER] = {"BUILDKITE_AGENT_NAME"},
	[F_URL] = {"BUILDKITE_BUILD_URL"},
    }},
    [CI_CIRCLECI] = {{
	[F_WORKFLOW] = {"CIRCLE_WORKFLOW_ID"},
	[F_JOB] = {"CIRCLE_JOB"},
	[F_JOB_ID] = {"CIRCLE_WORKFLOW_JOB_ID", "CIRCLE_BUILD_NUM"},
	[F_RUN_ID] = {"CIRCLE_BUILD_NUM"},
	[F_COMMIT] = {"CIRCLE_SHA1"},
	[F_REF] = {"CIRCLE_TAG", "CIRCLE_BRANCH"},
	[F_URL] = {"CIRCLE_BUILD_URL"},
    }},
    [CI_AZURE] = {{
	[F_REPOSITORY] = {"BUILD_REPOSITORY_NAME"},
	[F_WORKFLOW] = {"BUILD_DEFINITIONNAME"},
	[F_JOB] = {"SYSTEM_JOBDISPLAYNAME", "SYSTEM_JOBNAME", "AGENT_JOBNAME"},
	[F_JOB_ID] = {"SYSTEM_JOBID"},
	[F_RUN_ID] = {"BUILD_BUILDID"},
	[F_RUN_ATTEMPT] = {"SYSTEM_JOBATTEMPT"},
	[F_COMMIT] = {"BUILD_SOURCEVERSION"},
	[F_REF] = {"BUILD_SOURCEBRANCH"},
	[F_RUNNER] = {"AGENT_NAME"},
	[F_SERVER_URL] = {"SYSTEM_COLLECTIONURI", "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI"},
    }},
    [CI_BITBUCKET] = {{
	[F_REPOSITORY] = {"BITBUCKET_REPO_FULL_NAME"},
	[F_WORKFLOW] = {"BITBUCKET_PIPELINE_UUID"},
	[F_JOB] = {"BITBUCKET_STEP_UUID"},
	[F_RUN_ID] = {"BITBUCKET_BUILD_NUMBER"},
	[F_RUN_ATTEMPT] = {"BITBUCKET_STEP_RUN_NUMBER"},
	[F_COMMIT] = {"BITBUCKET_COMMIT"},
	[F_REF] = {"BITBUCKET_TAG", "BITBUCKET_BRANCH"},
	[F_URL] = {"BITBUCKET_GIT_HTTP_ORIGIN"},
    }},
    [CI_DRONE] = {{
	[F_REPOSITORY] = {"DRONE_REPO"},
	[F_WORKFLOW] = {"DRONE_STAGE_NAME"},
	[F_JOB] = {"DRONE_STAGE_NAME"},
	[F_RUN_ID] = {"DRONE_BUILD_NUMBER"},
	[F_COMMIT] = {"DRONE_COMMIT_SHA", "DRONE_COMMIT"},
	[F_REF] = {"DRONE_COMMIT_REF"},
	[F_RUNNER] = {"DRONE_STAGE_MACHINE"},
	[F_URL] = {"DRONE_BUILD_LINK"},
    }},
    [CI_JENKINS] = {{
	[F_REPOSITORY] = {"GIT_URL"},
	[F_WORKFLOW] = {"JOB_NAME"},
	[F_JOB] = {"JOB_BASE_NAME", "JOB_NAME"},
	[F_RUN_ID] = {"BUILD_NUMBER", "BUILD_ID"},
	[F_COMMIT] = {"GIT_COMMIT"},
	[F_REF] = {"BRANCH_NAME", "GIT_BRANCH"},
	[F_RUNNER] = {"NODE_NAME"},
	[F_SERVER_URL] = {"JENKINS_URL", "HUDSON_URL"},
	[F_URL] = {"BUILD_URL"},
    }},
    /* Tekton sets no variables of its own; the pod's hostname is the TaskRun pod. */
    [CI_TEKTON] = {{
	[F_RUNNER] = {"HOSTNAME"},
    }},
};

static bool marker_present(const struct ci_platform_def *d, const struct envsrc *e)
{
	for (int i = 0; i < 2 && d->marker[i]; i++)
		if (d->mark == CI_MARK_TRUE ? env_true(e, d->marker[i]) : env_set(e, d->marker[i]))
			return true;
	return false;
}

static bool present(enum ci_platform p, const struct envsrc *e, const char *root)
{
	if (ci_platforms[p].mark != CI_MARK_PROBE)
		return marker_present(&ci_platforms[p], e);
	/* Tekton: volumes the controller mounts into every step container. */
	return p == CI_TEKTON && (is_dir(root, "/tekton/run") || is_dir(root, "/tekton/steps") ||
				  is_dir(root, "/tekton/downward"));
}

static json_t *label(const char *s, size_t len)
{
	char *c = ci_clean_label(s, len, CI_VALUE_MAX);
	json_t *j = json_string(c);

	free(c);
	return j ? j : json_null();
}

static const char *first_var(const struct envsrc *e, const char *const vars[ALT])
{
	for (int i = 0; i < ALT && vars[i]; i++) {
		const char *v = env_get(e, vars[i]);
		if (v && *v)
			return v;
	}
	return NULL;
}

/* Values the platforms only give in pieces. */
static void composite(enum ci_platform p, const struct envsrc *e, const char *root, json_t *o)
{
	struct strbuf sb = STRBUF_INIT;
	const char *a, *b, *c;

	switch (p) {
	case CI_GITHUB:
		a = env_get(e, "GITHUB_SERVER_URL");
		b = env_get(e, "GITHUB_REPOSITORY");
		c = env_get(e, "GITHUB_RUN_ID");
		if (a && b && c && *a && *b && *c)
			sb_addf(&sb, "%s/%s/actions/runs/%s", a, b, c);
		break;
	case CI_CIRCLECI:
		a = env_get(e, "CIRCLE_PROJECT_USERNAME");
		b = env_get(e, "CIRCLE_PROJECT_REPONAME");
		if (a && b && *a && *b) {
			sb_addf(&sb, "%s/%s", a, b);
			json_object_set_new(o, "repository", label(sb.buf, sb.len));
			sb_reset(&sb);
		} else if ((a = env_get(e, "CIRCLE_REPOSITORY_URL")) && *a) {
			json_object_set_new(o, "repository", label(a, strlen(a)));
		}
		break;
	case CI_DRONE:
		a = env_get(e, "DRONE_SYSTEM_PROTO");
		b = env_get(e, "DRONE_SYSTEM_HOST");
		if (a && b && *a && *b) {
			sb_addf(&sb, "%s://%s", a, b);
			json_object_set_new(o, "server_url", label(sb.buf, sb.len));
			sb_reset(&sb);
		}
		break;
	case CI_TEKTON:
		/* TaskRun pods are named <taskrun>-pod; without HOSTNAME, the file. */
		if (json_is_null(json_object_get(o, "runner"))) {
			char buf[CI_VALUE_MAX + 1];
			sb_addf(&sb, "%s/etc/hostname", root && *root ? root : "");
			ssize_t n = read_text_bounded(sb_str(&sb), buf, sizeof(buf));
			sb_reset(&sb);
			if (n > 0) {
				while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
					n--;
				json_object_set_new(o, "runner", label(buf, (size_t)n));
			}
		}
		a = json_string_value(json_object_get(o, "runner"));
		if (a && strlen(a) > 4 && !strcmp(a + strlen(a) - 4, "-pod"))
			json_object_set_new(o, "job", label(a, strlen(a) - 4));
		break;
	default:
		break;
	}
	if (p == CI_GITHUB && sb.len)
		json_object_set_new(o, "url", label(sb.buf, sb.len));
	sb_release(&sb);
}

json_t *ci_detect(char *const *envp, const char *root)
{
	struct envsrc e = {envp};
	json_t *o = json_object(), *also = json_array();
	int found = -1;

	for (int f = 0; f < F_COUNT; f++)
		json_object_set_new(o, field_names[f], json_null());
	json_object_set_new(o, "provider", json_null());

	/* Several platforms' markers at once happen (a GitLab job started from a
	 * Jenkins build, a copied environment): the first in platforms[] order
	 * wins and the rest are recorded, so a reader can see the ambiguity. */
	for (int p = 0; p < CI_PLATFORM_COUNT; p++) {
		if (!present(p, &e, root))
			continue;
		if (found < 0)
			found = p;
		else
			json_array_append_new(also, json_string(ci_platforms[p].name));
	}
	if (found >= 0) {
		const struct platform *pl = &platforms[found];
		const char *const *stepv = ci_platforms[found].step;
		const char *st;

		json_object_set_new(o, "provider", json_string(ci_platforms[found].name));
		for (int f = 0; f < F_COUNT; f++) {
			const char *v = first_var(&e, pl->vars[f]);
			if (v)
				json_object_set_new(o, field_names[f], label(v, strlen(v)));
		}
		st = stepv[0] ? first_var(&e, (const char *const[ALT]){stepv[0], stepv[1]}) : NULL;
		if (st)
			json_object_set_new(o, "step", label(st, strlen(st)));
		composite(found, &e, root, o);
	}
	json_object_set_new(o, "also_detected", also);
	return o;
}

/* A NAME=value entry's value when its name is name, else NULL. */
static const char *entry_value(const char *ent, size_t elen, const char *eq, const char *name,
			       size_t *vlen)
{
	size_t nl = (size_t)(eq - ent);

	if (!name || strlen(name) != nl || memcmp(ent, name, nl))
		return NULL;
	*vlen = elen - nl - 1;
	return eq + 1;
}

struct span {
	const char *p;
	size_t n;
	bool set;
};

static bool span_true(const struct span *s)
{
	return s->set && s->n == 4 && !strncasecmp(s->p, "true", 4);
}

/* Same precedence as ci_detect(), from the same table: marker, then the step variables.
 * One pass over the block, remembering the first occurrence of each name (as getenv does). */
char *ci_step_from_environ(const char *block, size_t len)
{
	struct span mark[CI_PLATFORM_COUNT][2] = {0}, step[CI_PLATFORM_COUNT][2] = {0};
	size_t i = 0;

	if (!block)
		return NULL;
	if (len > CI_ENVIRON_MAX)
		len = CI_ENVIRON_MAX;
	while (i < len) {
		const char *ent = block + i;
		const char *end = memchr(ent, '\0', len - i);
		size_t elen = end ? (size_t)(end - ent) : len - i;
		const char *eq = memchr(ent, '=', elen);

		for (int p = 0; eq && p < CI_PLATFORM_COUNT; p++) {
			for (int k = 0; k < 2; k++) {
				const struct ci_platform_def *d = &ci_platforms[p];
				struct span *ms = &mark[p][k], *ss = &step[p][k];
				size_t vl;
				const char *v;

				if (!ms->set && (v = entry_value(ent, elen, eq, d->marker[k], &vl)))
					*ms = (struct span){v, vl, true};
				if (!ss->set && (v = entry_value(ent, elen, eq, d->step[k], &vl)))
					*ss = (struct span){v, vl, true};
			}
		}
		i += elen + 1;
	}
	for (int p = 0; p < CI_PLATFORM_COUNT; p++) {
		const struct ci_platform_def *d = &ci_platforms[p];
		bool on = false;

		if (d->mark == CI_MARK_PROBE)
			continue; /* no variable to find in an environment */
		for (int k = 0; k < 2; k++)
			on |= d->mark == CI_MARK_TRUE ? span_true(&mark[p][k])
						      : mark[p][k].set && mark[p][k].n;
		if (!on)
			continue;
		for (int k = 0; k < 2; k++)
			if (step[p][k].set && step[p][k].n)
				return ci_clean_label(step[p][k].p, step[p][k].n, CI_VALUE_MAX);
		return NULL;
	}
	return NULL;
}
