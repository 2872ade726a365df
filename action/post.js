// Action `post`: stop the job scope (`runwarden job stop` writes the evidence and fails on a
// violation), then write the job summary and annotations with `runwarden report`.
'use strict';
const fs = require('fs');
const path = require('path');
const lib = require('./lib');

function main() {
  if (lib.getState('armed') !== 'true') {
    process.stdout.write('runwarden was not armed; nothing to report\n');
    return 0;
  }
  const bin = lib.getState('bin') || 'runwarden';
  const out = lib.getState('out');
  const keyFile = lib.getState('key_file');

  const stopRc = lib.run([bin, 'job', 'stop'], { root: true });
  if (keyFile) {
    try {
      fs.rmSync(path.dirname(keyFile), { recursive: true, force: true });
    } catch (e) { /* best effort: RUNNER_TEMP is wiped after the job anyway */ }
  }

  let reportRc = 0;
  const summary = process.env.GITHUB_STEP_SUMMARY;
  if (fs.existsSync(out)) {
    const argv = [bin, 'report', out];
    if (summary) argv.push('--github-summary', summary);
    reportRc = lib.run(argv, { root: true });
  } else {
    lib.command('warning', `no evidence directory at ${out}`);
  }
  if (stopRc !== 0) {
    lib.command('error', `runwarden job stop exited ${stopRc}: policy violation or incomplete record`);
    return stopRc;
  }
  return reportRc === 0 ? 0 : 1;
}

try {
  process.exitCode = main();
} catch (e) {
  lib.command('error', 'runwarden action: ' + e.message);
  process.exitCode = 1;
}
