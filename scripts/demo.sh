#!/usr/bin/env bash
# The built-in demo: a small "CI job" that does one of everything runwarden
# watches for, against servers this script starts on loopback only:
# a resolver (dnsmasq, 127.0.53.1) that knows *.demo.test, an HTTP server
# (127.0.20.1:8080) and a UDP sink. Then it shows the evidence.
set -euo pipefail
RW=$(realpath "${1:-build/runwarden}")
OUT=${OUT:-runwarden-out}
# runwarden only writes into a directory it creates (an existing one is refused): clear a
# previous demo's, complete or cut short, but nothing that is not runwarden's.
if [ -e "$OUT" ]; then
  if [ -d "$OUT" ] && ! find "$OUT" -mindepth 1 -maxdepth 1 ! \( -name '*.ndjson' -o \
      -name '*.json' -o -name '*.html' -o -name '*.pub' -o -name '*.yaml' \) | grep -q .; then
    rm -rf "$OUT"
  else
    echo "runwarden demo: $OUT exists and is not a previous demo's evidence; remove it or set OUT" >&2
    exit 1
  fi
fi
work=$(mktemp -d /tmp/runwarden-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

dnsmasq --no-daemon -C /dev/null --no-resolv --no-hosts --bind-interfaces \
  --listen-address=127.0.53.1 --port=53 --pid-file= --user=root \
  --address=/api.demo.test/127.0.20.1 --address=/cdn.demo.test/127.0.20.2 \
  >/dev/null 2>&1 &
pids+=($!)
mkdir -p "$work/www" && echo "hello from the demo server" > "$work/www/index.html"
/usr/bin/python3 -m http.server 8080 --bind 127.0.20.1 --directory "$work/www" >/dev/null 2>&1 &
pids+=($!)
dnsmasq_pid=${pids[0]}
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.20.1/8080) 2>/dev/null && (exec 3<>/dev/tcp/127.0.53.1/53) 2>/dev/null && break
  sleep 0.1
done
if ! kill -0 "$dnsmasq_pid" 2>/dev/null; then
  echo "runwarden demo: the demo resolver could not start (is something else on 127.0.53.1:53?)" >&2
  exit 1
fi

# A throwaway HOME with credentials the job should not touch.
mkdir -p "$work/home/.ssh"
echo "demo key, not real" > "$work/home/.ssh/id_rsa"
echo "//registry.demo.test/:_authToken=demo" > "$work/home/.npmrc"
chmod 600 "$work/home/.ssh/id_rsa"

cat > "$work/job.sh" <<'JOB'
#!/bin/sh
# What a build step might do, honest and otherwise.
set -e
echo "== resolving api.demo.test"
dig +short @127.0.53.1 api.demo.test
echo "== fetching from it"
/usr/bin/python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.20.1:8080/", timeout=5).read().decode().strip())'
echo "== a UDP datagram"
/usr/bin/python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"ping", ("127.0.20.2", 9999))'
echo "== reading credentials it should not"
cat "$HOME/.npmrc" > /dev/null
cat "$HOME/.ssh/id_rsa" > /dev/null
echo "== a background process that outlives the step"
(setsid sh -c 'sleep 0.5; cat "$HOME/.ssh/id_rsa" >/dev/null' &)
echo "== done"
JOB
chmod +x "$work/job.sh"

# A signing key the job cannot read (root-owned, 0600, outside the job's HOME).
mkdir -m 700 "$work/keys"
"$RW" keygen --out "$work/keys/demo" >/dev/null

echo "runwarden demo: running the job under 'runwarden run' (evidence in $OUT/)"
HOME="$work/home" "$RW" run --out "$OUT" --step demo --grace 3 --key "$work/keys/demo.key" \
  -- "$work/job.sh"
echo
echo "runwarden demo: first events of $OUT/events.ndjson:"
head -n 3 "$OUT/events.ndjson" | cut -c1-300
echo
echo "runwarden demo: verifying the signed evidence offline with the pinned public key:"
cp "$work/keys/demo.pub" "$OUT/demo-signing-key.pub"
"$RW" verify --key "$OUT/demo-signing-key.pub" "$OUT/attestation.dsse.json"
"$RW" report "$OUT" --html "$OUT/report.html" >/dev/null
echo "runwarden demo: HTML report: $OUT/report.html"
