/**
 * A worker process SIGKILLed at a random moment of a round, 20 times: the moment (from before the first
 * upload to after the round ends) and the victim come from a seeded generator; the seed is printed, and
 * FAULT_SEED=<seed> repeats a run. Every round must end with the exact sum of its uploads.
 */
import seedrandom from 'seedrandom';
import { vectorSumPlan } from '../support/plans';
import { runClients } from '../support/fault-clients';
import { startFaultCluster, type FaultCluster } from '../support/fault-harness';
import { describeOn, type RedisKind } from '../support/test-redis';

export function workerKillRandomSuite(kind: RedisKind): void {
  describeOn(kind, 'a worker killed at random moments', () => {
    const K = 8;
    const population = `vectors${K}`;
    // Eight on a cluster: the single-Redis run does the twenty, the cluster run shows the same on its slots.
    const REPETITIONS = kind === 'cluster' ? 8 : 20;
    const CLIENTS = 8;
    /** The kill lands this many ms after the round's clients start, at most (a round takes about this long). */
    const WINDOW_MS = 2000;
    const seed = Number(process.env.FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));

    let cluster: FaultCluster | undefined;
    afterAll(() => cluster?.stop());

    test(`a worker SIGKILLed at a random moment, ${REPETITIONS} times: every aggregate exact (seed ${seed})`, async () => {
      console.log(`worker-kill-random: seed ${seed} (FAULT_SEED=${seed} repeats this run)`);
      const random = seedrandom(String(seed));
      cluster = await startFaultCluster({
        workers: 2,
        // Small batches that wait to fill and short locks: kills land with jobs in hand, which come back fast.
        env: { WORKER_LOCK_MS: '2000', WORKER_BATCH: '4', WORKER_BATCH_WAIT_MS: '100' },
      });
      const c = cluster;
      const id = await c.submit(
        vectorSumPlan(K, {
          rounds: REPETITIONS,
          target_clients: CLIENTS,
          over_selection: 1,
          min_reports: CLIENTS,
          min_clients_in_aggregate: 2,
          selection_timeout_s: 300,
          reporting_deadline_s: 300,
        }),
      );
      const devices = Array.from({ length: CLIENTS }, (_, i) => `d${i}`);
      const results: { round: number; killAtMs: number; victim: string; exact: boolean }[] = [];

      for (let round = 1; round <= REPETITIONS; round++) {
        const killAtMs = Math.floor(random() * WINDOW_MS);
        const victim = c.workers[Math.floor(random() * c.workers.length)]!;
        const kill = (async () => {
          await new Promise((r) => setTimeout(r, killAtMs));
          await victim.kill('SIGKILL');
          c.workers.splice(c.workers.indexOf(victim), 1);
          c.addWorker();
        })();
        const run = await runClients({
          population,
          round,
          k: K,
          devices,
          options: { servers: () => [c.url] },
        });
        await kill;
        expect(run.accepted).toBe(CLIENTS);
        const info = await c.waitCompleted(id, round, 90_000).catch((e: Error) => {
          throw new Error(
            `seed ${seed}, round ${round}, kill at ${killAtMs} ms of ${victim.name}: ${e.message}`,
          );
        });
        results.push({
          round,
          killAtMs,
          victim: victim.name,
          exact:
            info.aggregated_clients === CLIENTS &&
            JSON.stringify(info.output) === JSON.stringify({ total: run.total, count: CLIENTS }),
        });
      }
      const exact = results.filter((r) => r.exact).length;
      console.log(`worker-kill-random: ${exact} of ${REPETITIONS} exact (seed ${seed})`);
      expect({ seed, inexact: results.filter((r) => !r.exact) }).toEqual({ seed, inexact: [] });
      // Every kill was of a live worker that then stayed dead; none of the others died.
      expect(c.deaths().length).toBe(REPETITIONS);
      expect(c.workers.every((w) => w.alive)).toBe(true);
    }, 600_000);
  });
}
