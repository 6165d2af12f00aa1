import { Keys } from '../../src/store/keys';
import { eventually } from '../support/cluster';
import { stalledJobs, startFaultCluster, type FaultCluster } from '../support/fault-harness';
import { vectorSumPlan, vectorUpload } from '../support/plans';
import { assignedRaw, uploadRaw } from '../support/raw-client';
import type { RedisClient } from '../../src/store/redis-client';
import { describeOn, testRedis, type RedisKind } from '../support/test-redis';

// Acceptance: a worker killed with SIGKILL during a round; the round still completes and its aggregate is
// exactly the expected sum (no update lost, none counted twice). Three rounds, one kill in each, of a worker
// that holds uploads at that moment, so that the round cannot complete unless its jobs are redelivered;
// the test asserts that they were (BullMQ's `stalled` events) and counted once.
const K = 20_000;
const CLIENTS = 40;
const ROUNDS = 3;

const delta = (client: number, round: number) =>
  Float32Array.from({ length: K }, (_, j) => (client + j + round) % 5);
const total = (values: Float32Array) => values.reduce((a, b) => a + b, 0);

export function workerKillSuite(kind: RedisKind): void {
  describeOn(kind, 'a worker killed mid-round', () => {
    let cluster: FaultCluster;
    let redis: RedisClient;
    beforeAll(() => {
      redis = testRedis();
    });
    beforeAll(async () => {
      // Small batches that wait to fill, and short locks, so that kills land with jobs in a worker's hands
      // and redelivery comes quickly.
      cluster = await startFaultCluster({
        workers: 2,
        env: { WORKER_BATCH: '4', WORKER_BATCH_WAIT_MS: '150', WORKER_LOCK_MS: '2000' },
      });
    }, 120_000);
    afterAll(async () => {
      await cluster?.stop();
      redis.disconnect();
    });

    test('leaves every round with the exact sum of its uploads, the killed worker jobs redelivered', async () => {
      const plan = vectorSumPlan(K, {
        rounds: ROUNDS,
        target_clients: CLIENTS,
        // Every upload is held uncommitted until the round closes (docs/server.md, "Commit threshold"):
        // whatever a worker took is in its hands when it is killed.
        min_reports: CLIENTS,
        selection_timeout_s: 300,
        reporting_deadline_s: 300,
      });
      const id = await cluster.submit(plan);
      const population = (plan.client_data as { collection: string }).collection;
      const keys = new Keys(cluster.prefix);

      for (let round = 1; round <= ROUNDS; round++) {
        const roundKey = keys.round({ plan: id, round, attempt: 1 }).round;
        let expected = 0;
        let accepted = 0;
        let kill: Promise<{ victim: string; held: number }> | undefined;
        const client = async (c: number) => {
          const assignment = await assignedRaw(cluster.url, population, `c${c}`);
          expect(assignment.round).toBe(round);
          const values = delta(c, round);
          expect((await uploadRaw(assignment, vectorUpload(values), { retryBusy: true })).status).toBe(202);
          expected += total(values);
          accepted += 1;
          if (!kill && accepted >= CLIENTS / 3) {
            // A worker dies with the uploads it holds (folded, not committed); a fresh one takes its place.
            kill = (async () => {
              const [victim, held] = await eventually(
                'a worker to hold uploads',
                async () => {
                  for (const w of cluster.workers) {
                    const n = Number(await redis.hget(roundKey, `held:${cluster.workerId(w)}`));
                    if (w.alive && n > 0) return [w, n] as const;
                  }
                  return undefined;
                },
                30_000,
              );
              await victim.kill('SIGKILL');
              cluster.workers.splice(cluster.workers.indexOf(victim), 1);
              cluster.addWorker();
              return { victim: victim.name, held };
            })();
          }
        };
        // The last third uploads after the kill: the round cannot close, and the victim cannot commit what
        // it held, before it dies.
        const early = Math.ceil((CLIENTS * 2) / 3);
        await Promise.all(Array.from({ length: early }, (_, c) => client(c)));
        await kill;
        await Promise.all(Array.from({ length: CLIENTS - early }, (_, c) => client(early + c)));
        expect(kill).toBeDefined();
        const { held } = await kill!;
        const info = await cluster.waitCompleted(id, round, 90_000);
        expect(info.reported).toBe(CLIENTS);
        expect(info.aggregated_clients).toBe(CLIENTS);
        expect(info.output).toEqual({ total: expected, count: CLIENTS });
        // What the killed worker held came back to the queue when its locks lapsed, and was folded once.
        const redelivered = (await stalledJobs(redis, cluster.prefix)).filter((j) =>
          j.startsWith(`acc-${id}-${round}.1-`),
        );
        expect(redelivered.length).toBeGreaterThanOrEqual(held);
      }
    }, 360_000);
  });
}
