/**
 * The built CLI's streams and exit codes as a shell sees them: a reader that goes away (`| head -1`) ends
 * the command quietly with 0, a file that cannot be read is named with exit 1, a usage mistake exits 2, and
 * JSON log lines go to stderr only. Runs from dist/ (`npm test` builds first; alone: `npm run build`).
 */
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.join(__dirname, '..');
const bin = path.join(root, 'bin', 'roundhouse.js');
const built = path.join(root, 'dist', 'src', 'cli', 'main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd: root, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Runs the CLI with its stdout a pipe whose reader is gone before the first write, as with `| head -1` once
 * head has its line: every write the command makes meets EPIPE.
 */
function cliIntoClosedPipe(
  args: string[],
): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roundhouse-cli-pipes-'));
const planFile = path.join(dir, 'sum.json');
const csvFile = path.join(dir, 'clients.csv');

beforeAll(async () => {
  if (!fs.existsSync(built))
    throw new Error('the CLI is not built: run `npm run build` first (npm test does)');
  const plan = await cli([
    'plans',
    'build',
    'federated-sum',
    '--rounds',
    '20',
    '--target-clients',
    '2',
    '-o',
    planFile,
  ]);
  expect(plan.code).toBe(0);
  fs.writeFileSync(csvFile, 'client_id,value\na,1\na,2\nb,3\nc,4\n');
}, 60_000);

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('a closed stdout', () => {
  it.each([
    [['plans', 'build', 'fedavg']],
    [['plans', 'list']],
    [['run-local', planFile, '--data', csvFile, '--json']],
    [['run-local', planFile, '--data', csvFile]],
    // A server and simulated clients in this process: stopped and shut down, not dropped, then 0.
    [['demo', '--rounds', '3', '--clients', '12', '--log-level', 'error']],
  ])(
    '%j exits 0 without an EPIPE trace',
    async (args) => {
      const run = await cliIntoClosedPipe(args);
      expect(run.stderr).not.toMatch(/EPIPE|Unhandled 'error' event|at \S+ \(/);
      expect({ code: run.code, signal: run.signal }).toEqual({ code: 0, signal: null });
    },
    60_000,
  );
});

describe('run-local input errors', () => {
  it('a missing --data file is named, exit 1, before the backend starts', async () => {
    const run = await cli(['run-local', planFile, '--data', path.join(dir, 'nosuch.csv')]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(`cannot read --data ${path.join(dir, 'nosuch.csv')}: no such file\n`);
  });

  it('a missing plan and a missing --eval-data file are named too', async () => {
    const plan = await cli(['run-local', path.join(dir, 'nosuch.json'), '--data', csvFile]);
    expect(plan.code).toBe(1);
    expect(plan.stderr).toContain(`cannot read plan ${path.join(dir, 'nosuch.json')}: no such file`);
    const evalData = await cli(['run-local', planFile, '--data', csvFile, '--eval-data', dir]);
    expect(evalData.code).toBe(1);
    expect(evalData.stderr).toContain(`cannot read --eval-data ${dir}: is a directory, not a file`);
  });

  it('a CSV that does not fit the plan names the file in every line', async () => {
    const bad = path.join(dir, 'bad.csv');
    fs.writeFileSync(bad, 'client_id,wrong\na,1\n');
    const run = await cli(['run-local', planFile, '--data', bad]);
    expect(run.code).toBe(1);
    const lines = run.stderr.trim().split('\n');
    expect(lines[0]).toBe(`invalid client data CSV ${bad}:`);
    expect(lines[1]).toBe(`  ${bad}: row 1, column 2: header has "wrong", expected "value"`);
  });

  it('a missing --data option is a usage error, exit 2', async () => {
    const run = await cli(['run-local', planFile]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("required option '--data <csv>' not specified");
  });
});

describe('other commands', () => {
  it('submit names a plan file it cannot read or parse, exit 1', async () => {
    const missing = await cli(['submit', path.join(dir, 'nosuch.json'), '--token', 't']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`cannot read plan ${path.join(dir, 'nosuch.json')}: no such file\n`);
    const notJson = await cli(['submit', csvFile, '--token', 't']);
    expect(notJson.code).toBe(1);
    expect(notJson.stderr).toMatch(new RegExp(`^plan ${csvFile.replace(/[.]/g, '\\.')} is not JSON: `));
  });

  it('an argument an action finds wrong is a usage error, exit 2', async () => {
    const run = await cli(['simulate', '--token', 't']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('give exactly one of --plan <id> and --submit <plan.json>');
  });

  it('an unknown command lists the commands, exit 2', async () => {
    const run = await cli(['stauts']);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^error: unknown command 'stauts'; the commands are: start, .*\bstatus\b/);
  });
});

test('run-local writes people output on stdout and JSON log lines on stderr only', async () => {
  const run = await cli(['run-local', planFile, '--data', csvFile, '--rounds', '2', '--json']);
  expect(run.code).toBe(0);
  const out = run.stdout.trim().split('\n');
  expect(out).toHaveLength(2);
  // Every stdout line is a round result, never a log line.
  for (const line of out) expect(JSON.parse(line)).toHaveProperty('round');
  expect(run.stdout).not.toContain('"level"');
  const logs = run.stderr
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { msg: string });
  expect(logs.map((l) => l.msg)).toContain('TensorFlow.js backend ready');
}, 60_000);

test('--version prints the package version, exit 0', async () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  const run = await cli(['--version']);
  expect(run).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
});
