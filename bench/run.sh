#!/usr/bin/env bash
# Runs the benchmarks and prints their tables, each figure as a ratio or a difference against
# the same work bare measured in the same run, with the command that produced it (record them
# in docs/performance.md with the date and commit).
#
#   bench/run.sh MODE [REPS]
#
#   goals     every figure issue #10 asks for: arm, short, large, capacity (with the
#             collector's profile) and rss
#   arm       `run -- true`: cold, private, warm (resident kernel side) and a job of 30
#             back-to-back steps (bench/arm.py)
#   short     the short storm: 2,000 loopback connects, 400 execs, 10,000 opens (bench.py)
#   large     ten times that: 20,000 / 4,000 / 100,000
#   storm     the older table's storm: 20,000 / 5,000 / 50,000
#   capacity  sustained event rate at the first lost record, collector CPU per event
#   profile   capacity plus a perf profile of the collector at PROFILE_RATE (default 200000)
#   rss       runwarden's memory over a steady job, 5 minutes (LONG=1: an hour)
#   build     a real build (busybox), bare / observe / enforce / strace / bpftrace
#   latency   per-connect latency against policy size
#   tls       HTTP inside TLS (#12): 1,000-request keep-alive HTTPS loops (Python/OpenSSL and a
#             GnuTLS client) and 256 MB downloads and uploads, under run against bare
#             (bench/tls_loop.py)
#   all       everything above
#
# Environment: B (build dir, default build), RW (binary, default $B/runwarden), RW_ARGS (extra
# `run` options, e.g. "--kernel private"), LONG=1 (rss for an hour). Root. The machine should
# be quiet: these are ratios against bare runs of the same session, but a busy machine widens
# them. The build benchmark fetches busybox's source from the Debian mirror apt is configured
# with, through a private source list; nothing is installed system-wide.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-goals}
reps=${2:-5}
B=${B:-build}
export RW=${RW:-$PWD/$B/runwarden}
mkdir -p "$B/bench"
for t in storm connect_lat capacity steady; do
  cc -O2 -Wall -Wextra -Werror -o "$B/bench/$t" "bench/$t.c" -lpthread
done
scripts/deps.sh bench
export CAPACITY="$PWD/$B/bench/capacity" STEADY="$PWD/$B/bench/steady"

echo "bench: $(date -u +%FT%TZ), $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+changes'), $RW, load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"

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

storm() { /usr/bin/python3 bench/bench.py "$1" --reps "$reps" --storm "$PWD/$B/bench/storm" --skip strace --skip bpftrace; }
want() { case " $* " in *" $what "*) return 0 ;; esac; [ "$what" = all ]; }

want arm goals && /usr/bin/python3 bench/arm.py --reps "$((reps * 2))"
want short goals && storm short
want large goals && storm large
if want storm; then
  /usr/bin/python3 bench/bench.py storm --reps "$reps" --storm "$PWD/$B/bench/storm"
fi
want capacity && /usr/bin/python3 bench/capacity.py
want profile goals && /usr/bin/python3 bench/capacity.py --profile "${PROFILE_RATE:-200000}"
want rss goals && /usr/bin/python3 bench/rss.py
if want build; then
  src=$(fetch_busybox)
  /usr/bin/python3 bench/bench.py build --src "$PWD/$src" --reps "$reps"
fi
if want latency; then
  /usr/bin/python3 bench/connect_latency.py --reps "$reps"
fi
if want tls; then
  for c in python gnutls; do
    /usr/bin/python3 bench/tls_loop.py --client "$c" --rounds "$((reps * 2 + 1))"
    for w in down up; do
      /usr/bin/python3 bench/tls_loop.py --client "$c" --work "$w" --mb 256 --rounds "$reps"
    done
  done
fi
