/*
 * The CI platforms runwarden knows, defined once: detection (ci_detect), per-process step
 * labels (ci_step_from_environ) and control-plane host lists (ci_control_plane_match) are all
 * generated from this table, so a platform cannot be known to one and missing from another.
 * docs/ci.md describes each one for people.
 *
 * X(ID, name, marker kind, marker, other marker, step variable, other step variable)
 *   marker kind: CI_MARK_TRUE (the variable is "true", any case), CI_MARK_SET (non-empty), or
 *   CI_MARK_PROBE (no variable: detect.c probes files); first non-empty step variable wins.
 * Order is precedence: when several platforms' markers are present, the first wins.
 */
#ifndef RW_CI_PLATFORMS_H
#define RW_CI_PLATFORMS_H

enum ci_mark { CI_MARK_TRUE, CI_MARK_SET, CI_MARK_PROBE };

#define CI_PLATFORMS(X)                                                                            \
	X(GITHUB, "github", CI_MARK_TRUE, "GITHUB_ACTIONS", NULL, "GITHUB_ACTION", NULL)           \
	X(GITLAB, "gitlab", CI_MARK_TRUE, "GITLAB_CI", NULL, "CI_JOB_STAGE", NULL)                 \
	X(BUILDKITE, "buildkite", CI_MARK_TRUE, "BUILDKITE", NULL, "BUILDKITE_LABEL",              \
	  "BUILDKITE_STEP_KEY")                                                                    \
	X(CIRCLECI, "circleci", CI_MARK_TRUE, "CIRCLECI", NULL, NULL, NULL)                        \
	/* "True" on Azure: markers compare without case */                                        \
	X(AZURE, "azure", CI_MARK_TRUE, "TF_BUILD", NULL, "SYSTEM_STAGEDISPLAYNAME",               \
	  "SYSTEM_STAGENAME")                                                                      \
	X(BITBUCKET, "bitbucket", CI_MARK_SET, "BITBUCKET_BUILD_NUMBER", NULL, NULL, NULL)         \
	X(DRONE, "drone", CI_MARK_TRUE, "DRONE", NULL, "DRONE_STEP_NAME", NULL)                    \
	X(JENKINS, "jenkins", CI_MARK_SET, "JENKINS_URL", "HUDSON_URL", "STAGE_NAME", NULL)        \
	/* Tekton sets no variables of its own: the step containers' volumes give it away */       \
	X(TEKTON, "tekton", CI_MARK_PROBE, NULL, NULL, NULL, NULL)

enum ci_platform {
#define CI_ENUM_(id, ...) CI_##id,
	CI_PLATFORMS(CI_ENUM_)
#undef CI_ENUM_
	    CI_PLATFORM_COUNT
};

struct ci_platform_def {
	const char *name;
	enum ci_mark mark;
	const char *marker[2]; /* NULL-padded */
	const char *step[2];   /* NULL-padded */
};

/* Indexed by enum ci_platform (defined in detect.c). */
extern const struct ci_platform_def ci_platforms[CI_PLATFORM_COUNT];

#endif
