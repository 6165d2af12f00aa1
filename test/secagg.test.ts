import type { RoundInfo } from '../src/store/types';
import type { RunOutcome } from '../src/client/types';
import { eventually, startCluster, type Cluster } from './support/cluster';
import { SdkHarness } from './support/sdk-harness';
import { threeSumsOf, threeSumsPlan, THREE_SUMS } from './support/secure-plans';

// SecAgg+ end to end through the built server, one worker and the SDK: exact sums of all three secure sums
// with clients dropping out after each step, and a round that cannot be unmasked failing and reopening.

let cluster: Cluster;
const h = new SdkHarness(() => cluster, 'secagg');

beforeAll(async () => {
  cluster = await startCluster({ workers: 1 });
});
afterAll(() => cluster?.stop());

/** Runs `n` clients of one round at once; client c holds the examples `values(c)` (their sum is s). */
async function roundOf(
  population: string,
  n: number,
  values: (c: number) => number[],
  leaves: (c: number) => 'after-r1' | 'after-r2' | undefined,
): Promise<RunOutcome[]> {
  return Promise.all(
    Array.from({ length: n }, (_, c) =>
      h
        .client(population, values(c), {
          beforeUpload: () => leaves(c) !== 'after-r1',
          beforeUnmask: () => leaves(c) !== 'after-r2',
        })
        .runOnce(),
    ),
  );
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

test('three rounds of 50 clients: the released secure sums are the survivors exact sums, with 30% dropping after R1 and 10% after R2', async () => {
  const population = h.unique('exact');
  const id = await h.submit(
    threeSumsPlan(
      population,
      {
        rounds: 3,
        target_clients: 35,
        // 50 selected: 15 leave after sharing keys, 5 more after uploading, 30 survive to unmask.
        over_selection: 50 / 35,
        min_reports: 30,
        selection_timeout_s: 60,
        reporting_deadline_s: 240,
      },
      { protocol: 'secagg+', sharing_timeout_s: 60, unmasking_timeout_s: 5 },
    ),
  );
  for (let round = 1; round <= 3; round++) {
    // Sums s in [0, 255]: every round has clients at the inputs' maxima (s = 255: V1 = 255, V2 = 1000).
    const s = (c: number) => (c % 5 === 0 ? 255 : (c * 37 + round * 11) % 256);
    const leaves = (c: number) => (c >= 35 ? 'after-r1' : c >= 30 ? 'after-r2' : undefined);
    const outcomes = await roundOf(
      population,
      50,
      (c) => [s(c) - Math.floor(s(c) / 2), Math.floor(s(c) / 2)],
      leaves,
    );
    expect(outcomes.filter((o) => o.kind === 'completed')).toHaveLength(30);
    const info = await eventually(
      `round ${round} to complete`,
      async () => {
        const r = await h.roundOf(id, round);
        if (r.phase === 'failed') throw new Error(`round ${round} failed: ${r.error}`);
        return r.phase === 'completed' ? r : undefined;
      },
      120_000,
    );
    // Every accepted upload is in the sum (U3: 35), also those whose senders left before unmasking.
    const survivors = Array.from({ length: 35 }, (_, c) => threeSumsOf(s(c)));
    expect(info.output).toEqual({
      v1: sum(survivors.map((x) => x.v1)),
      v2: sum(survivors.map((x) => x.v2)),
      v3: sum(survivors.map((x) => x.v3)) % THREE_SUMS.modulus,
    });
    expect(info.secure_aggregation).toEqual({
      protocol: 'secagg+',
      advertised: 50,
      shared: 50,
      unmasked: 30,
    });
    expect(info.reported).toBe(35);
    expect(info.aggregated_clients).toBe(35);
  }
}, 600_000);

test('too many dropouts to unmask: the round fails, nothing is released, its exchange is deleted, and it reopens', async () => {
  const population = h.unique('below');
  const id = await h.submit(
    threeSumsPlan(
      population,
      {
        rounds: 1,
        target_clients: 8,
        over_selection: 1,
        min_reports: 4,
        selection_timeout_s: 60,
        reporting_deadline_s: 240,
      },
      { protocol: 'secagg+', degree: 7, threshold: 5, unmasking_timeout_s: 3 },
    ),
  );
  // All 8 upload, then 5 leave before unmasking: only 3 answer, below the threshold of 5.
  const outcomes = await roundOf(
    population,
    8,
    (c) => [c + 1],
    (c) => (c < 5 ? 'after-r2' : undefined),
  );
  expect(outcomes.filter((o) => o.kind === 'dropped')).toHaveLength(5);
  const failed = await eventually(
    'the attempt to fail',
    async () => {
      const res = await cluster.operator(`/v1/plans/${id}/rounds`);
      const { rounds } = (await res.json()) as { rounds: RoundInfo[] };
      return rounds.find((r) => r.attempt === 1 && r.phase === 'failed');
    },
    120_000,
  );
  expect(failed.error).toMatch(/secure aggregation|threshold/i);
  expect(failed.output ?? null).toBeNull();
  const next = await eventually('attempt 2 to open', async () => {
    const r = await h.roundOf(id, 1);
    return r.attempt === 2 && r.phase === 'selecting' ? r : undefined;
  });
  expect(next.secure_aggregation).toEqual({ protocol: 'secagg+', advertised: 0, shared: 0, unmasked: 0 });
  const { default: Redis } = await import('ioredis');
  const redis = new Redis('redis://127.0.0.1:6379');
  try {
    const left = await redis.keys(`${cluster.prefix}:{${id}}:r:1.1:sa:*`);
    expect(left).toEqual([]);
  } finally {
    redis.disconnect();
  }
}, 300_000);
