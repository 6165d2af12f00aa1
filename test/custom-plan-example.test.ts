/**
 * examples/custom-plan as the README has a user run it: its files are copied to a temp dir, `npm install`
 * (offline: nothing to download) installs its one dependency, `"roundhouse": "file:../.."` pointed at this
 * repository from the copy, so `roundhouse/builder` and `roundhouse/data` resolve through the package's
 * `exports` and `npx roundhouse` is the package's bin. The example's plan then passes `roundhouse
 * validate` and runs with `roundhouse run-local`, whose output is checked against statistics computed here
 * from the CSV the example wrote. Needs dist/ (`npm test` builds first; alone: `npm run build`).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.join(__dirname, '..');
const example = path.join(root, 'examples', 'custom-plan');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const node = (args: string[], cwd: string): Promise<Run> => run(process.execPath, args, cwd);

let dir: string;
/** `npx roundhouse` in the example: the bin npm linked into its node_modules. */
let roundhouse: string;

beforeAll(async () => {
  if (!fs.existsSync(path.join(root, 'dist', 'src', 'authoring', 'index.js')))
    throw new Error('dist/ is missing or stale: run `npm run build` first');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-custom-plan-'));
  for (const f of fs.readdirSync(example, { withFileTypes: true })) {
    if (f.isFile()) fs.copyFileSync(path.join(example, f.name), path.join(dir, f.name));
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(example, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  const spec = pkg.dependencies.roundhouse ?? '';
  expect(spec).toMatch(/^file:/);
  const target = path.resolve(example, spec.slice('file:'.length));
  expect(fs.realpathSync(target)).toBe(fs.realpathSync(root));
  // The copy is elsewhere, so its relative `file:` would point nowhere: the same target, spelled absolute.
  pkg.dependencies.roundhouse = `file:${target}`;
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  const installed = await run(npm, ['install', '--offline', '--no-audit', '--no-fund'], dir);
  expect(installed).toMatchObject({ code: 0 });
  roundhouse = path.join(dir, 'node_modules', '.bin', 'roundhouse');
  expect(fs.realpathSync(roundhouse)).toBe(fs.realpathSync(path.join(root, 'bin', 'roundhouse.js')));
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('examples/custom-plan', () => {
  test('builds its plan with roundhouse/builder; the plan validates and runs locally', async () => {
    const built = await node(['build-plan.js', 'plan.json', 'clients.csv'], dir);
    expect(built).toMatchObject({ code: 0, stderr: '' });
    expect(built.stdout).toContain('wrote plan.json (plan "clipped-stats") and clients.csv');

    const validated = await node([roundhouse, 'validate', '--json', 'plan.json'], dir);
    expect(validated.code).toBe(0);
    expect(JSON.parse(validated.stdout)).toMatchObject({
      name: 'clipped-stats',
      population: 'readings',
      rounds: 2,
    });

    const run = await node([roundhouse, 'run-local', 'plan.json', '--data', 'clients.csv', '--json'], dir);
    expect(run.code).toBe(0);
    const rounds = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { round: number; clients: string[]; output: Record<string, number> });
    expect(rounds.map((r) => r.round)).toEqual([1, 2]);

    // The readings per client, as the example wrote them.
    const readings = new Map<string, number[]>();
    const [header, ...rows] = fs.readFileSync(path.join(dir, 'clients.csv'), 'utf8').trim().split('\n');
    expect(header).toBe('client_id,value');
    for (const row of rows) {
      const [id, value] = row.split(',');
      readings.set(id!, [...(readings.get(id!) ?? []), Number(value)]);
    }
    expect(readings.size).toBe(6);
    for (const r of rounds) {
      expect(r.clients).toHaveLength(4);
      const clipped = r.clients.flatMap((c) => readings.get(c)!).map((v) => Math.min(100, Math.max(0, v)));
      expect(r.output.count).toBe(clipped.length);
      expect(r.output.clients).toBe(4);
      expect(r.output.min).toBe(Math.min(...clipped));
      expect(r.output.max).toBe(Math.max(...clipped));
      expect(r.output.mean).toBeCloseTo(clipped.reduce((a, b) => a + b, 0) / clipped.length, 3);
    }
  });

  test('the installed package exports stateful programs: ProgramBuilder and checkProgram, the library programs, runProgram', async () => {
    const script = [
      "const b = require('roundhouse/builder');",
      "const { runProgram } = require('roundhouse/runner');",
      'const p = b.buildTrainThenEvaluate({ rounds: 1 });',
      'const checked = b.checkProgram(p);',
      'console.log(JSON.stringify({ format: p.format, name: p.name, values: checked.placements.size,',
      '  builder: typeof b.ProgramBuilder, personalised: b.buildPersonalised({ rounds: 1 }).name,',
      '  runProgram: typeof runProgram }));',
    ].join('\n');
    const run = await node(['-e', script], dir);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(run.stdout)).toMatchObject({
      format: 'roundhouse.program/v1',
      name: 'train-then-evaluate',
      builder: 'function',
      personalised: 'personalised',
      runProgram: 'function',
    });
    expect(JSON.parse(run.stdout).values).toBeGreaterThan(5);
  });
});
