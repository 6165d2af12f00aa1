/**
 * The built CLI end to end: `roundhouse start` in a child process with a unique Redis prefix, then `submit`,
 * `status`, `pause`, `resume`, `cancel` and `delete` against it, then SIGTERM. Runs from dist/ (`npm test` builds first; alone: `npm run build`).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Redis from 'ioredis';
import { freePort, ping } from '../src/runtime/redis';

const root = path.join(__dirname, '..');
const bin = path.join(root, 'bin', 'roundhouse.js');
const built = path.join(root, 'dist', 'src', 'cli', 'start.js');
const localRedis = 'redis://127.0.0.1:6379';

const prefix = `rhtest-cli-${randomBytes(4).toString('hex')}`;
const token = randomBytes(16).toString('hex');

/** The environment of every child: no inherited Roundhouse settings, only the test's. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(PORT|HOST|PUBLIC_URL|REDIS_URL|REDIS_PREFIX|OPERATOR_TOKEN|TOKEN_SECRET|ROUNDHOUSE_URL)$/.test(k))
      env[k] = v;
  }
  return { ...env, ...extra };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: NodeJS.ProcessEnv = childEnv()): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd: root, env, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

let server: ChildProcess | undefined;
let serverLog = '';
let serverExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
let url = '';
let redisUrl: string | undefined;

async function waitReady(deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    if (server?.exitCode !== null) throw new Error(`roundhouse start exited early:\n${serverLog}`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`roundhouse start did not become ready in ${deadlineMs} ms:\n${serverLog}`);
}

beforeAll(async () => {
  if (!fs.existsSync(built))
    throw new Error('the CLI is not built: run `npm run build` first (npm test does)');
  // The machine's Redis when it answers (then the keys are cleaned up below), else `start` runs a private one.
  redisUrl = await ping(localRedis, 10_000).then(
    () => localRedis,
    () => undefined,
  );
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  server = spawn(process.execPath, [bin, 'start', '--port', String(port)], {
    cwd: root,
    env: childEnv({ HOST: '127.0.0.1', REDIS_PREFIX: prefix, OPERATOR_TOKEN: token, LOG_LEVEL: 'debug' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout!.on('data', (d: Buffer) => (serverLog += d.toString()));
  server.stderr!.on('data', (d: Buffer) => (serverLog += d.toString()));
  serverExit = new Promise((resolve) => server!.once('exit', (code, signal) => resolve({ code, signal })));
  await waitReady(45_000);
}, 60_000);

afterAll(async () => {
  if (server && server.exitCode === null && server.signalCode === null) {
    server.kill('SIGKILL');
    await serverExit;
  }
  if (redisUrl) {
    const redis = new Redis(redisUrl);
    try {
      for (const match of [`${prefix}:*`, `{${prefix}}:*`, `${prefix}*`]) {
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 500);
          cursor = next;
          if (keys.length) await redis.del(...keys);
        } while (cursor !== '0');
      }
    } finally {
      redis.disconnect();
    }
  }
});

describe('roundhouse start, submit, status', () => {
  let planId = '';

  test('start logs where it listens and does not log a configured operator token', () => {
    expect(serverLog).toContain('API listening');
    expect(serverLog).toContain(url);
    expect(serverLog).not.toContain(token);
  });

  test('submit prints the new plan id (token from OPERATOR_TOKEN)', async () => {
    const run = await cli(
      ['submit', 'test/fixtures/sum-plan.json', '--server', url],
      childEnv({ OPERATOR_TOKEN: token }),
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    planId = run.stdout.trim();
    expect(planId).toMatch(/^p[a-z0-9]{12}$/);
  });

  test('status lists the plan; status <id> shows its first round', async () => {
    const env = childEnv({ OPERATOR_TOKEN: token, ROUNDHOUSE_URL: url });
    const all = await cli(['status'], env);
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(/^ID\s+NAME\s+POPULATION\s+STATUS\s+ROUND\s+PHASE\s+CREATED/);
    const row = all.stdout.split('\n').find((l) => l.startsWith(planId));
    expect(row).toBeDefined();
    expect(row).toContain('hand-written-sum');
    expect(row).toMatch(/\bactive\b.*\b1\/3\b.*\bselecting\b/);

    const one = await cli(['status', planId], env);
    expect(one.code).toBe(0);
    expect(one.stdout).toContain(`plan ${planId}`);
    expect(one.stdout).toMatch(/^1\.1\s+selecting\s+0\s+0\s+0\s+0\s+0\s*$/m);
  });

  test('pause, resume and cancel change the status; a transition not allowed shows the server code, exit 1', async () => {
    const env = childEnv({ OPERATOR_TOKEN: token, ROUNDHOUSE_URL: url });
    const paused = await cli(['pause', planId], env);
    expect(paused).toEqual({
      code: 0,
      stdout: `paused plan ${planId} (hand-written-sum): status paused, round 1/3\n`,
      stderr: '',
    });
    const status = await cli(['status', planId], env);
    expect(status.stdout).toContain('status=paused');

    const again = await cli(['pause', planId], env);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
    expect(again.stderr).toContain(
      `POST /v1/plans/${planId}/pause failed: 409 PLAN_STATE_CONFLICT: cannot pause plan ${planId}: it is paused`,
    );

    const resumed = await cli(['resume', planId, '--server', url, '--token', token]);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toBe(`resumed plan ${planId} (hand-written-sum): status active, round 1/3\n`);

    const unknown = await cli(['cancel', 'p000000000000'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('POST /v1/plans/p000000000000/cancel failed: 404 PLAN_NOT_FOUND');

    const wrongToken = await cli(['resume', planId, '--server', url, '--token', 'not-the-token']);
    expect(wrongToken.code).toBe(1);
    expect(wrongToken.stderr).toMatch(/failed: 401 UNAUTHORIZED: .*check --token or OPERATOR_TOKEN/);
  });

  test('delete refuses the active plan (cancel it first), then deletes it once cancelled', async () => {
    const env = childEnv({ OPERATOR_TOKEN: token, ROUNDHOUSE_URL: url });
    const refused = await cli(['delete', planId], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`DELETE /v1/plans/${planId} failed: 409 PLAN_ACTIVE`);
    const cancel = await cli(['cancel', planId], env);
    expect(cancel).toEqual({
      code: 0,
      stdout: `cancelled plan ${planId} (hand-written-sum): status cancelled, round 1/3\n`,
      stderr: '',
    });
    // A cancelled plan is final.
    const resume = await cli(['resume', planId], env);
    expect(resume.code).toBe(1);
    expect(resume.stderr).toContain('409 PLAN_STATE_CONFLICT');
    expect(resume.stderr).toContain('cancelled -> active is not allowed');
    const run = await cli(['delete', planId], env);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^deleted plan ${planId} \\(\\d+ Redis keys\\)\n$`));
    const gone = await cli(['status', planId], env);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('404 PLAN_NOT_FOUND');
  });

  test('submit shows every problem of a rejected plan and exits 1', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roundhouse-cli-'));
    try {
      const file = path.join(dir, 'bad.json');
      fs.writeFileSync(file, JSON.stringify({ format: 'roundhouse.plan/v1', name: 'bad' }));
      const run = await cli(['submit', file, '--server', url, '--token', token]);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toContain('POST /v1/plans failed: 400 PLAN_SCHEMA_INVALID');
      // One line per detail, each with a JSON pointer.
      expect(run.stderr.split('\n').filter((l) => /^ {2}\/\S*: /.test(l)).length).toBeGreaterThan(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a wrong token and an unreachable server fail with a message that says so', async () => {
    const wrong = await cli(['status', '--server', url, '--token', 'not-the-token']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/GET \/v1\/plans failed: 401/);

    const none = await cli(['status', '--server', url]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no operator token');

    const closed = `http://127.0.0.1:${await freePort()}`;
    const away = await cli(['status', '--server', closed, '--token', token]);
    expect(away.code).toBe(1);
    expect(away.stderr).toContain(`cannot reach the Roundhouse server at ${closed}`);
  });

  test('SIGTERM stops the server cleanly and quickly, with exit code 143', async () => {
    const t0 = Date.now();
    server!.kill('SIGTERM');
    const exit = await serverExit!;
    // Interrupted, not finished: 128 + 15, as a shell reports a process SIGTERM ended.
    expect({ ...exit, log: exit.code === 143 ? '' : serverLog }).toEqual({
      code: 143,
      signal: null,
      log: '',
    });
    // The worker cuts its blocking fetch (BullMQ blocks up to 10 s while the plan's deadline jobs wait):
    // a wide bound for a loaded machine, well under that.
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(serverLog).toContain('stopped');
    // Stop taking requests first, Redis last: the worker and the queue still need it while they close.
    const closed = serverLog
      .split('\n')
      .filter((l) => l.includes('"msg":"closed"'))
      .map((l) => (JSON.parse(l) as { what: string }).what);
    expect(closed).toEqual(['http', 'program events', 'programs', 'worker', 'isolates', 'jobs', 'redis']);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  }, 30_000);
});
