/**
 * Tests that need a program the machine may lack (`redis-server`, Chromium) fail where it is missing, with
 * a test that says what to install: a missing dependency is not a reason to pass. They are skipped only
 * when an environment variable asks for it, and the skip says so on the console.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

interface Need {
  /** Whether the program is there. */
  readonly present: () => boolean;
  /** How to get it. */
  readonly install: string;
  /** The variable that, set to 1, skips the tests that need it. */
  readonly skipVar: string;
}

/** The browser test's Chromium (Debian's, driven by playwright-core, which never downloads a browser). */
export const CHROMIUM = '/usr/bin/chromium';

const NEEDS = {
  'redis-server': {
    present: () => spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0,
    install: 'apt-get install redis-server (.ci/run does)',
    skipVar: 'ROUNDHOUSE_SKIP_REDIS_SERVER',
  },
  chromium: {
    present: () => fs.existsSync(CHROMIUM),
    install: `apt-get install chromium, for ${CHROMIUM} (.ci/run does)`,
    skipVar: 'ROUNDHOUSE_SKIP_BROWSER',
  },
} satisfies Record<string, Need>;

/**
 * `describe` when `what` is installed. Else, unless its skip variable is 1, one failing test that says what
 * to install (the describe block is then skipped: every test in it would fail for the same reason); with
 * the variable, the block is skipped and the console says why.
 */
export function needs(what: keyof typeof NEEDS): jest.Describe {
  const need: Need = NEEDS[what];
  if (need.present()) return describe;
  if (process.env[need.skipVar] === '1') {
    console.warn(`${what} is missing and ${need.skipVar}=1: skipping the tests that need it`);
    return describe.skip;
  }
  test(`${what} is installed`, () => {
    throw new Error(`${what} is missing: ${need.install}; or set ${need.skipVar}=1 to skip these tests`);
  });
  return describe.skip;
}
