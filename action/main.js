// Action `main`: nothing to do. The agent was armed in `pre` and reports in `post`; this step
// only marks where the action sits in the job's step list.
'use strict';
const lib = require('./lib');

const armed = lib.getState('armed');
process.stdout.write(armed === 'true' ? 'runwarden is watching this job\n'
                                      : 'runwarden is not armed for this job (see the pre step)\n');
