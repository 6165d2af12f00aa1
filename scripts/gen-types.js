#!/usr/bin/env node
// Derives the TypeScript types in src/generated/ from the JSON Schemas in schemas/, which stay the single
// source of truth. `--check` fails when the committed files are stale (the test suite runs it).
const fs = require('node:fs');
const path = require('node:path');
const { compileFromFile } = require('json-schema-to-typescript');

const root = path.join(__dirname, '..');
const outDir = path.join(root, 'src', 'generated');
const check = process.argv.includes('--check');

async function main() {
  const schemas = fs
    .readdirSync(path.join(root, 'schemas'))
    .filter((f) => f.endsWith('.schema.json'))
    .sort();
  let stale = [];
  fs.mkdirSync(outDir, { recursive: true });
  for (const file of schemas) {
    const ts = await compileFromFile(path.join(root, 'schemas', file), {
      cwd: path.join(root, 'schemas'),
      bannerComment: `/* Generated from schemas/${file} by scripts/gen-types.js; do not edit. */`,
      additionalProperties: false,
      ignoreMinAndMaxItems: true,
      declareExternallyReferenced: true,
      style: { singleQuote: true, printWidth: 110 },
    });
    const out = path.join(outDir, file.replace('.schema.json', '.ts'));
    if (check) {
      if (!fs.existsSync(out) || fs.readFileSync(out, 'utf8') !== ts) stale.push(path.relative(root, out));
    } else {
      fs.writeFileSync(out, ts);
    }
  }
  if (stale.length) {
    console.error(`stale generated types (run npm run gen:types): ${stale.join(', ')}`);
    process.exit(1);
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
