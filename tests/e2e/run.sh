#!/usr/bin/env bash
# Runs every end-to-end test. A skip is a failure here: `make check` installs
# everything the tests need, so a skipped test would be a feature nobody checked.
set -uo pipefail
cd "$(dirname "$0")"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
/usr/bin/python3 -m unittest discover -v -s . -p "test_*.py" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || exit "$rc"
if grep -E "\.\.\. skipped" "$log"; then
  echo "e2e: the tests above were skipped; make check must run them all" >&2
  exit 1
fi
