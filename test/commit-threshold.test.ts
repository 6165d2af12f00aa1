import Redis from 'ioredis';
import { readBundle } from '../src/codec';
import type { RoundInfo } from '../src/store/types';
import { eventually, startCluster, type Cluster } from './support/cluster';
import { vectorSumPlan, vectorUpload } from './support/plans';
import { assignedRaw, uploadRaw } from './support/raw-client';

// Nothing at rest is derived from fewer clients than the minimum: while a round attempt is open, every
// partial in Redis covers at least min_clients_in_aggregate uploads, and two successive partials of one
// worker differ by at least that many (else subtracting them would isolate fewer clients). Two worker
// processes, three rounds, and a minimum above MAX_PENDING_UPLOADS, so that holding uploads must not
// deadlock the back-pressure. With 13 clients and a minimum of 6, the 12 uploads before the one that
// closes the attempt are folded by two workers, so one of them folds 6 and commits while the attempt is
// open: the test sees such a commit, not only those at close.
const K = 64;
const CLIENTS = 13;
const MIN = 6;
const ROUNDS = 3;
const OPEN: ReadonlySet<string> = new Set(['selecting', 'reporting']);

describe('the commit threshold', () => {
  let cluster: Cluster;
  const redis = new Redis('redis://127.0.0.1:6379');
  beforeAll(async () => {
    cluster = await startCluster({
      workers: 2,
      env: { MAX_PENDING_UPLOADS: '3', WORKER_BATCH: '2', WORKER_BATCH_WAIT_MS: '20' },
    });
  });
  afterAll(async () => {
    await cluster?.stop();
    redis.disconnect();
  });

  interface Seen {
    open: number;
    closed: number;
    violations: string[];
    /** The clients of the last partial seen under each partial key. */
    last: Map<string, number>;
  }

  /** Scans every partial key under the prefix and reads it with its attempt's phase, atomically. */
  async function scanPartials(seen: Seen): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${cluster.prefix}:*:partial:*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        const roundKey = key.slice(0, key.lastIndexOf(':partial:'));
        const [[, phase], [, bytes]] = (await redis
          .multi()
          .hget(roundKey, 'phase')
          .getBuffer(key)
          .exec()) as [[null, string | null], [null, Buffer | null]];
        if (!bytes || !phase) continue;
        const clients = Number(readBundle(new Uint8Array(bytes)).metadata.clients);
        const before = seen.last.get(key) ?? 0;
        seen.last.set(key, clients);
        if (!OPEN.has(phase)) {
          seen.closed += 1;
          continue;
        }
        seen.open += 1;
        if (clients < MIN) seen.violations.push(`${key} covers ${clients} clients while ${phase}`);
        // A partial missed between two scans only makes the difference larger, never smaller.
        if (clients !== before && clients - before < MIN)
          seen.violations.push(`${key} went from ${before} to ${clients} clients while ${phase}`);
      }
    } while (cursor !== '0');
  }

  test('no partial of an open attempt covers fewer than the minimum; every round is exact', async () => {
    const plan = vectorSumPlan(K, {
      rounds: ROUNDS,
      target_clients: CLIENTS,
      over_selection: 1,
      min_reports: CLIENTS,
      min_clients_in_aggregate: MIN,
      selection_timeout_s: 300,
      reporting_deadline_s: 300,
    });
    const created = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const population = (plan.client_data as { collection: string }).collection;

    const seen: Seen = { open: 0, closed: 0, violations: [], last: new Map() };
    let scanning = true;
    const scanner = (async () => {
      while (scanning) {
        await scanPartials(seen);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();

    let busy = 0;
    try {
      for (let round = 1; round <= ROUNDS; round++) {
        let expected = 0;
        // One at a time, so that workers fold while the attempt is open and commit once they may.
        for (let c = 0; c < CLIENTS; c++) {
          if (c === CLIENTS - 1) {
            // Before the upload that closes the attempt: every earlier upload folded (committed or held).
            await eventually(
              `the uploads of round ${round} to be folded`,
              async () => {
                const [reported, accumulated, held] = await redis.hmget(
                  `${cluster.prefix}:{${id}}:r:${round}.1`,
                  'reported',
                  'accumulated',
                  'held_total',
                );
                return Number(reported) - Number(accumulated) - Number(held ?? 0) === 0 ? true : undefined;
              },
              30_000,
            );
            await scanPartials(seen);
          }
          const a = await assignedRaw(cluster.url, population, `r${round}c${c}`);
          const values = Float32Array.from({ length: K }, (_, j) => (c * 7 + j + round) % 11);
          const up = await uploadRaw(a, vectorUpload(values), { retryBusy: true });
          expect(up.status).toBe(202);
          busy += up.busy;
          expected += values.reduce((s, x) => s + x, 0);
        }
        const info = await eventually(
          `round ${round} to complete`,
          async () => {
            const { rounds } = (await (await cluster.operator(`/v1/plans/${id}/rounds`)).json()) as {
              rounds: RoundInfo[];
            };
            const failed = rounds.find((r) => r.round === round && r.phase === 'failed');
            if (failed) throw new Error(`round ${round} failed: ${failed.error}`);
            return rounds.find((r) => r.round === round && r.phase === 'completed');
          },
          60_000,
        );
        expect(info).toMatchObject({ reported: CLIENTS, accumulated: CLIENTS, aggregated_clients: CLIENTS });
        expect(info.output).toEqual({ total: expected, count: CLIENTS });
      }
    } finally {
      scanning = false;
      await scanner;
    }
    expect(seen.violations).toEqual([]);
    // The scan saw partials committed while the attempt was open, so the checks above could have failed.
    expect(seen.open).toBeGreaterThan(0);
    console.log(`partials seen: ${seen.open} while open, ${seen.closed} after close; ${busy} BUSY answers`);
  });
});
