import { spawn } from 'node:child_process';
import * as path from 'node:path';
import Redis from 'ioredis';

// The demo end to end through the built CLI: a round server and worker in one process, the FedAvg digits
// plan, 30 simulated clients over HTTP for three rounds. It must finish, report every round with its
// participants and held-out accuracy, learn something, and leave no key behind in Redis.

const cli = path.join(__dirname, '..', 'bin', 'roundhouse.js');

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: { ...process.env, REDIS_URL: 'redis://127.0.0.1:6379' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('a shortened demo trains through the server and cleans up after itself', async () => {
  const { code, stdout, stderr } = await run(['demo', '--rounds', '3', '--clients', '30']);
  expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });

  const rounds = stdout
    .split('\n')
    .filter((l) => l.startsWith('round ') && !l.includes('FAILED'))
    .map((line) => {
      const m = /^round\s+(\d+)\/3\s.*participants=(\d+).*eval\.accuracy=([0-9.]+)/.exec(line);
      if (!m) throw new Error(`not a round summary with participants and accuracy: ${line}`);
      return { round: Number(m[1]), participants: Number(m[2]), accuracy: Number(m[3]) };
    });
  expect(rounds.map((r) => r.round)).toEqual([1, 2, 3]);
  // 30 clients: 10 a round, and a round counts with at least half of them.
  for (const r of rounds) expect(r.participants).toBeGreaterThanOrEqual(5);

  const first = rounds[0]!.accuracy;
  const last = rounds[2]!.accuracy;
  // Three rounds of 10 non-IID clients take the model from near chance (0.1) to about 0.3 on held-out data.
  expect(last).toBeGreaterThan(first);
  expect(last).toBeGreaterThan(0.2);
  expect(stdout).toMatch(
    new RegExp(`demo: held-out accuracy ${last.toFixed(4)} after 3 rounds .*elapsed \\d+\\.\\ds`),
  );

  const prefix = /Redis prefix (rh-demo-[0-9a-f-]+)/.exec(stderr)?.[1];
  expect(prefix).toBeDefined();
  const redis = new Redis('redis://127.0.0.1:6379');
  try {
    const left = [...(await redis.keys(`${prefix}:*`)), ...(await redis.keys(`{${prefix}}:*`))];
    expect(left).toEqual([]);
  } finally {
    redis.disconnect();
  }
}, 120_000);
