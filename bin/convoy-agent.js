#!/usr/bin/env node
'use strict';
require('../dist/agent/cli/main.js')
  .main(process.argv.slice(2))
  .catch((err) => {
    process.stderr.write(`convoy-agent: INTERNAL: ${err && err.stack ? err.stack : err}\n`);
    process.exitCode = 1;
  });
