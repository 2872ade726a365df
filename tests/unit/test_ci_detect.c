/*
 * CI detection against simulated environments of all nine platforms (the
 * variable sets each platform documents, values as they look in real jobs),
 * plus the edge cases: two platforms at once, missing variables, hostile and
 * over-long values, and per-process step labels from environ blocks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ci/controlplane.h"
#include "ci/detect.h"
#include "ci/platforms.h"

/* Noise every runner has: detection must not depend on it. */
#define BASE "PATH=/usr/bin:/bin", "HOME=/home/runner", "CI=true", "LANG=C.UTF-8"

static char *const github_env[] = {
    BASE,
    "GITHUB_ACTIONS=true",
    "GITHUB_REPOSITORY=octo-org/octo-repo",
    "GITHUB_WORKFLOW=CI",
    "GITHUB_WORKFLOW_REF=octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main",
    "GITHUB_JOB=build",
    "GITHUB_RUN_ID=1658821493",
    "GITHUB_RUN_NUMBER=42",
    "GITHUB_RUN_ATTEMPT=2",
    "GITHUB_SHA=ffac537e6cbbf934b08745a378932722df287a53",
    "GITHUB_REF=refs/heads/main",
    "GITHUB_SERVER_URL=https://github.com",
    "GITHUB_API_URL=https://api.github.com",
    "GITHUB_ACTION=__run_2",
    "GITHUB_STEP_SUMMARY=/home/runner/work/_temp/_runner_file_commands/step_summary_1",
    "RUNNER_NAME=GitHub Actions 2",
    "RUNNER_OS=Linux",
    NULL,
};

static char *const gitlab_env[] = {
    BASE,
    "GITLAB_CI=true",
    "CI_SERVER_URL=https://gitlab.example.com",
    "CI_PROJECT_PATH=gitlab-org/gitlab-foss",
    "CI_PIPELINE_ID=1000",
    "CI_PIPELINE_NAME=nightly",
    "CI_JOB_ID=50",
    "CI_JOB_NAME=rspec:other",
    "CI_JOB_STAGE=test",
    "CI_JOB_URL=https://gitlab.example.com/gitlab-org/gitlab-foss/-/jobs/50",
    "CI_COMMIT_SHA=1ecfd275763eff1d6b4844ea3168962458c9f27a",
    "CI_COMMIT_REF_NAME=main",
    "CI_RUNNER_DESCRIPTION=shared-runners-manager-6.gitlab.com",
    "CI_RUNNER_ID=32",
    NULL,
};

static char *const jenkins_env[] = {
    BASE,
    "JENKINS_URL=https://ci.example.org/",
    "JENKINS_HOME=/var/jenkins_home",
    "JOB_NAME=folder/app/main",
    "JOB_BASE_NAME=main",
    "BUILD_NUMBER=17",
    "BUILD_ID=17",
    "BUILD_URL=https://ci.example.org/job/folder/job/app/job/main/17/",
    "NODE_NAME=linux-agent-3",
    "EXECUTOR_NUMBER=0",
    "GIT_COMMIT=9b1c5d7e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c",
    "GIT_BRANCH=origin/main",
    "GIT_URL=https://git.example.org/app.git",
    "BRANCH_NAME=main",
    "STAGE_NAME=Unit tests",
    NULL,
};

static char *const circleci_env[] = {
    BASE,
    "CIRCLECI=true",
    "CIRCLE_PROJECT_USERNAME=acme",
    "CIRCLE_PROJECT_REPONAME=rocket",
    "CIRCLE_REPOSITORY_URL=git@github.com:acme/rocket.git",
    "CIRCLE_WORKFLOW_ID=6c1e4c7a-0a1b-4c6e-9d0c-6a1f6f1e2b3c",
    "CIRCLE_WORKFLOW_JOB_ID=b7c2b5a4-7d3e-4c1a-8f2e-1a2b3c4d5e6f",
    "CIRCLE_JOB=test",
    "CIRCLE_BUILD_NUM=1234",
    "CIRCLE_BUILD_URL=https://circleci.com/gh/acme/rocket/1234",
    "CIRCLE_SHA1=0123456789abcdef0123456789abcdef01234567",
    "CIRCLE_BRANCH=feature/x",
    "CIRCLE_NODE_INDEX=0",
    NULL,
};

static char *const azure_env[] = {
    BASE,
    "TF_BUILD=True",
    "BUILD_REPOSITORY_NAME=contoso/web",
    "BUILD_DEFINITIONNAME=web-ci",
    "BUILD_BUILDID=8812",
    "BUILD_SOURCEVERSION=a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
    "BUILD_SOURCEBRANCH=refs/heads/main",
    "SYSTEM_JOBDISPLAYNAME=Build job",
    "SYSTEM_JOBNAME=build",
    "SYSTEM_JOBID=12f1170f-54f2-53f3-20dd-22fc7dff55f9",
    "SYSTEM_JOBATTEMPT=3",
    "SYSTEM_STAGENAME=Build",
    "SYSTEM_STAGEDISPLAYNAME=Build stage",
    "SYSTEM_COLLECTIONURI=https://dev.azure.com/contoso/",
    "AGENT_NAME=Azure Pipelines 3",
    "AGENT_JOBNAME=Build job",
    NULL,
};

static char *const bitbucket_env[] = {
    BASE,
    "BITBUCKET_BUILD_NUMBER=77",
    "BITBUCKET_REPO_FULL_NAME=team/service",
    "BITBUCKET_REPO_SLUG=service",
    "BITBUCKET_WORKSPACE=team",
    "BITBUCKET_PIPELINE_UUID={b1d2e3f4-0000-4000-8000-000000000001}",
    "BITBUCKET_STEP_UUID={c1d2e3f4-0000-4000-8000-000000000002}",
    "BITBUCKET_STEP_RUN_NUMBER=1",
    "BITBUCKET_COMMIT=abcdefabcdefabcdefabcdefabcdefabcdefabcd",
    "BITBUCKET_BRANCH=develop",
    "BITBUCKET_GIT_HTTP_ORIGIN=http://bitbucket.org/team/service",
    "BITBUCKET_CLONE_DIR=/opt/atlassian/pipelines/agent/build",
    NULL,
};

static char *const buildkite_env[] = {
    BASE,
    "BUILDKITE=true",
    "BUILDKITE_REPO=git@github.com:acme/api.git",
    "BUILDKITE_PIPELINE_SLUG=api",
    "BUILDKITE_ORGANIZATION_SLUG=acme",
    "BUILDKITE_BUILD_ID=01890c2e-5b3e-4f7a-9a54-8f1d2e3c4b5a",
    "BUILDKITE_BUILD_NUMBER=1514",
    "BUILDKITE_BUILD_URL=https://buildkite.com/acme/api/builds/1514",
    "BUILDKITE_JOB_ID=01890c2e-6000-4000-8000-000000000003",
    "BUILDKITE_STEP_KEY=lint",
    "BUILDKITE_LABEL=:eslint: Lint",
    "BUILDKITE_RETRY_COUNT=1",
    "BUILDKITE_COMMIT=83a20ec058e2fb00e7fa4558c4c6e81e2dcf253d",
    "BUILDKITE_BRANCH=main",
    "BUILDKITE_TAG=",
    "BUILDKITE_AGENT_NAME=agent-i-0abc-1",
    NULL,
};

static char *const drone_env[] = {
    BASE,
    "DRONE=true",
    "DRONE_REPO=octocat/hello-world",
    "DRONE_BUILD_NUMBER=8",
    "DRONE_BUILD_LINK=https://drone.company.com/octocat/hello-world/8",
    "DRONE_COMMIT_SHA=bcdd4bf0245c82c060407b3b24b9b87301d15ac1",
    "DRONE_COMMIT_REF=refs/heads/master",
    "DRONE_STAGE_NAME=build",
    "DRONE_STAGE_MACHINE=runner-1",
    "DRONE_STEP_NAME=test",
    "DRONE_SYSTEM_PROTO=https",
    "DRONE_SYSTEM_HOST=drone.company.com",
    NULL,
};

static char *const tekton_env[] = {
    BASE,
    "HOSTNAME=build-and-test-run-x7k2p-pod",
    NULL,
};

static char tekton_root[64];
static char empty_root[64];

static int setup(void **state)
{
	(void)state;
	strcpy(tekton_root, "/tmp/rw-ci-tekton-XXXXXX");
	strcpy(empty_root, "/tmp/rw-ci-empty-XXXXXX");
	if (!mkdtemp(tekton_root) || !mkdtemp(empty_root))
		return -1;
	/* The volumes Tekton mounts into a step container. */
	char p[128];
	const char *dirs[] = {"/tekton",
			      "/tekton/run",
			      "/tekton/run/0",
			      "/tekton/steps",
			      "/tekton/steps/step-unit-test",
			      "/tekton/downward",
			      "/etc"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", tekton_root, dirs[i]);
		if (mkdir(p, 0755) != 0)
			return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	char cmd[256];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", tekton_root, empty_root);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *s(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void expect(json_t *o, const char *k, const char *want)
{
	if (!want) {
		if (!json_is_null(json_object_get(o, k)))
			fail_msg("%s: want null, got %s", k, s(o, k) ? s(o, k) : "(non-string)");
		return;
	}
	if (!s(o, k) || strcmp(s(o, k), want))
		fail_msg("%s: want '%s', got '%s'", k, want, s(o, k) ? s(o, k) : "(null)");
}

/* Every result must survive a dump and reload as strict JSON. */
static void roundtrip(json_t *o)
{
	char *txt = json_dumps(o, JSON_COMPACT);
	json_error_t err;
	json_t *back;

	assert_non_null(txt);
	back = json_loads(txt, 0, &err);
	assert_non_null(back);
	assert_true(json_equal(o, back));
	json_decref(back);
	free(txt);
}

static void test_github(void **state)
{
	(void)state;
	json_t *o = ci_detect(github_env, empty_root);
	expect(o, "provider", "github");
	expect(o, "repository", "octo-org/octo-repo");
	expect(o, "workflow", "CI");
	expect(o, "job", "build");
	expect(o, "run_id", "1658821493");
	expect(o, "run_attempt", "2");
	expect(o, "commit", "ffac537e6cbbf934b08745a378932722df287a53");
	expect(o, "ref", "refs/heads/main");
	expect(o, "runner", "GitHub Actions 2");
	expect(o, "server_url", "https://github.com");
	expect(o, "url", "https://github.com/octo-org/octo-repo/actions/runs/1658821493");
	expect(o, "step", "__run_2");
	assert_int_equal(json_array_size(json_object_get(o, "also_detected")), 0);
	roundtrip(o);
	json_decref(o);
}

static void test_gitlab(void **state)
{
	(void)state;
	json_t *o = ci_detect(gitlab_env, empty_root);
	expect(o, "provider", "gitlab");
	expect(o, "repository", "gitlab-org/gitlab-foss");
	expect(o, "workflow", "nightly");
	expect(o, "job", "rspec:other");
	expect(o, "job_id", "50");
	expect(o, "run_id", "1000");
	expect(o, "run_attempt", NULL);
	expect(o, "commit", "1ecfd275763eff1d6b4844ea3168962458c9f27a");
	expect(o, "ref", "main");
	expect(o, "runner", "shared-runners-manager-6.gitlab.com");
	expect(o, "server_url", "https://gitlab.example.com");
	expect(o, "step", "test");
	json_decref(o);
}

static void test_jenkins(void **state)
{
	(void)state;
	json_t *o = ci_detect(jenkins_env, empty_root);
	expect(o, "provider", "jenkins");
	expect(o, "repository", "https://git.example.org/app.git");
	expect(o, "workflow", "folder/app/main");
	expect(o, "job", "main");
	expect(o, "run_id", "17");
	expect(o, "commit", "9b1c5d7e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c");
	expect(o, "ref", "main");
	expect(o, "runner", "linux-agent-3");
	expect(o, "server_url", "https://ci.example.org/");
	expect(o, "url", "https://ci.example.org/job/folder/job/app/job/main/17/");
	expect(o, "step", "Unit tests");
	json_decref(o);
}

static void test_circleci(void **state)
{
	(void)state;
	json_t *o = ci_detect(circleci_env, empty_root);
	expect(o, "provider", "circleci");
	expect(o, "repository", "acme/rocket");
	expect(o, "workflow", "6c1e4c7a-0a1b-4c6e-9d0c-6a1f6f1e2b3c");
	expect(o, "job", "test");
	expect(o, "run_id", "1234");
	expect(o, "commit", "0123456789abcdef0123456789abcdef01234567");
	expect(o, "ref", "feature/x");
	expect(o, "url", "https://circleci.com/gh/acme/rocket/1234");
	expect(o, "step", NULL); /* CircleCI exports no step name */
	json_decref(o);
}

static void test_azure(void **state)
{
	(void)state;
	json_t *o = ci_detect(azure_env, empty_root);
	expect(o, "provider", "azure");
	expect(o, "repository", "contoso/web");
	expect(o, "workflow", "web-ci");
	expect(o, "job", "Build job");
	expect(o, "run_id", "8812");
	expect(o, "run_attempt", "3");
	expect(o, "commit", "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678");
	expect(o, "ref", "refs/heads/main");
	expect(o, "runner", "Azure Pipelines 3");
	expect(o, "server_url", "https://dev.azure.com/contoso/");
	expect(o, "step", "Build stage");
	json_decref(o);
}

static void test_bitbucket(void **state)
{
	(void)state;
	json_t *o = ci_detect(bitbucket_env, empty_root);
	expect(o, "provider", "bitbucket");
	expect(o, "repository", "team/service");
	expect(o, "job", "{c1d2e3f4-0000-4000-8000-000000000002}");
	expect(o, "run_id", "77");
	expect(o, "run_attempt", "1");
	expect(o, "commit", "abcdefabcdefabcdefabcdefabcdefabcdefabcd");
	expect(o, "ref", "develop");
	expect(o, "step", NULL);
	json_decref(o);
}

static void test_buildkite(void **state)
{
	(void)state;
	json_t *o = ci_detect(buildkite_env, empty_root);
	expect(o, "provider", "buildkite");
	expect(o, "repository", "git@github.com:acme/api.git");
	expect(o, "workflow", "api");
	expect(o, "job", "lint");
	expect(o, "job_id", "01890c2e-6000-4000-8000-000000000003");
	expect(o, "run_id", "1514");
	expect(o, "run_attempt", "1");
	expect(o, "ref", "main"); /* empty BUILDKITE_TAG falls through to the branch */
	expect(o, "runner", "agent-i-0abc-1");
	expect(o, "step", ":eslint: Lint");
	json_decref(o);
}

static void test_drone(void **state)
{
	(void)state;
	json_t *o = ci_detect(drone_env, empty_root);
	expect(o, "provider", "drone");
	expect(o, "repository", "octocat/hello-world");
	expect(o, "job", "build");
	expect(o, "run_id", "8");
	expect(o, "commit", "bcdd4bf0245c82c060407b3b24b9b87301d15ac1");
	expect(o, "ref", "refs/heads/master");
	expect(o, "runner", "runner-1");
	expect(o, "server_url", "https://drone.company.com");
	expect(o, "step", "test");
	json_decref(o);
}

static void test_tekton(void **state)
{
	(void)state;
	json_t *o = ci_detect(tekton_env, tekton_root);
	expect(o, "provider", "tekton");
	expect(o, "runner", "build-and-test-run-x7k2p-pod");
	expect(o, "job", "build-and-test-run-x7k2p");
	json_decref(o);

	/* without HOSTNAME, the pod's /etc/hostname */
	char p[128];
	snprintf(p, sizeof(p), "%s/etc/hostname", tekton_root);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs("lint-run-abcde-pod\n", f);
	fclose(f);
	char *const env[] = {BASE, NULL};
	o = ci_detect(env, tekton_root);
	expect(o, "provider", "tekton");
	expect(o, "job", "lint-run-abcde");
	json_decref(o);
}

static void test_none(void **state)
{
	(void)state;
	char *const env[] = {BASE, "GITHUB_ACTIONS=false", "TF_BUILD=", NULL};
	json_t *o = ci_detect(env, empty_root);
	expect(o, "provider", NULL);
	expect(o, "repository", NULL);
	expect(o, "step", NULL);
	roundtrip(o);
	json_decref(o);
	o = ci_detect((char *const[]){NULL}, NULL);
	expect(o, "provider", NULL);
	json_decref(o);
}

static void test_two_platforms(void **state)
{
	(void)state;
	/* A GitLab job started by Jenkins: both markers; GitLab's is the stronger. */
	char *const env[] = {BASE,
			     "JENKINS_URL=https://j/",
			     "STAGE_NAME=deploy",
			     "GITLAB_CI=true",
			     "CI_JOB_STAGE=build",
			     "CI_PROJECT_PATH=a/b",
			     NULL};
	json_t *o = ci_detect(env, tekton_root);
	json_t *also = json_object_get(o, "also_detected");
	expect(o, "provider", "gitlab");
	expect(o, "step", "build");
	expect(o, "repository", "a/b");
	expect(o, "commit", NULL); /* missing variables stay null */
	assert_int_equal(json_array_size(also), 2);
	assert_string_equal(json_string_value(json_array_get(also, 0)), "jenkins");
	assert_string_equal(json_string_value(json_array_get(also, 1)), "tekton");
	json_decref(o);
}

static void test_duplicate_variable(void **state)
{
	(void)state;
	/* getenv(3) semantics: the first definition wins */
	char *const env[] = {"GITHUB_ACTIONS=true", "GITHUB_JOB=first", "GITHUB_JOB=second", NULL};
	json_t *o = ci_detect(env, empty_root);
	expect(o, "job", "first");
	json_decref(o);
}

static void test_hostile_values(void **state)
{
	(void)state;
	char *const env[] = {
	    "GITHUB_ACTIONS=true",
	    "GITHUB_REPOSITORY=o/r\n::error::forged",
	    "GITHUB_WORKFLOW=\"quoted\" \\ back\tslash\r",
	    "GITHUB_JOB=bad\xff\xfe utf8 \xc0\xaf overlong \xed\xa0\x80 surrogate",
	    "GITHUB_ACTION=\xe2\x80\xae reversed \x1b[31m red",
	    "GITHUB_SHA=caf\xc3\xa9 \xf0\x9f\x94\x92",
	    NULL,
	};
	json_t *o = ci_detect(env, empty_root);
	expect(o, "repository", "o/r ::error::forged");
	expect(o, "workflow", "\"quoted\" \\ back slash ");
	expect(o, "job",
	       "bad\xef\xbf\xbd\xef\xbf\xbd utf8 \xef\xbf\xbd\xef\xbf\xbd overlong "
	       "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd surrogate");
	expect(o, "step", "  reversed  [31m red");
	expect(o, "commit", "caf\xc3\xa9 \xf0\x9f\x94\x92"); /* valid UTF-8 passes */
	roundtrip(o);
	json_decref(o);
}

static void test_long_values(void **state)
{
	(void)state;
	size_t n = 100000;
	char *big = malloc(n + 32);
	assert_non_null(big);
	strcpy(big, "GITHUB_REPOSITORY=");
	size_t off = strlen(big);
	/* multi-byte characters straddling the cut must not be split */
	for (size_t i = 0; i + 2 < n; i += 2) {
		big[off + i] = (char)0xc3;
		big[off + i + 1] = (char)0xa9;
	}
	big[off + n - 2] = '\0';
	char *const env[] = {"GITHUB_ACTIONS=true", big, NULL};
	json_t *o = ci_detect(env, empty_root);
	const char *v = s(o, "repository");
	assert_non_null(v);
	assert_true(strlen(v) <= CI_VALUE_MAX);
	assert_true(strlen(v) >= CI_VALUE_MAX - 2);
	assert_int_equal(strlen(v) % 2, 0);
	roundtrip(o);
	json_decref(o);
	free(big);
}

static char *step_of(const char *block, size_t len)
{
	return ci_step_from_environ(block, len);
}

#define BLOCK(lit) lit, sizeof(lit) - 1

static void test_step_from_environ(void **state)
{
	(void)state;
	struct {
		const char *block;
		size_t len;
		const char *want;
	} cases[] = {
	    {BLOCK("PATH=/bin\0GITHUB_ACTIONS=true\0GITHUB_ACTION=__actions_checkout\0"),
	     "__actions_checkout"},
	    {BLOCK("GITLAB_CI=true\0CI_JOB_STAGE=deploy\0"), "deploy"},
	    {BLOCK("JENKINS_URL=http://j/\0STAGE_NAME=Build\0"), "Build"},
	    {BLOCK("BUILDKITE=true\0BUILDKITE_STEP_KEY=k\0BUILDKITE_LABEL=:hammer: Build\0"),
	     ":hammer: Build"},
	    {BLOCK("TF_BUILD=True\0SYSTEM_STAGENAME=Test\0"), "Test"},
	    {BLOCK("DRONE=true\0DRONE_STEP_NAME=publish\0"), "publish"},
	    /* no terminating NUL on the last entry */
	    {BLOCK("DRONE=true\0DRONE_STEP_NAME=last"), "last"},
	    /* step variable without the platform marker: not trusted to mean anything */
	    {BLOCK("GITHUB_ACTION=__run\0"), NULL},
	    {BLOCK("GITHUB_ACTIONS=true\0"), NULL},
	    {BLOCK("CIRCLECI=true\0CIRCLE_JOB=x\0"), NULL},
	    {BLOCK("GITHUB_ACTIONS=true\0GITHUB_ACTION=\0"), NULL},
	    {BLOCK("GITHUB_ACTIONS=true\0GITHUB_ACTION=a\nb\0"), "a b"},
	    {BLOCK("GITHUB_ACTIONS=true\0GITHUB_ACTION=one\0GITHUB_ACTION=two\0"), "one"},
	    {BLOCK("=\0==\0GITHUB_ACTIONS\0GITHUB_ACTIONS=true\0GITHUB_ACTION=x\0"), "x"},
	    {BLOCK("\0\0\0"), NULL},
	    {"", 0, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = step_of(cases[i].block, cases[i].len);
		if (!cases[i].want) {
			if (got)
				fail_msg("case %zu: want NULL, got '%s'", i, got);
		} else if (!got || strcmp(got, cases[i].want)) {
			fail_msg("case %zu: want '%s', got '%s'", i, cases[i].want,
				 got ? got : "(null)");
		}
		free(got);
	}
	assert_null(ci_step_from_environ(NULL, 10));
}

static void test_step_bounded(void **state)
{
	(void)state;
	/* The block is longer than CI_ENVIRON_MAX: what lies beyond is not read. */
	size_t len = CI_ENVIRON_MAX + 4096;
	char *b = malloc(len);
	assert_non_null(b);
	memset(b, 'A', len);
	const char head[] = "GITHUB_ACTIONS=true";
	memcpy(b, head, sizeof(head)); /* includes the NUL */
	const char tail[] = "GITHUB_ACTION=beyond";
	memcpy(b + CI_ENVIRON_MAX + 10, tail, sizeof(tail));
	b[CI_ENVIRON_MAX + 9] = '\0';
	assert_null(ci_step_from_environ(b, len));

	/* an over-long step value is cut to CI_VALUE_MAX */
	memset(b, 'x', len);
	memcpy(b, head, sizeof(head));
	memcpy(b + sizeof(head), "GITHUB_ACTION=", 14);
	b[100000] = '\0';
	char *got = ci_step_from_environ(b, 100001);
	assert_non_null(got);
	assert_int_equal(strlen(got), CI_VALUE_MAX);
	free(got);
	free(b);
}

/* Detection, step labels and control-plane lists come from one table: for every platform and
 * every marker it has, the step the job context names is the step a process's environment
 * gives, and the platform has a control-plane entry (possibly empty). */
static void test_one_table(void **state)
{
	(void)state;
	for (int p = 0; p < CI_PLATFORM_COUNT; p++) {
		const struct ci_platform_def *d = &ci_platforms[p];

		assert_non_null(ci_control_plane_hosts(d->name));
		for (int m = 0; m < 2 && d->marker[m]; m++) {
			char mk[128], st[128], block[256];
			char *const envp[] = {mk, st, NULL};
			json_t *o;
			char *label;
			size_t n;

			snprintf(mk, sizeof(mk), "%s=%s", d->marker[m],
				 d->mark == CI_MARK_TRUE ? "True" : "https://ci.example.test/");
			snprintf(st, sizeof(st), "%s=stage-%d", d->step[0] ? d->step[0] : "NO_STEP",
				 p);
			o = ci_detect(envp, empty_root);
			assert_string_equal(json_string_value(json_object_get(o, "provider")),
					    d->name);
			n = (size_t)snprintf(block, sizeof(block), "%s%c%s%c", mk, 0, st, 0);
			label = ci_step_from_environ(block, n);
			if (d->step[0]) {
				assert_non_null(label);
				assert_string_equal(label,
						    json_string_value(json_object_get(o, "step")));
			} else {
				assert_null(label);
				assert_true(json_is_null(json_object_get(o, "step")));
			}
			free(label);
			json_decref(o);
		}
	}
}

static void test_control_plane(void **state)
{
	(void)state;
	assert_true(ci_control_plane_match("github", "github.com"));
	assert_true(ci_control_plane_match("github", "GitHub.COM."));
	assert_true(ci_control_plane_match("github", "pipelines.actions.githubusercontent.com"));
	assert_true(
	    ci_control_plane_match("github", "results-receiver.actions.githubusercontent.com"));
	assert_true(
	    ci_control_plane_match("github", "productionresultssa12.blob.core.windows.net"));
	/* label boundaries */
	assert_false(ci_control_plane_match("github", "evilgithub.com"));
	assert_false(ci_control_plane_match("github", "github.com.evil.net"));
	assert_false(ci_control_plane_match("github", "evilactions.githubusercontent.com"));
	assert_false(ci_control_plane_match("github", "a.b.actions.githubusercontent.com"));
	assert_false(ci_control_plane_match("github", "actions.githubusercontent.com"));
	assert_false(ci_control_plane_match("github", "attacker.blob.core.windows.net"));
	assert_false(
	    ci_control_plane_match("github", "x.productionresultssa1.blob.core.windows.net"));
	assert_false(ci_control_plane_match("github", ".actions.githubusercontent.com"));
	assert_false(ci_control_plane_match("github", "a..actions.githubusercontent.com"));
	assert_false(ci_control_plane_match("github", "gist.github.com")); /* not the runner's */
	assert_false(ci_control_plane_match("github", "github.com\n"));
	assert_false(ci_control_plane_match("github", ""));
	assert_false(ci_control_plane_match("github", NULL));
	/* per provider */
	assert_false(ci_control_plane_match("gitlab", "github.com"));
	assert_true(ci_control_plane_match("gitlab", "gitlab.com"));
	assert_true(ci_control_plane_match("azure", "dev.azure.com"));
	assert_true(ci_control_plane_match("azure", "contoso.visualstudio.com"));
	assert_true(ci_control_plane_match("buildkite", "agent.buildkite.com"));
	assert_true(ci_control_plane_match("circleci", "runner.circleci.com"));
	assert_true(ci_control_plane_match("bitbucket", "api.bitbucket.org"));
	assert_false(ci_control_plane_match("jenkins", "ci.example.org"));
	assert_false(ci_control_plane_match("nonesuch", "github.com"));
	assert_false(ci_control_plane_match(NULL, "github.com"));
	/* a 300-byte name is not a DNS name */
	char longname[301];
	memset(longname, 'a', 300);
	longname[300] = '\0';
	assert_false(ci_control_plane_match("github", longname));
	assert_non_null(ci_control_plane_hosts("tekton"));
	assert_null(ci_control_plane_hosts("nonesuch"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_github),
	    cmocka_unit_test(test_gitlab),
	    cmocka_unit_test(test_jenkins),
	    cmocka_unit_test(test_circleci),
	    cmocka_unit_test(test_azure),
	    cmocka_unit_test(test_bitbucket),
	    cmocka_unit_test(test_buildkite),
	    cmocka_unit_test(test_drone),
	    cmocka_unit_test(test_tekton),
	    cmocka_unit_test(test_none),
	    cmocka_unit_test(test_two_platforms),
	    cmocka_unit_test(test_duplicate_variable),
	    cmocka_unit_test(test_hostile_values),
	    cmocka_unit_test(test_long_values),
	    cmocka_unit_test(test_step_from_environ),
	    cmocka_unit_test(test_step_bounded),
	    cmocka_unit_test(test_control_plane),
	    cmocka_unit_test(test_one_table),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
