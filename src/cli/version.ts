import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The version in Roundhouse's package.json. Found by walking up from this file, because the same code runs
 * from src/cli (ts-jest) and from dist/src/cli (the built CLI), at different depths below the package root.
 */
export function packageVersion(from: string = __dirname): string {
  return roundhousePackage(from).version;
}

/** The directory of Roundhouse's package.json (the package root), found as {@link packageVersion} finds it. */
export function packageRoot(from: string = __dirname): string {
  return roundhousePackage(from).dir;
}

function roundhousePackage(from: string): { dir: string; version: string } {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'roundhouse' && typeof pkg.version === 'string') return { dir, version: pkg.version };
    }
    if (path.dirname(dir) === dir) throw new Error(`no package.json of roundhouse above ${from}`);
  }
}
