#!/bin/sh
# Pins release artifacts into the GitHub Action (docs/release.md): for each
# runwarden-VERSION-linux-ARCH.tar.gz.sha256 that `make dist` wrote, records ARCH's sha256 in
# action/release.json (or FILE with -o), which the action's `pre` checks every download against.
#   scripts/stamp-action.sh [-o FILE] build/dist/runwarden-*.tar.gz.sha256 ...
set -eu
out=$(dirname "$0")/../action/release.json
if [ "${1:-}" = -o ]; then
	out=$2
	shift 2
fi
[ $# -ge 1 ] || { echo "usage: $0 [-o FILE] SHA256FILE..." >&2; exit 2; }
version='' entries=''
for f in "$@"; do
	line=$(cat -- "$f")
	sum=${line%% *}
	name=${line##* }
	name=${name#\*}
	echo "$sum" | grep -Eqx '[0-9a-f]{64}' || { echo "$f: no sha256" >&2; exit 1; }
	v=$(echo "$name" | sed -n 's/^runwarden-\([0-9A-Za-z.+~-]*\)-linux-\([a-z0-9_]*\)\.tar\.gz$/\1/p')
	arch=$(echo "$name" | sed -n 's/^runwarden-\([0-9A-Za-z.+~-]*\)-linux-\([a-z0-9_]*\)\.tar\.gz$/\2/p')
	if [ -z "$v" ] || [ -z "$arch" ]; then
		echo "$f: '$name' is not runwarden-VERSION-linux-ARCH.tar.gz" >&2
		exit 1
	fi
	[ -z "$version" ] || [ "$version" = "$v" ] || { echo "$f: version $v, others $version" >&2; exit 1; }
	version=$v
	entries="$entries${entries:+,
}    \"$arch\": {\"sha256\": \"$sum\"}"
done
printf '{\n  "version": "%s",\n  "artifacts": {\n%s\n  }\n}\n' "$version" "$entries" >"$out.tmp"
mv "$out.tmp" "$out"
echo "stamped $out: version $version" >&2
