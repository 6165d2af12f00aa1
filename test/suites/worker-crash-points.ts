/**
 * A worker process that dies at each of the fault points of the worker and the round engine
 * (ROUNDHOUSE_FAULTS, src/faults.ts): real `roundhouse start` and `roundhouse worker` processes, the local
 * Redis, raw HTTP clients. After each crash a fresh worker takes over; the round must end with the exact
 * sum of its uploads, completed once.
 */
import { vectorSumPlan } from '../support/plans';
import { eventually } from '../support/cluster';
import { runClients } from '../support/fault-clients';
import {
  stalledJobs,
  startFaultCluster,
  type FaultCluster,
  type RoundhouseProcess,
} from '../support/fault-harness';
import type { RedisClient } from '../../src/store/redis-client';
import { describeOn, testRedis, type RedisKind } from '../support/test-redis';

export function workerCrashPointsSuite(kind: RedisKind): void {
  describeOn(kind, 'a worker crashing at each fault point', () => {
    const K = 8;
    const CLIENTS = 6;
    /** Short locks, so that a dead worker's jobs come back within seconds. */
    const ENV = { WORKER_LOCK_MS: '2000' };
    let redis: RedisClient;
    beforeAll(() => {
      redis = testRedis();
    });
    let cluster: FaultCluster | undefined;

    afterEach(async () => {
      await cluster?.stop();
      cluster = undefined;
    });
    afterAll(() => redis.disconnect());

    function plan(rounds: number): Record<string, unknown> {
      return vectorSumPlan(K, {
        rounds,
        target_clients: CLIENTS,
        over_selection: 1,
        min_reports: CLIENTS,
        min_clients_in_aggregate: 3,
        selection_timeout_s: 300,
        reporting_deadline_s: 300,
      });
    }
    const population = `vectors${K}`;

    /** Waits for the armed worker to kill itself at `point`. */
    async function crashed(w: RoundhouseProcess, point: string): Promise<void> {
      let timer: NodeJS.Timeout | undefined;
      const exit = await Promise.race([
        w.exited,
        new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 60_000))),
      ]);
      clearTimeout(timer);
      if (!exit) throw new Error(`${w.name} did not reach ${point} in 60 s:\n${w.tail()}`);
      expect({ signal: exit.signal, crashedAt: w.output.includes(`injected crash at ${point}`) }).toEqual({
        signal: 'SIGKILL',
        crashedAt: true,
      });
    }

    /**
     * Clients `from` to `to - 1` (all by default) take part in round `round`: check-in, then upload, retried
     * until the server has it.
     */
    async function runRound(
      c: FaultCluster,
      round: number,
      from = 0,
      to = CLIENTS,
    ): Promise<{ total: number }> {
      const run = await runClients({
        population,
        round,
        k: K,
        devices: Array.from({ length: to - from }, (_, i) => `d${from + i}`),
        first: from,
        options: { servers: () => [c.url] },
      });
      expect(run.accepted).toBe(to - from);
      return run;
    }

    test('a worker killed between its commit and its acknowledgements: the redelivered jobs are skipped, the sum exact', async () => {
      cluster = await startFaultCluster({ workers: 0, env: ENV });
      const armed = cluster.addWorker({ ROUNDHOUSE_FAULTS: 'after-commit-before-ack:1' });
      const id = await cluster.submit(plan(1));
      // Three uploads: the worker holds them until they reach min_clients_in_aggregate (3), commits, and dies.
      const before = await runRound(cluster, 1, 0, 3);
      await crashed(armed, 'after-commit-before-ack');
      const fresh = cluster.addWorker();

      // The round is still open, so the three jobs, committed but not acknowledged, come back to the fresh
      // worker once their locks lapse, and are found covered: acknowledged without a second fold.
      const skipped = await eventually('the three redelivered jobs to be skipped', async () => {
        const lines = fresh.logged('redelivered upload already covered; acknowledged');
        return lines.length >= 3 ? lines : undefined;
      });
      expect(new Set(skipped.map((l) => l.task)).size).toBe(3);
      for (const line of skipped)
        expect(line).toMatchObject({ plan: id, round: '1.1', task: expect.any(String) });
      const stalled = await stalledJobs(redis, cluster.prefix);
      for (const line of skipped) expect(stalled).toContain(`acc-${id}-1.1-${line.task as string}`);

      const after = await runRound(cluster, 1, 3, CLIENTS);
      const info = await cluster.waitCompleted(id, 1);
      expect(info).toMatchObject({ reported: CLIENTS, aggregated_clients: CLIENTS });
      expect(info.output).toEqual({ total: before.total + after.total, count: CLIENTS });
      expect(fresh.logged('redelivered upload already covered; acknowledged')).toHaveLength(3);
    }, 180_000);

    test('a worker killed with a batch fetched and not folded: the batch is redelivered and folded once', async () => {
      cluster = await startFaultCluster({ workers: 0, env: ENV });
      const armed = cluster.addWorker({ ROUNDHOUSE_FAULTS: 'before-fold:1' });
      const id = await cluster.submit(plan(1));
      const run = await runRound(cluster, 1);
      await crashed(armed, 'before-fold');
      cluster.addWorker();

      const info = await cluster.waitCompleted(id, 1);
      expect(info).toMatchObject({ reported: CLIENTS, aggregated_clients: CLIENTS });
      expect(info.output).toEqual({ total: run.total, count: CLIENTS });
      expect((await stalledJobs(redis, cluster.prefix)).length).toBeGreaterThanOrEqual(1);
    }, 180_000);

    test('a worker killed while finalizing, before the round is stored completed: it completes exactly once', async () => {
      cluster = await startFaultCluster({ workers: 0, env: ENV });
      const armed = cluster.addWorker({ ROUNDHOUSE_FAULTS: 'finalize-before-complete:1' });
      const id = await cluster.submit(plan(2));
      const one = await runRound(cluster, 1);
      await crashed(armed, 'finalize-before-complete');
      // Computed, not stored: the round is still finalizing and the state has not moved.
      expect((await cluster.rounds(id)).map((r) => [r.round, r.attempt, r.phase])).toEqual([
        [1, 1, 'finalizing'],
      ]);
      expect((await cluster.state(id)).rounds).toEqual([0]);
      cluster.addWorker();

      const first = await cluster.waitCompleted(id, 1);
      expect(first.output).toEqual({ total: one.total, count: CLIENTS });
      expect((await cluster.state(id)).rounds).toEqual([1]);

      const two = await runRound(cluster, 2);
      const second = await cluster.waitCompleted(id, 2);
      expect(second.output).toEqual({ total: two.total, count: CLIENTS });
      // One attempt per round, each completed once; the state advanced once per round.
      expect((await cluster.rounds(id)).map((r) => [r.round, r.attempt, r.phase])).toEqual([
        [1, 1, 'completed'],
        [2, 1, 'completed'],
      ]);
      expect((await cluster.state(id)).rounds).toEqual([2]);
      const completions = cluster.logged('round completed').map((l) => l.round);
      expect(completions.sort()).toEqual(['1.1', '2.1']);
    }, 180_000);

    test('a worker killed after completing a round, before opening the next: the next round opens', async () => {
      cluster = await startFaultCluster({ workers: 0, env: ENV });
      const armed = cluster.addWorker({ ROUNDHOUSE_FAULTS: 'after-complete-before-open:1' });
      const id = await cluster.submit(plan(2));
      const one = await runRound(cluster, 1);
      await crashed(armed, 'after-complete-before-open');
      expect((await cluster.rounds(id)).map((r) => [r.round, r.attempt, r.phase])).toEqual([
        [1, 1, 'completed'],
      ]);
      cluster.addWorker();

      const two = await runRound(cluster, 2);
      const second = await cluster.waitCompleted(id, 2);
      expect(second.output).toEqual({ total: two.total, count: CLIENTS });
      const rounds = await cluster.rounds(id);
      expect(rounds.map((r) => [r.round, r.attempt, r.phase])).toEqual([
        [1, 1, 'completed'],
        [2, 1, 'completed'],
      ]);
      expect(rounds[0]!.output).toEqual({ total: one.total, count: CLIENTS });
      expect((await cluster.state(id)).rounds).toEqual([2]);
    }, 180_000);
  });
}
