#!/usr/bin/env node
// The CLI runs from the compiled output; `npm run build` (which `npm start`, `npm test` and `npm run demo` run) makes it.
const path = require('node:path');
const fs = require('node:fs');
const main = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');
if (!fs.existsSync(main)) {
  console.error('roundhouse is not built yet: run `npm run build` first.');
  process.exit(1);
}
// main() reports a failed command itself (message on stderr, exit 1); this catches only a broken build.
require(main)
  .main(process.argv)
  .catch((err) => {
    console.error(err && err.message ? err.message : err);
    process.exit(1);
  });
