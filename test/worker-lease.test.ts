import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { deleteKeys, eventually } from './support/cluster';

// Two `roundhouse worker` processes of the built CLI given one --id, against the local Redis: the second
// refuses to start with a clear error (two live processes would overwrite each other's partials); once
// the first stops cleanly, the id is free at once.
const cli = path.join(__dirname, '..', 'bin', 'roundhouse.js');
const prefix = `rh-it-lease-${process.pid}-${randomBytes(4).toString('hex')}`;
const children: ChildProcess[] = [];

interface Proc {
  readonly child: ChildProcess;
  /** Everything written to stderr so far (JSON log lines, and the CLI's error message). */
  stderr(): string;
  exited: Promise<number | null>;
}

function worker(id: string): Proc {
  const child = spawn(process.execPath, [cli, 'worker', '--id', id], {
    env: {
      ...process.env,
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_PREFIX: prefix,
      WORKER_LOCK_MS: '2000',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, stderr: () => err, exited };
}

const started = (p: Proc) =>
  eventually('the worker to start', () =>
    Promise.resolve(p.stderr().includes('"aggregation worker started"') ? true : undefined),
  );

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await deleteKeys(prefix);
});

test('a second worker process with the same --id refuses to start; after a clean stop the id is free', async () => {
  const first = worker('shared');
  await started(first);
  expect(first.stderr()).toMatch(/"epoch":1,.*"msg":"worker lease taken"/);

  const second = worker('shared');
  expect(await second.exited).toBe(1);
  expect(second.stderr()).toContain(
    'worker id "shared" is held by another live aggregation worker (its lease is being renewed)',
  );
  expect(second.stderr()).not.toContain('"aggregation worker started"');
  expect(first.child.exitCode).toBeNull();

  // A clean stop on a signal (exit 143, as any interrupted process: docs/server.md, "Shutdown").
  first.child.kill('SIGTERM');
  expect(await first.exited).toBe(143);
  const third = worker('shared');
  await started(third);
  // Released at the clean stop: taken at once (no wait for a lapse), with the next epoch.
  expect(third.stderr()).not.toContain('waiting once for the lease to lapse');
  expect(third.stderr()).toMatch(/"epoch":2,.*"msg":"worker lease taken"/);
  third.child.kill('SIGTERM');
  expect(await third.exited).toBe(143);
}, 120_000);

test('a worker id that cannot name Redis keys is refused', async () => {
  const bad = worker('a{b}');
  expect(await bad.exited).toBe(1);
  expect(bad.stderr()).toContain('a worker id is 1 to 128 of A-Z a-z 0-9 _ . -, got "a{b}"');
}, 60_000);
