import type { RoundInfo } from '../src/store/types';
import { eventually, startCluster, type Cluster } from './support/cluster';
import { vectorSumPlan, vectorUpload } from './support/plans';

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
          const checkin = await fetch(`${cluster.url}/v1/populations/${population}/checkin`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ client_id: `c${c}` }),
          });
          const { assignment } = (await checkin.json()) as {
            assignment?: { upload_url: string; token: string; round: number };
          };
          if (!assignment) throw new Error(`client ${c} got no task in round ${round}`);
          expect(assignment.round).toBe(round);
          const values = delta(c, round);
          for (;;) {
            const res = await fetch(assignment.upload_url, {
              method: 'POST',
              headers: {
                authorization: `Bearer ${assignment.token}`,
                'content-type': 'application/octet-stream',
              },
              body: vectorUpload(values) as BodyInit,
            });
            if (res.status === 503) {
              await new Promise((r) => setTimeout(r, 100));
              continue;
            }
            expect(res.status).toBe(202);
            break;
          }
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
