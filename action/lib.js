// Shared glue for the action's pre/main/post scripts: inputs, state, workflow commands, and
// running runwarden (through sudo when the runner user is not root). Node built-ins only.
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

function getState(key) {
  return process.env['STATE_' + key] || '';
}

function actionDir() {
  return path.resolve(__dirname, '..');
}

function needSudo() {
  return typeof process.getuid === 'function' && process.getuid() !== 0;
}

// Runs argv, inheriting stdio so the log shows it; returns the exit status.
function run(argv, opts = {}) {
  const full = opts.root && needSudo() ? ['sudo', '-n', '-E', ...argv] : argv;
  process.stdout.write('[runwarden-action] ' + full.join(' ') + os.EOL);
  const r = spawnSync(full[0], full.slice(1), { stdio: 'inherit', cwd: opts.cwd, env: process.env });
  if (r.error) {
    command('error', `could not run ${full[0]}: ${r.error.message}`);
    return 127;
  }
  return r.status === null ? 128 : r.status;
}

function which(cmd) {
  for (const d of (process.env.PATH || '').split(':')) {
    if (!d) continue;
    const p = path.join(d, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch (e) { /* next */ }
  }
  return null;
}

// host, *.host or **.host, with an optional :port; nothing else reaches the policy file.
const ENDPOINT = /^((?:\*\*?\.)?[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?)(?::([0-9]{1,5}))?$/;

function parseEndpoints(text) {
  const out = [];
  for (const tok of text.split(/[\s,]+/).filter(Boolean)) {
    const m = ENDPOINT.exec(tok);
    const port = m && m[2] !== undefined ? Number(m[2]) : null;
    if (!m || m[1].length > 253 || (port !== null && (port < 1 || port > 65535)))
      throw new Error(`allowed-endpoints: '${tok}' is not host or host:port`);
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
  input, escapeData, command, saveState, getState, actionDir, run, which, parseEndpoints,
  policyYaml, needSudo,
};
