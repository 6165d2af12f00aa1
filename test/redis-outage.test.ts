/**
 * Redis unreachable for a while, mid-round: frozen for 10 s (SIGSTOP: connections stay open, nothing
 * answers), then stopped and started again on its port with its append-only file. Throughout, every API
 * request answers within a bound, with 2xx or 503 and Retry-After (never a hang, a 500 or a crash); once
 * Redis is back the API recovers by itself and the round completes with every client counted once.
 * Real processes (`roundhouse start --no-worker` and `roundhouse worker` from dist/) on a redis-server of the
 * test's own.
 */
import { MemoryExampleStore } from '../src/client/example-store';
import { RoundhouseClient } from '../src/client/client';
import { startCluster, type Cluster, eventually } from './support/cluster';
import { TestRedisServer } from './support/redis-server';
import { assignmentOf, numbers, SdkHarness } from './support/sdk-harness';

/** What one probe request got. */
interface Answer {
  readonly what: string;
  readonly status: number;
  readonly code?: string;
  readonly retryAfter: string | null;
  readonly ms: number;
  readonly error?: string;
}

/**
 * The bound on every answer: the API's Redis commands time out after 2 s here (REDIS_COMMAND_TIMEOUT_MS),
 * the rest is margin for a loaded machine. It is well under each outage (10 s frozen, 8 s down), so that a
 * request that waits for Redis to come back breaks it.
 */
const ANSWER_BOUND_MS = 7000;
/** A request still open after this is a hang. */
const HANG_MS = 40_000;

let redis: TestRedisServer;
let cluster: Cluster;
const h = new SdkHarness(() => cluster, 'outage');

beforeAll(async () => {
  redis = await TestRedisServer.start();
  cluster = await startCluster({
    workers: 1,
    env: { REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '2000', LOG_LEVEL: 'warn' },
  });
}, 90_000);

afterAll(async () => {
  redis?.thaw();
  await cluster?.stop();
  await redis?.remove();
}, 60_000);

/** Sends probe requests every 200 ms until `stop` resolves; answers what each got. */
async function probe(population: string, planId: string, stop: Promise<void>): Promise<Answer[]> {
  const requests: Promise<Answer>[] = [];
  const kinds: [string, () => Promise<Response>][] = [
    [
      'checkin',
      () =>
        fetch(`${cluster.url}/v1/populations/${population}/checkin`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ device_id: `probe-${requests.length}` }),
          signal: AbortSignal.timeout(HANG_MS),
        }),
    ],
    ['plan', () => cluster.operator(`/v1/plans/${planId}`, { signal: AbortSignal.timeout(HANG_MS) })],
    [
      'rounds',
      () => cluster.operator(`/v1/plans/${planId}/rounds`, { signal: AbortSignal.timeout(HANG_MS) }),
    ],
    ['readyz', () => fetch(`${cluster.url}/readyz`, { signal: AbortSignal.timeout(HANG_MS) })],
    // The process metrics are served without Redis (the privacy gauge is then left out).
    ['metrics', () => fetch(`${cluster.url}/metrics`, { signal: AbortSignal.timeout(HANG_MS) })],
  ];
  let stopped = false;
  void stop.then(() => (stopped = true));
  for (let i = 0; !stopped; i++) {
    const [what, send] = kinds[i % kinds.length]!;
    const t0 = Date.now();
    requests.push(
      send().then(
        async (res) => {
          const body = (await res.json().catch(() => undefined)) as { error?: { code?: string } } | undefined;
          return {
            what,
            status: res.status,
            ...(body?.error?.code ? { code: body.error.code } : {}),
            retryAfter: res.headers.get('retry-after'),
            ms: Date.now() - t0,
          };
        },
        (e: unknown) => ({ what, status: 0, retryAfter: null, ms: Date.now() - t0, error: String(e) }),
      ),
    );
    await new Promise((r) => setTimeout(r, 200));
  }
  return Promise.all(requests);
}

/** The answers that break the promise: not 2xx, not 503 with Retry-After, or too slow. */
function broken(answers: readonly Answer[]): Answer[] {
  return answers.filter(
    (a) =>
      a.ms > ANSWER_BOUND_MS ||
      !((a.status >= 200 && a.status < 300) || (a.status === 503 && a.retryAfter !== null)),
  );
}

test('Redis frozen for 10 s, then restarted: every answer is 2xx or 503 with Retry-After, then the round completes', async () => {
  const { id, population } = await h.sumPlan('round', { targetClients: 3, overSelection: 1, rounds: 1 });
  const client = (values: number[]) =>
    new RoundhouseClient({
      server: cluster.url,
      population,
      store: new MemoryExampleStore({ [population]: numbers(...values) }),
      // Enough tries to outlast the outage; Retry-After paces them.
      retry: { attempts: 40, maxMs: 2000 },
    });
  const [a, b, c] = [client([1, 2]), client([3]), client([4, 5, 6])];
  const assignA = await assignmentOf(a);
  const assignB = await assignmentOf(b);

  // Frozen: connections stay up and nothing answers.
  redis.freeze();
  const thawed = new Promise<void>((r) => setTimeout(r, 10_000));
  const probing = probe(
    `${population}-probe`,
    id,
    thawed.then(() => new Promise((r) => setTimeout(r, 1000))),
  );
  // An upload sent during the outage: the SDK retries its 503s until Redis is back.
  const uploadA = a.runTask(assignA);
  await thawed;
  redis.thaw();
  const frozenAnswers = await probing;

  // Down: the connection is refused until the server is back on its port, with its append-only file.
  await redis.stop();
  const restarted = new Promise<void>((r) => setTimeout(r, 8000)).then(() => redis.restart());
  const downAnswers = await probe(`${population}-probe`, id, restarted);

  const answers = [...frozenAnswers, ...downAnswers];
  expect(broken(answers)).toEqual([]);
  // The outage was felt (a test that saw only 2xx would prove nothing), as 503 NOT_READY.
  const refused = answers.filter((x) => x.status === 503);
  expect(refused.length).toBeGreaterThan(5);
  expect(new Set(refused.map((x) => x.code))).toEqual(new Set(['NOT_READY']));
  expect(downAnswers.some((x) => x.status === 503)).toBe(true);
  expect(cluster.api.exitCode).toBeNull();
  const metrics = answers.filter((x) => x.what === 'metrics');
  expect(metrics.length).toBeGreaterThan(0);
  expect(metrics.filter((x) => x.status !== 200)).toEqual([]);

  // Recovered by itself: the upload sent during the outage went through, and the round completes.
  expect((await uploadA).kind).toBe('completed');
  expect((await b.runTask(assignB)).kind).toBe('completed');
  expect((await c.runTask(await assignmentOf(c))).kind).toBe('completed');
  const done = await eventually(
    'the round to complete',
    async () => {
      const r = await h.roundOf(id, 1);
      return r.phase === 'completed' || r.phase === 'failed' ? r : undefined;
    },
    90_000,
  );
  expect({ phase: done.phase, clients: done.aggregated_clients, error: done.error }).toEqual({
    phase: 'completed',
    clients: 3,
    error: done.error,
  });
}, 240_000);
