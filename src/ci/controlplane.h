/*
 * The hosts a CI runner itself talks to (its control plane: job assignment,
 * logs, artifacts, caches, self-update), per platform, so the evidence can
 * label those connections "ci-control-plane" instead of mixing them with what
 * the job did. docs/ci.md lists the hosts and their sources.
 *
 * A name match is necessary, not sufficient: the caller must also know the
 * connection came from the runner's own processes (outside the job's scope)
 * and that the name came from a resolution it observed. A job step talking to
 * github.com is still the job's traffic, and still under its policy.
 */
#ifndef RW_CI_CONTROLPLANE_H
#define RW_CI_CONTROLPLANE_H
#include <stdbool.h>

#define CI_CONTROL_PLANE_LABEL "ci-control-plane"

/*
 * True when host (case-insensitive, one trailing dot allowed) is one of
 * provider's control-plane hosts. Patterns: exact names, and '*' matching
 * within one DNS label only ("*.actions.githubusercontent.com" admits
 * "pipelines.actions.githubusercontent.com", never "a.b.actions..." nor
 * "evilactions.githubusercontent.com"). Unknown provider or NULL: false.
 */
bool ci_control_plane_match(const char *provider, const char *host);

/* The pattern list for provider (NULL-terminated), or NULL if unknown. */
const char *const *ci_control_plane_hosts(const char *provider);

#endif
