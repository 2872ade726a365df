#!/usr/bin/env bash
# Installs the Debian packages runwarden needs to build, test and demo, and only those
# that are missing, so repeated `make` runs cost nothing. Run as root on Debian 12.
set -euo pipefail

build_pkgs=(clang llvm make gcc pkg-config libbpf-dev bpftool libelf-dev zlib1g-dev libnghttp2-dev
            libjansson-dev libyaml-dev libssl-dev libcurl4-openssl-dev libgit2-dev
            libsqlite3-dev libpq-dev)
# The multi-pattern matcher for secrets (src/secrets/): Hyperscan where Debian builds it (amd64
# only: it needs SSSE3), its portable fork Vectorscan elsewhere (arm64, ppc64el: same API).
if [ "$(dpkg --print-architecture 2>/dev/null || echo amd64)" = amd64 ]; then
  build_pkgs+=(libhyperscan-dev)
else
  build_pkgs+=(libvectorscan-dev)
fi
demo_pkgs=(dnsmasq-base bind9-dnsutils python3)
test_pkgs=(libcmocka-dev liburing-dev dnsmasq-base bind9-dnsutils iproute2 nftables
           python3 python3-cryptography libclang-rt-14-dev nghttp2-server
           chromium debhelper dpkg-dev nodejs cppcheck clang-format man-db
           sudo npm python3-pip python3-yaml busybox-static git wget curl postgresql
           docker.io containerd runc docker-compose podman uidmap)
# docker.io, containerd, runc, docker-compose: tests/e2e/test_engine.py starts a real dockerd
# of its own (own data root and socket, no bridge NAT); nothing is started at install time.
# podman: tests/e2e/test_podman.py (rootful, own storage root, cgroupfs manager; and rootless:
# uidmap for its newuidmap/newgidmap).
# bench/run.sh: the peers it compares with, and perf for the collector's profile.
# libgnutls28-dev: bench/tls_gnutls_client.c (bench/tls_loop.py --client gnutls).
bench_pkgs=(gcc python3 strace bpftrace linux-perf libgnutls28-dev)

want=("${build_pkgs[@]}")
case "${1:-build}" in
  build) ;;
  demo)  want+=("${demo_pkgs[@]}") ;;
  test)  want+=("${demo_pkgs[@]}" "${test_pkgs[@]}") ;;
  bench) want+=("${bench_pkgs[@]}") ;;
  *) echo "deps.sh: unknown set '$1' (build|demo|test|bench)" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  # NodeSource's nodejs ships npm itself (and conflicts with Debian's npm package).
  [ "$p" = npm ] && command -v npm >/dev/null && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages (${missing[*]}); run as root or install them" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
  { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
