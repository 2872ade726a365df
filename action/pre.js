// Action `pre`: install runwarden from source if needed, then arm the agent for the whole job
// (`runwarden job start`) before the first step runs.
'use strict';
const fs = require('fs');
const path = require('path');
const lib = require('./lib');

const MODES = ['observe', 'learn', 'enforce'];

function main() {
  if (process.platform !== 'linux') {
    lib.command('warning', 'runwarden needs Linux (eBPF); not arming on ' + process.platform);
    lib.saveState('armed', 'false');
    return 0;
  }
  const mode = lib.input('mode') || 'observe';
  if (!MODES.includes(mode)) {
    lib.command('error', `mode: '${mode}' is not one of ${MODES.join(', ')}`);
    return 1;
  }
  const policyIn = lib.input('policy');
  const endpointsIn = lib.input('allowed-endpoints');
  if (policyIn && endpointsIn) {
    lib.command('error', 'use either policy or allowed-endpoints, not both');
    return 1;
  }
  const tmp = process.env.RUNNER_TEMP || fs.mkdtempSync('/tmp/runwarden-');
  const out = lib.input('out') || path.join(tmp, 'runwarden-out');

  let policy = '';
  if (policyIn) {
    policy = path.resolve(process.env.GITHUB_WORKSPACE || process.cwd(), policyIn);
    if (!fs.existsSync(policy)) {
      lib.command('error', `policy: ${policy} does not exist (check out the repository first?)`);
      return 1;
    }
  } else if (endpointsIn) {
    let eps;
    try {
      eps = lib.parseEndpoints(endpointsIn);
    } catch (e) {
      lib.command('error', e.message);
      return 1;
    }
    policy = path.join(tmp, 'runwarden-policy.yml');
    fs.writeFileSync(policy, lib.policyYaml(eps, mode), { mode: 0o644 });
  }

  // The key goes to a private file, never on a command line, and is masked in the log.
  let keyFile = '';
  const key = process.env['INPUT_SIGNING-KEY'] || '';
  if (key.trim()) {
    for (const line of key.split(/\r?\n/))
      if (line.trim() && !line.startsWith('-----')) process.stdout.write(`::add-mask::${line.trim()}\n`);
    const dir = fs.mkdtempSync(path.join(tmp, 'runwarden-key-'));
    keyFile = path.join(dir, 'key.pem');
    fs.writeFileSync(keyFile, key.endsWith('\n') ? key : key + '\n', { mode: 0o600 });
  }

  let bin = process.env.RUNWARDEN || lib.which('runwarden');
  if (!bin) {
    // Build from this action's own source with the Debian packages it needs.
    const dir = lib.actionDir();
    if (lib.run(['scripts/deps.sh', 'build'], { cwd: dir, root: true }) !== 0 ||
        lib.run(['make'], { cwd: dir }) !== 0) {
      lib.command('error', 'building runwarden failed (see the log above)');
      return 1;
    }
    bin = path.join(dir, 'build', 'runwarden');
  }
  lib.saveState('bin', bin);
  lib.saveState('out', out);
  lib.saveState('key_file', keyFile);

  // Our parent is the runner worker that runs every later step: that is what goes under watch
  // (without --pid the agent would pick this short-lived node process).
  const argv = [bin, 'job', 'start', '--pid', String(process.ppid), '--out', out, '--mode', mode];
  if (policy) argv.push('--policy', policy);
  if (keyFile) argv.push('--key', keyFile);
  const step = lib.input('step');
  if (step) argv.push('--step', step);
  const rc = lib.run(argv, { root: true });
  if (rc !== 0) {
    lib.command('error', `runwarden job start failed (exit ${rc}): the job is not being watched`);
    lib.saveState('armed', 'false');
    return 1;
  }
  lib.saveState('armed', 'true');
  return 0;
}

try {
  process.exitCode = main();
} catch (e) {
  lib.command('error', 'runwarden action: ' + e.message);
  process.exitCode = 1;
}
