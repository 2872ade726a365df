#!/usr/bin/env bash
# Runs both benchmarks and prints their tables (record them in docs/performance.md).
#   bench/run.sh [storm|build|latency|capacity|all] [REPS]
# The build benchmark compiles busybox (about 500 C files) fetched from the Debian
# mirror apt is configured with, through a private source list; nothing is installed
# system-wide.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
reps=${2:-5}
B=${B:-build}
mkdir -p "$B/bench"
cc -O2 -Wall -Wextra -Werror -o "$B/bench/storm" bench/storm.c -lpthread
cc -O2 -Wall -Wextra -Werror -o "$B/bench/connect_lat" bench/connect_lat.c -lpthread
cc -O2 -Wall -Wextra -Werror -o "$B/bench/capacity" bench/capacity.c -lpthread
command -v strace >/dev/null || apt-get install -y --no-install-recommends strace >/dev/null
command -v bpftrace >/dev/null || apt-get install -y --no-install-recommends bpftrace >/dev/null

fetch_busybox() {
  local d="$B/bench/src"
  if [ ! -f "$d/busybox/.config" ]; then
    mkdir -p "$d/lists/partial"
    # The mirror and release come from apt's own configuration, never a hard-coded host.
    local codename mirror
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Identifier: Packages' |
      awk -v c="$codename" '$2 == c { print $1; exit }')
    [ -n "$mirror" ] || { echo "bench: no apt source for $codename to fetch busybox from" >&2; exit 1; }
    echo "deb-src $mirror $codename main" > "$d/sources.list"
    local o=(-q -o "Dir::Etc::SourceList=$PWD/$d/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o "Dir::State::Lists=$PWD/$d/lists")
    apt-get "${o[@]}" update >/dev/null
    (cd "$d" && apt-get "${o[@]}" source --download-only busybox >/dev/null 2>&1)
    rm -rf "$d/busybox" && mkdir "$d/busybox"
    tar xjf "$d"/busybox_*.orig.tar.bz2 -C "$d/busybox" --strip-components=1
    # tc does not build against bookworm's kernel headers; everything else is defconfig.
    (cd "$d/busybox" && make defconfig >/dev/null 2>&1 &&
      sed -i 's/^CONFIG_TC=y/# CONFIG_TC is not set/' .config)
  fi
  echo "$d/busybox"
}

[ "$what" = storm ] || [ "$what" = all ] && /usr/bin/python3 bench/bench.py storm --reps "$reps" --storm "$B/bench/storm"
if [ "$what" = build ] || [ "$what" = all ]; then
  src=$(fetch_busybox)
  /usr/bin/python3 bench/bench.py build --src "$PWD/$src" --reps "$reps"
fi
if [ "$what" = latency ] || [ "$what" = all ]; then
  /usr/bin/python3 bench/connect_latency.py --reps "$reps"
fi
if [ "$what" = capacity ] || [ "$what" = all ]; then
  CAPACITY="$PWD/$B/bench/capacity" /usr/bin/python3 bench/capacity.py
fi
