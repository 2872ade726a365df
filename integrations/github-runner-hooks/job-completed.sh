#!/usr/bin/env bash
# GitHub self-hosted runner hook (ACTIONS_RUNNER_HOOK_JOB_COMPLETED): ends the job scope armed
# by job-started.sh, writes the evidence and the job summary. A non-zero exit from
# `runwarden job stop` (policy violation, incomplete record) fails the job.
set -euo pipefail
conf=/etc/runwarden/hook.env
RUNWARDEN_OUT_ROOT=/var/lib/runwarden/jobs
# shellcheck disable=SC1090
[ -r "$conf" ] && . "$conf"

sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

id="${GITHUB_RUN_ID:-manual}-${GITHUB_RUN_ATTEMPT:-1}-${GITHUB_JOB:-job}"
id="${id//[^A-Za-z0-9._-]/_}"
out="$RUNWARDEN_OUT_ROOT/$id"
rc=0
sudo_ runwarden job stop || rc=$?
if [ -d "$out" ]; then
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    sudo_ runwarden report "$out" --github-summary "$GITHUB_STEP_SUMMARY" || true
  else
    sudo_ runwarden report "$out" || true
  fi
fi
exit "$rc"
