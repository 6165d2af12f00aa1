/**
 * `simulate` rides out a server restart as real devices do: the API process is SIGKILLed after the first
 * round and started again on the same port a few seconds later; the simulation (its clients back off, its
 * poller waits for the server) goes on and finishes every round of the plan.
 */
import { initBackend } from '../src/compute/backend';
import { PLAN_LIBRARY } from '../src/plans';
import { digitsSource } from '../src/simulate/digits-population';
import { simulate, type RoundSummary } from '../src/simulate/simulator';
import { startFaultCluster, type FaultCluster } from './support/fault-harness';

let cluster: FaultCluster | undefined;
beforeAll(() => initBackend());
afterAll(() => cluster?.stop());

test('the simulation waits for a restarted server and finishes the plan', async () => {
  cluster = await startFaultCluster({ workers: 1 });
  const api = cluster.apis[0]!;
  const port = Number(new URL(api.url).port);
  const plan = PLAN_LIBRARY.fedavg!.build({
    rounds: 3,
    targetClients: 4,
    overSelection: 1,
    minReports: 4,
    epochs: 1,
    selectionTimeout: 60,
    reportingDeadline: 120,
  });
  const res = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
  expect(res.status).toBe(201);
  const { id } = (await res.json()) as { id: string };

  const trouble: string[] = [];
  let restarted: Promise<void> | undefined;
  const rounds: RoundSummary[] = [];
  const result = await simulate({
    server: api.url,
    token: cluster.operatorToken,
    planId: id,
    plan,
    population: digitsSource({ clients: 8 }),
    // Clients wait a tenth of every retry window and backoff: the test takes seconds, not minutes.
    timeScale: 0.1,
    serverPatienceMs: 120_000,
    onServerTrouble: (e) => trouble.push(e === undefined ? 'back' : 'down'),
    onRound: (s) => {
      rounds.push(s);
      if (s.round === 1 && !restarted) {
        // Killed right after round 1 completed; back on the same port three seconds later.
        restarted = (async () => {
          await api.kill('SIGKILL');
          await new Promise((r) => setTimeout(r, 3000));
          await cluster!.addApi({}, port);
        })();
      }
    },
  });
  await restarted;
  expect(result.reason).toBe('plan-finished');
  expect(rounds.filter((r) => r.status === 'completed').map((r) => r.round)).toEqual([1, 2, 3]);
  // The poller saw the server go away and come back, and said so once each.
  expect(trouble).toEqual(['down', 'back']);
}, 240_000);
