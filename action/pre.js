// Action `pre`, before the job's first step: download the release artifact whose sha256 this
// action pins (action/release.json), refuse it on any mismatch, install it root-owned, and
// have its root helper start `runwarden agent` and arm the job for the runner's worker (our
// parent), optionally taking sudo away from the job. Any failure fails the job: a job that
// asked to be watched never runs unwatched.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const lib = require('./lib');

const MODES = ['observe', 'learn', 'enforce'];

// Policy and key go to private files the helper copies into its root-only state directory.
function writePrivate(dir, name, text) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text, { mode: 0o600, flag: 'wx' });
  return file;
}

function policyFile(mode, tmp) {
  const policyIn = lib.input('policy');
  const endpointsIn = lib.input('allowed-endpoints');
  if (policyIn && endpointsIn) throw new lib.InputError('use either policy or allowed-endpoints, not both');
  if (policyIn) {
    const p = path.resolve(process.env.GITHUB_WORKSPACE || process.cwd(), policyIn);
    if (!fs.existsSync(p))
      throw new lib.InputError(`policy: ${p} does not exist (check out the repository first?)`);
    return p;
  }
  if (endpointsIn) return writePrivate(tmp, 'policy.yml', lib.policyYaml(lib.parseEndpoints(endpointsIn), mode));
  if (mode === 'enforce') throw new lib.InputError('mode enforce needs a policy or allowed-endpoints');
  return '';
}

function keyFile(tmp) {
  const key = process.env['INPUT_SIGNING-KEY'] || '';
  if (!key.trim()) return '';
  for (const line of key.split(/\r?\n/))
    if (line.trim() && !line.startsWith('-----')) process.stdout.write(`::add-mask::${line.trim()}\n`);
  return writePrivate(tmp, 'key.pem', key.endsWith('\n') ? key : key + '\n');
}

async function main() {
  if (process.platform !== 'linux') {
    lib.command('warning', 'runwarden needs Linux (eBPF); not arming on ' + process.platform);
    lib.saveState('armed', 'false');
    return 0;
  }
  lib.saveState('armed', 'false');
  const mode = lib.input('mode') || 'observe';
  if (!MODES.includes(mode)) throw new lib.InputError(`mode: '${mode}' is not one of ${MODES.join(', ')}`);
  const disableSudo = lib.boolInput('disable-sudo');
  const user = os.userInfo().username;
  if (disableSudo && !lib.needSudo())
    throw new lib.InputError('disable-sudo: the job runs as root; removing sudo cannot take root away');
  if (disableSudo && !/^[a-z_][a-z0-9_-]{0,31}$/.test(user))
    throw new lib.InputError(`disable-sudo: unexpected user name '${user}'`);

  const installBase = lib.input('install-dir') || lib.DEFAULT_INSTALL;
  if (!path.isAbsolute(installBase))
    throw new lib.InputError(`install-dir: '${installBase}' is not an absolute path`);

  const tmp = fs.mkdtempSync(path.join(process.env.RUNNER_TEMP || os.tmpdir(), 'runwarden-'));
  try {
    const policy = policyFile(mode, tmp);
    const key = keyFile(tmp);

    const rel = lib.release();
    const url = lib.input('artifact-url') || lib.defaultArtifactUrl(rel);
    process.stdout.write(`runwarden ${rel.version} (${rel.arch}) from ${url}\n`);
    const tarball = await lib.download(url, lib.MAX_ARTIFACT);
    const got = crypto.createHash('sha256').update(tarball).digest('hex');
    if (got !== rel.sha256)
      throw new Error(`artifact ${url}: sha256 ${got}, but this action pins ${rel.sha256}; refusing to install it`);
    const prefix = lib.install(tarball, installBase, rel.sha256);

    // The token lets `post`, and nothing else in the job, finish it (the helper keeps its hash).
    const token = crypto.randomBytes(32).toString('hex');
    const argv = [lib.helperPath(prefix), 'arm', '--pid', String(process.ppid), '--mode', mode,
                  '--token-sha256', crypto.createHash('sha256').update(token).digest('hex')];
    if (policy) argv.push('--policy', policy);
    if (key) argv.push('--key', key);
    const step = lib.input('step');
    if (step) argv.push('--step', step);
    if (disableSudo) argv.push('--disable-sudo', user);
    lib.saveState('prefix', prefix);
    const rc = lib.run(argv, { root: true });
    if (rc !== 0) throw new Error(`arming failed (exit ${rc}): the job is not being watched`);
    lib.saveState('token', token);
    lib.saveState('armed', 'true');
    return 0;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().then((rc) => { process.exitCode = rc; }, (e) => {
  lib.command('error', (e instanceof lib.InputError ? '' : 'runwarden action: ') + e.message);
  process.exitCode = 1;
});
