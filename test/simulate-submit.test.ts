/**
 * `roundhouse simulate --submit` checks the plan against what its clients hold (and how many they are)
 * before the server sees it, and warns when the population already runs another plan (its clients would
 * train both).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PLAN_LIBRARY } from '../src/plans';
import type { PlanSummary } from '../src/store/types';
import { startCluster, type Cluster } from './support/cluster';

const cli = path.join(__dirname, '..', 'bin', 'roundhouse.js');
let cluster: Cluster;
let dir: string;

beforeAll(async () => {
  cluster = await startCluster({ workers: 1 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-simulate-submit-'));
});
afterAll(async () => {
  await cluster?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const plans = async (): Promise<PlanSummary[]> =>
  ((await (await cluster.operator('/v1/plans')).json()) as { plans: PlanSummary[] }).plans;

/** Runs `simulate` until it exits, or until `until` matches its stderr (then it is killed: the test has seen enough). */
function simulate(args: string[], until?: RegExp): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [cli, 'simulate', '--server', cluster.url, '--token', cluster.operatorToken, ...args],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (until?.test(stderr)) child.kill('SIGKILL');
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stderr }));
  });
}

test('refuses, before submitting, a plan whose client data the digits clients cannot serve', async () => {
  const file = path.join(dir, 'sum.json');
  fs.writeFileSync(file, JSON.stringify(PLAN_LIBRARY['federated-sum']!.build({ collection: 'odd-one' })));
  const { code, stderr } = await simulate(['--submit', file, '--clients', '4']);
  expect(code).toBe(1);
  expect(stderr).toContain(`--submit ${file} wants client data of type`);
  expect(stderr).toContain("but the simulator's clients hold digits");
  expect((await plans()).filter((p) => p.population === 'odd-one')).toEqual([]);
}, 120_000);

test('refuses, before submitting, a plan whose rounds need more clients than the population has', async () => {
  const file = path.join(dir, 'twenty.json');
  fs.writeFileSync(
    file,
    JSON.stringify(PLAN_LIBRARY.fedavg!.build({ collection: 'too-few', targetClients: 20 })),
  );
  const { code, stderr } = await simulate(['--submit', file, '--clients', '4']);
  expect(code).toBe(1);
  expect(stderr).toContain(`--submit ${file} needs 20 clients to report a round`);
  expect(stderr).toContain('the digits population (4 clients) has 4: every round would fail');
  expect((await plans()).filter((p) => p.population === 'too-few')).toEqual([]);
}, 120_000);

test('warns when the population already runs another plan', async () => {
  const first = PLAN_LIBRARY.fedavg!.build({ rounds: 1, collection: 'shared-digits' });
  const res = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(first) });
  expect(res.status).toBe(201);
  const { id } = (await res.json()) as { id: string };
  const file = path.join(dir, 'second.json');
  fs.writeFileSync(
    file,
    JSON.stringify(PLAN_LIBRARY.fedavg!.build({ rounds: 1, collection: 'shared-digits', targetClients: 4 })),
  );
  const { stderr } = await simulate(['--submit', file, '--clients', '4'], /warning: .*\n/);
  expect(stderr).toContain(`warning: population shared-digits already runs ${id} (fedavg, active)`);
}, 120_000);
