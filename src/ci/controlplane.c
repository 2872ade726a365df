/*
 * Per-platform control-plane host patterns and a label-bounded matcher.
 * Self-hosted servers (GitLab self-managed, Jenkins, Drone, GitHub Enterprise
 * Server) have no fixed names: operators add theirs by configuration, never
 * from the job's environment (CI_SERVER_URL and friends are workload-settable).
 */
#include "ci/controlplane.h"
#include "ci/platforms.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>

/* Longest DNS name (RFC 1035) plus the optional root dot. */
#define HOST_MAX 254

static const char *const github[] = {
    /* "Communicating with self-hosted runners": essential operations */
    "github.com",
    "api.github.com",
    "*.actions.githubusercontent.com",
    /* downloading actions */
    "codeload.github.com",
    "pkg.actions.githubusercontent.com",
    /* job summaries, logs, workflow artifacts and caches */
    "results-receiver.actions.githubusercontent.com",
    "productionresultssa*.blob.core.windows.net",
    /* runner version updates */
    "objects.githubusercontent.com",
    "objects-origin.githubusercontent.com",
    "github-releases.githubusercontent.com",
    "github-registry-files.githubusercontent.com",
    NULL,
};

static const char *const gitlab[] = {
    /* GitLab.com: job requests, traces, artifacts; runner image pulls */
    "gitlab.com",
    "registry.gitlab.com",
    NULL,
};

static const char *const circleci[] = {
    /* self-hosted runner agent: task polling and its own downloads */
    "runner.circleci.com",
    "circleci-binary-releases.s3.amazonaws.com",
    NULL,
};

static const char *const azure[] = {
    /* "Allowed address lists and network connections" for agents */
    "dev.azure.com",
    "*.dev.azure.com",
    "*.visualstudio.com",
    "*.vsassets.io",
    "*.vsblob.visualstudio.com",
    "login.microsoftonline.com",
    "vstsagentpackage.azureedge.net",
    "download.agent.dev.azure.com",
    NULL,
};

static const char *const bitbucket[] = {
    /* self-hosted runners: pipeline API and authentication */
    "bitbucket.org", "api.bitbucket.org", "api.atlassian.com", "auth.atlassian.com", NULL,
};

static const char *const buildkite[] = {
    /* agent API endpoint (--endpoint default) */
    "agent.buildkite.com",
    NULL,
};

/* Platforms (ci/platforms.h) without an entry here have only self-hosted servers: nothing
 * fixed to list. */
static const char *const none[] = {NULL};

static const char *const *const table[CI_PLATFORM_COUNT] = {
    [CI_GITHUB] = github, [CI_GITLAB] = gitlab,	      [CI_CIRCLECI] = circleci,
    [CI_AZURE] = azure,	  [CI_BITBUCKET] = bitbucket, [CI_BUILDKITE] = buildkite,
};

const char *const *ci_control_plane_hosts(const char *provider)
{
	if (!provider)
		return NULL;
	for (int p = 0; p < CI_PLATFORM_COUNT; p++)
		if (!strcmp(ci_platforms[p].name, provider))
			return table[p] ? table[p] : none;
	return NULL;
}

/* '*' matches any run of characters other than '.', so it stays in one label. */
static bool glob_label(const char *pat, const char *s)
{
	while (*pat) {
		if (*pat == '*') {
			pat++;
			for (;;) {
				if (glob_label(pat, s))
					return true;
				if (!*s || *s == '.')
					return false;
				s++;
			}
		}
		if (*pat != *s)
			return false;
		pat++;
		s++;
	}
	return *s == '\0';
}

bool ci_control_plane_match(const char *provider, const char *host)
{
	const char *const *hosts = ci_control_plane_hosts(provider);
	char h[HOST_MAX + 1];
	size_t n;

	if (!hosts || !host)
		return false;
	n = strlen(host);
	if (n && host[n - 1] == '.')
		n--;
	if (n == 0 || n > HOST_MAX - 1)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)host[i];
		/* Only hostname characters: anything else cannot be one of ours. */
		if (!(isalnum(c) || c == '-' || c == '.'))
			return false;
		h[i] = (char)tolower(c);
	}
	h[n] = '\0';
	/* An empty label ("a..b") could let '*' match nothing in odd places. */
	if (h[0] == '.' || strstr(h, ".."))
		return false;
	for (const char *const *p = hosts; *p; p++)
		if (glob_label(*p, h))
			return true;
	return false;
}
