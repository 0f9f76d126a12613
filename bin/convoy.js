#!/usr/bin/env node
'use strict';
// A reader that closes early (`convoy status | head`) is not an error worth a stack trace.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
require('../dist/controller/cli/main.js')
  .main(process.argv.slice(2))
  .catch((err) => {
    process.stderr.write(`convoy: INTERNAL: ${err && err.stack ? err.stack : err}\n`);
    process.exitCode = 1;
  });
