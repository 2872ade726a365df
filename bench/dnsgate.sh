#!/usr/bin/env bash
# DNS gate micro-benchmark: added latency (p50/p99) and throughput of the gate in front of a
# dnsmasq on loopback, against querying that dnsmasq directly. Builds its own small binary
# (the gate and nothing else) under $B/bench so it does not depend on the rest of the tree.
#   bench/dnsgate.sh [QUERIES [WINDOW [SECONDS]]]      (B=build-dir, default build)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}
CC=${CC:-cc}
out=$B/bench/dnsgate_bench
mkdir -p "$B/bench"
$CC -O2 -g -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc -o "$out" \
	bench/dnsgate_bench.c src/gate/*.c -lresolv -lpthread

# A loopback address of our own, so a resolver on 127.0.0.1:53 is never in the way.
addr=127.0.53.$((RANDOM % 200 + 20))
port=$(python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$addr")
dnsmasq --no-daemon --no-resolv --no-hosts --bind-interfaces --user=root --pid-file= \
	--listen-address="$addr" --port="$port" --log-facility=/dev/null \
	--host-record=allowed.test,127.0.10.1,fd00::10:1,300 2>/dev/null &
dm=$!
trap 'kill $dm 2>/dev/null; wait $dm 2>/dev/null || true' EXIT
for _ in $(seq 50); do
	dig +short +time=1 +tries=1 @"$addr" -p "$port" allowed.test >/dev/null 2>&1 && break
	sleep 0.1
done
"$out" "$addr" "$port" allowed.test "${1:-20000}" "${2:-32}" "${3:-3}"
