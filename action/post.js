// Action `post`, after the job's last step: hand the token to the root helper, which stops the
// job (evidence written and signed), writes the report, stops the agent it started and gives
// sudo back; its stdout is a tar of the evidence and reports, unpacked here as the runner user
// into `out`. The job summary gets the report; a violation or an incomplete record fails the
// job.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const lib = require('./lib');

function finish(prefix, token) {
  const argv = lib.asRoot([lib.helperPath(prefix), 'finish']);
  process.stdout.write('[runwarden-action] ' + argv.join(' ') + os.EOL);
  return spawnSync(argv[0], argv.slice(1), {
    input: token + '\n', stdio: ['pipe', 'pipe', 'inherit'], maxBuffer: lib.MAX_ARTIFACT,
  });
}

function unpack(tar, out) {
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true, mode: 0o755 });
  const r = spawnSync('tar', ['-xf', '-', '-C', out, '--no-same-owner'], { input: tar, stdio: ['pipe', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`could not unpack the evidence into ${out}`);
}

function read(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    return '';
  }
}

function main() {
  if (lib.getState('armed') !== 'true') {
    process.stdout.write('runwarden was not armed; nothing to report\n');
    return 0;
  }
  const out = path.resolve(lib.input('out') || path.join(process.env.RUNNER_TEMP || os.tmpdir(), 'runwarden-out'));
  const r = finish(lib.getState('prefix'), lib.getState('token'));
  if (r.error) throw new Error(`could not run the root helper: ${r.error.message}`);
  if (!r.stdout || !r.stdout.length) {
    lib.command('error', `runwarden: the root helper exited ${r.status} without evidence (see above)`);
    return 1;
  }
  const x = fs.mkdtempSync(path.join(process.env.RUNNER_TEMP || os.tmpdir(), 'runwarden-x-'));
  try {
    unpack(r.stdout, x);
    // The report's ::error/::warning lines, for the runner to turn into annotations.
    process.stdout.write(read(path.join(x, 'report.log')));
    const md = read(path.join(x, 'summary.md'));
    if (md && process.env.GITHUB_STEP_SUMMARY) fs.appendFileSync(process.env.GITHUB_STEP_SUMMARY, md);
    const refused = read(path.join(x, 'refused.log'));
    if (refused)
      lib.command('warning', `something in the job tried to finish runwarden early:\n${refused}`);
    fs.rmSync(out, { recursive: true, force: true });
    fs.renameSync(path.join(x, 'evidence'), out);
  } finally {
    fs.rmSync(x, { recursive: true, force: true });
  }
  if (process.env.GITHUB_OUTPUT) {
    lib.setOutput('evidence-dir', out);
    lib.setOutput('status', String(r.status));
  }
  process.stdout.write(`runwarden: evidence in ${out}\n`);
  if (r.status !== 0) {
    lib.command('error', `runwarden: job stop exited ${r.status}: policy violation or incomplete record`);
    return r.status === null ? 1 : r.status;
  }
  return 0;
}

try {
  process.exitCode = main();
} catch (e) {
  lib.command('error', 'runwarden action: ' + e.message);
  process.exitCode = 1;
}
