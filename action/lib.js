// Shared glue for the action's pre/main/post scripts: inputs, state, workflow commands, the
// pinned release artifact (download, install), and running its root helper (through sudo when
// the runner user is not root). Node built-ins only.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const crypto = require('crypto');

// GitHub passes input "allowed-endpoints" as INPUT_ALLOWED-ENDPOINTS (spaces become _, hyphens stay).
function input(name) {
  const v = process.env['INPUT_' + name.replace(/ /g, '_').toUpperCase()];
  return (v || '').trim();
}

// A mistake in the workflow's inputs: reported as is, without the action's prefix.
class InputError extends Error {}

// YAML 1.2 core booleans, as actions/toolkit's getBooleanInput reads them.
function boolInput(name) {
  const v = input(name);
  if (['', 'false', 'False', 'FALSE'].includes(v)) return false;
  if (['true', 'True', 'TRUE'].includes(v)) return true;
  throw new InputError(`${name}: '${v}' is not true or false`);
}

// Workflow command data escaping (actions/toolkit): %, CR and LF.
function escapeData(s) {
  return String(s).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function command(name, msg) {
  process.stdout.write('::' + name + '::' + escapeData(msg) + os.EOL);
}

// Appends NAME<<DELIM ... DELIM to a runner file command (GITHUB_STATE, GITHUB_ENV); the random
// delimiter means no value can end the block early.
function fileCommand(envName, key, value) {
  const file = process.env[envName];
  if (!file) throw new Error(envName + ' is not set: not running under a GitHub runner?');
  const delim = 'ghadelimiter_' + crypto.randomUUID();
  if (String(value).includes(delim)) throw new Error('value contains the delimiter');
  fs.appendFileSync(file, `${key}<<${delim}${os.EOL}${value}${os.EOL}${delim}${os.EOL}`);
}

function saveState(key, value) {
  fileCommand('GITHUB_STATE', key, value);
}

function setOutput(key, value) {
  fileCommand('GITHUB_OUTPUT', key, value);
}

function getState(key) {
  return process.env['STATE_' + key] || '';
}

function needSudo() {
  return typeof process.getuid === 'function' && process.getuid() !== 0;
}

function asRoot(argv) {
  return needSudo() ? ['sudo', '-n', '--', ...argv] : argv;
}

// Runs argv (as root through sudo if asked), stdio inherited so the log shows it; returns the
// exit status.
function run(argv, opts = {}) {
  const full = opts.root ? asRoot(argv) : argv;
  process.stdout.write('[runwarden-action] ' + full.join(' ') + os.EOL);
  const r = spawnSync(full[0], full.slice(1), { stdio: 'inherit', env: process.env });
  if (r.error) {
    command('error', `could not run ${full[0]}: ${r.error.message}`);
    return 127;
  }
  return r.status === null ? 128 : r.status;
}

// ------------------------------------------------------------ the release artifact

const MAX_ARTIFACT = 64 << 20;
const DEFAULT_INSTALL = '/opt/runwarden';
const ARCH = { x64: 'x86_64', arm64: 'aarch64' };

// What the release process stamped into the action (scripts/stamp-action.sh): the version
// and the sha256 of each architecture's artifact. Nothing unstamped is ever installed.
function release() {
  const file = path.join(__dirname, 'release.json');
  const rel = JSON.parse(fs.readFileSync(file, 'utf8'));
  const arch = ARCH[process.arch];
  if (!arch) throw new Error(`no runwarden release for ${process.arch}`);
  const a = (rel.artifacts || {})[arch];
  if (!a || !/^[0-9a-f]{64}$/.test(a.sha256 || '') || !/^[0-9A-Za-z.+~-]+$/.test(rel.version || ''))
    throw new Error(`${file} pins no artifact for ${arch}: this copy of the action was not stamped by a release (docs/release.md)`);
  return { version: rel.version, arch, sha256: a.sha256, name: `runwarden-${rel.version}-linux-${arch}.tar.gz` };
}

// The GitHub release of the action's own repository and version.
function defaultArtifactUrl(rel) {
  const repo = process.env.GITHUB_ACTION_REPOSITORY;
  if (!repo || !/^[\w.-]+\/[\w.-]+$/.test(repo))
    throw new InputError('artifact-url is not set and GITHUB_ACTION_REPOSITORY names no repository');
  const server = process.env.GITHUB_SERVER_URL || 'https://github.com';
  return `${server}/${repo}/releases/download/v${rel.version}/${rel.name}`;
}

// The whole artifact in memory, at most max bytes: what is hashed is exactly what is installed
// (no file in between that anything could swap).
async function download(url, max) {
  const res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(120000) });
  if (!res.ok) throw new Error(`artifact ${url}: HTTP ${res.status}`);
  const parts = [];
  let n = 0;
  for await (const chunk of res.body) {
    n += chunk.length;
    if (n > max) throw new Error(`artifact ${url}: larger than ${max} bytes`);
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

// As root: unpack into BASE/<sha256 prefix> through a fresh directory, after checking that no
// one but root can write BASE or any directory above it. The tarball arrives on stdin.
const INSTALL_SH = `set -eu
umask 022
base=$1 dest=$2
mkdir -p -m 0755 "$base"
d=$base
while :; do
  set -- $(stat -L -c '%u %a' "$d")
  if [ "$1" != 0 ] || [ $(( 0$2 & 022 )) -ne 0 ]; then
    echo "runwarden: $d is not root-owned or is writable by others: not installing there" >&2
    exit 1
  fi
  [ "$d" = / ] && break
  d=$(dirname "$d")
done
tmp=$(mktemp -d "$base/.install.XXXXXX")
tar -xzf - -C "$tmp" --no-same-owner --strip-components=1
chmod 0755 "$tmp"
test -x "$tmp/bin/runwarden" && test -x "$tmp/libexec/runwarden/runwarden-action-root"
rm -rf "$dest"
mv "$tmp" "$dest"
`;

function install(tarball, base, sha256) {
  const dest = path.join(base, sha256.slice(0, 16));
  const argv = asRoot(['sh', '-c', INSTALL_SH, 'sh', base, dest]);
  process.stdout.write(`[runwarden-action] installing into ${dest}\n`);
  const r = spawnSync(argv[0], argv.slice(1), { input: tarball, stdio: ['pipe', 'inherit', 'inherit'] });
  if (r.error || r.status !== 0)
    throw new Error(`installing into ${dest} failed` + (r.error ? `: ${r.error.message}` : ` (exit ${r.status})`));
  return dest;
}

function helperPath(prefix) {
  return path.join(prefix, 'libexec', 'runwarden', 'runwarden-action-root');
}

// host, *.host or **.host, with an optional :port; nothing else reaches the policy file.
const ENDPOINT = /^((?:\*\*?\.)?[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?)(?::([0-9]{1,5}))?$/;

function parseEndpoints(text) {
  const out = [];
  for (const tok of text.split(/[\s,]+/).filter(Boolean)) {
    const m = ENDPOINT.exec(tok);
    const port = m && m[2] !== undefined ? Number(m[2]) : null;
    if (!m || m[1].length > 253 || (port !== null && (port < 1 || port > 65535)))
      throw new InputError(`allowed-endpoints: '${tok}' is not host or host:port`);
    out.push({ host: m[1], port });
  }
  return out;
}

function policyYaml(endpoints, mode) {
  const lines = ['# written by the runwarden action from its allowed-endpoints input', 'version: 1'];
  if (mode) lines.push(`mode: ${mode}`);
  lines.push('allow:');
  for (const e of endpoints) {
    lines.push(`  - host: "${e.host}"`);
    if (e.port !== null) lines.push(`    ports: [${e.port}]`);
  }
  return lines.join('\n') + '\n';
}

module.exports = {
  input, boolInput, InputError, escapeData, command, saveState, getState, setOutput, asRoot, run,
  parseEndpoints, policyYaml, needSudo, release, defaultArtifactUrl, download, install,
  helperPath, MAX_ARTIFACT, DEFAULT_INSTALL,
};
