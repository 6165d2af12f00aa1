import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { PLAN_LIBRARY } from '../src/plans';
import type { RoundInfo } from '../src/store/types';
import { eventually, freePort, startCluster, type Cluster } from './support/cluster';

// The README's Node client (examples/node-client.js) runs as written against a live server.
describe('examples/node-client.js', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster({ workers: 1 });
  });
  afterAll(() => cluster?.stop());

  test('completes a task and the round it took part in completes', async () => {
    const plan = PLAN_LIBRARY.fedavg!.build({ rounds: 1, targetClients: 1, minReports: 1 });
    const res = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-example-'));
    try {
      const deviceIdFile = path.join(dir, 'device-id');
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [path.join(__dirname, '..', 'examples', 'node-client.js')],
        {
          env: { ...process.env, ROUNDHOUSE_URL: cluster.url, MAX_TASKS: '1', DEVICE_ID_FILE: deviceIdFile },
          timeout: 60_000,
        },
      );
      expect(stdout).toMatch(/^completed round 1$/m);
      // The device id the client made on first use is kept for its next run.
      expect(fs.readFileSync(deviceIdFile, 'utf8')).toMatch(/^[0-9a-f]{32}\n$/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const done = await eventually('round 1 to complete', async () => {
      const { rounds } = (await (await cluster.operator(`/v1/plans/${id}/rounds`)).json()) as {
        rounds: RoundInfo[];
      };
      return rounds.find((r) => r.round === 1 && r.phase === 'completed');
    });
    expect(done.aggregated_clients).toBe(1);
  });

  test('prints a retry window in seconds with one decimal when there is no task', async () => {
    // The plan of the first test has completed: the population has nothing to do, so the server answers
    // with retry windows.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-example-'));
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', 'node-client.js')], {
      env: { ...process.env, ROUNDHOUSE_URL: cluster.url, DEVICE_ID_FILE: path.join(dir, 'id') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      const line = await eventually('a wait line', () => Promise.resolve(/^.*wait .*$/m.exec(stdout)?.[0]));
      expect(line).toMatch(/ wait \d+\.\d s$/);
    } finally {
      child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('says why when it cannot reach the server, and keeps trying', async () => {
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-example-'));
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', 'node-client.js')], {
      env: {
        ...process.env,
        ROUNDHOUSE_URL: `http://127.0.0.1:${port}`,
        DEVICE_ID_FILE: path.join(dir, 'id'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const line = await eventually('an error line', () =>
        Promise.resolve(/^check-in failed: .+$/m.exec(stderr)?.[0]),
      );
      expect(line).toMatch(/ECONNREFUSED|fetch failed|connect/i);
      // Still running: it backs off and tries again rather than exiting.
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
