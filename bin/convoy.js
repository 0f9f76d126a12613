#!/usr/bin/env node
'use strict';
// A reader that closes early (`convoy status | head`) is not an error worth a stack trace.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
const fs = require('node:fs');
const path = require('node:path');
// The one-file CLI that `npm run build` makes, compiled from V8's code cache; the module tree in
// dist/ when the bundle is not there (a build interrupted half-way, tests of the build itself).
const bundle = path.join(__dirname, '../dist/bundle/convoy.js');
const cli = fs.existsSync(bundle)
  ? require('../dist/controller/code-cache.js').requireWithCodeCache(bundle)
  : require('../dist/controller/cli/main.js');
cli.main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`convoy: INTERNAL: ${err && err.stack ? err.stack : err}\n`);
  process.exitCode = 1;
});
