import type { RoundInfo } from '../src/store/types';
import { eventually, startCluster, type Cluster } from './support/cluster';
import { vectorSumPlan, vectorUpload } from './support/plans';
import { checkinRaw, uploadRaw } from './support/raw-client';

// Acceptance: a worker killed with SIGKILL during a round; the round still completes and its aggregate is
// exactly the expected sum (no update lost, none counted twice). Three rounds, one kill in each.
const K = 20_000;
const CLIENTS = 40;
const ROUNDS = 3;

const delta = (client: number, round: number) =>
  Float32Array.from({ length: K }, (_, j) => (client + j + round) % 5);
const total = (values: Float32Array) => values.reduce((a, b) => a + b, 0);

describe('a worker killed mid-round', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    // Small batches that wait to fill, and short locks, so that kills land with jobs in a worker's hands
    // and redelivery comes quickly.
    cluster = await startCluster({
      workers: 2,
      env: { WORKER_BATCH: '4', WORKER_BATCH_WAIT_MS: '150', WORKER_LOCK_MS: '2000' },
    });
  });
  afterAll(() => cluster?.stop());

  test('leaves every round with the exact sum of its uploads', async () => {
    const plan = vectorSumPlan(K, {
      rounds: ROUNDS,
      target_clients: CLIENTS,
      min_reports: CLIENTS,
      selection_timeout_s: 300,
      reporting_deadline_s: 300,
    });
    const created = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const population = (plan.client_data as { collection: string }).collection;

    for (let round = 1; round <= ROUNDS; round++) {
      let expected = 0;
      let accepted = 0;
      let killed = false;
      await Promise.all(
        Array.from({ length: CLIENTS }, async (_, c) => {
          const assignment = await checkinRaw(cluster.url, population, `c${c}`);
          if (!assignment) throw new Error(`client ${c} got no task in round ${round}`);
          expect(assignment.round).toBe(round);
          const values = delta(c, round);
          expect((await uploadRaw(assignment, vectorUpload(values), { retryBusy: true })).status).toBe(202);
          expected += total(values);
          accepted += 1;
          if (!killed && accepted >= CLIENTS / 3) {
            killed = true;
            // The worker dies with whatever it holds; a fresh one takes its place.
            cluster.workers[0]!.kill('SIGKILL');
            cluster.workers.shift();
            cluster.addWorker();
          }
        }),
      );
      expect(killed).toBe(true);
      const info = await eventually(
        `round ${round} to complete`,
        async () => {
          const { rounds } = (await (await cluster.operator(`/v1/plans/${id}/rounds`)).json()) as {
            rounds: RoundInfo[];
          };
          const r = rounds.find((x) => x.round === round && x.phase === 'completed');
          const failed = rounds.find((x) => x.round === round && x.phase === 'failed');
          if (failed) throw new Error(`round ${round} failed: ${failed.error}`);
          return r;
        },
        90_000,
      );
      expect(info.reported).toBe(CLIENTS);
      expect(info.aggregated_clients).toBe(CLIENTS);
      expect(info.output).toEqual({ total: expected, count: CLIENTS });
    }
  });
});
