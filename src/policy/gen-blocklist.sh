#!/bin/sh
# Regenerates src/policy/blocklist_data.c (the compiled-in fallback block list) from
# data/blocklist.txt. Run from the repository root after editing the data file:
#   sh src/policy/gen-blocklist.sh > src/policy/blocklist_data.c
# tests/unit/test_policy_blocklist.c fails while the two differ.
set -eu
in=${1:-data/blocklist.txt}
cat <<'HDR'
/*
 * GENERATED from data/blocklist.txt by src/policy/gen-blocklist.sh; do not edit. The compiled-in
 * fallback block list, used when no installed copy exists (see docs/policy.md).
 */
#include "policy/policy.h"

/* clang-format off */
const char policy_blocklist_builtin[] =
HDR
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/\t"/' -e 's/$/\\n"/' "$in"
printf '\t"";\n/* clang-format on */\n'
