#!/usr/bin/env bash
# GitHub self-hosted runner hook (ACTIONS_RUNNER_HOOK_JOB_STARTED): arms runwarden for the whole
# job before its first step. Install with, in the runner's .env:
#   ACTIONS_RUNNER_HOOK_JOB_STARTED=/opt/runwarden/hooks/job-started.sh
#   ACTIONS_RUNNER_HOOK_JOB_COMPLETED=/opt/runwarden/hooks/job-completed.sh
# The runner user needs passwordless sudo for `runwarden job start/stop` only (or run the
# agent with its control socket group set to the runner's group).
#
# Settings come from /etc/runwarden/hook.env (root-owned), never from the job: a workflow can
# set any variable it likes for its own steps, and must not be able to weaken its own fence.
set -euo pipefail
conf=/etc/runwarden/hook.env
RUNWARDEN_MODE=observe
RUNWARDEN_POLICY=
RUNWARDEN_OUT_ROOT=/var/lib/runwarden/jobs
# shellcheck disable=SC1090
[ -r "$conf" ] && . "$conf"

sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

# Labels only: the run id names the evidence directory, it grants nothing.
id="${GITHUB_RUN_ID:-manual}-${GITHUB_RUN_ATTEMPT:-1}-${GITHUB_JOB:-job}"
id="${id//[^A-Za-z0-9._-]/_}"
out="$RUNWARDEN_OUT_ROOT/$id"
# $PPID is the runner worker that runs this hook and then every step: it goes under watch.
args=(job start --pid "$PPID" --out "$out" --mode "$RUNWARDEN_MODE")
[ -n "$RUNWARDEN_POLICY" ] && args+=(--policy "$RUNWARDEN_POLICY")
echo "runwarden: arming for job $id (mode $RUNWARDEN_MODE)"
sudo_ runwarden "${args[@]}"
