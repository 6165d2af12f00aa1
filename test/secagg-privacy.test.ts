import { sha256 } from '@noble/hashes/sha2';
import Redis from 'ioredis';
import { decodePartial } from '../src/aggregation/partial';
import { SecAggExchange } from '../src/client/secagg-task';
import type { ClientPlan } from '../src/client/types';
import { runWork } from '../src/client/work';
import { encodeBundle, readBundle } from '../src/codec';
import { structValue } from '../src/compute/value';
import { checkPlan } from '../src/plan/validate';
import type { RandomBytes } from '../src/secagg/crypto';
import { flatByKind, fromLanes, maskingModuli } from '../src/secagg/masks';
import { seededRandom } from '../src/secagg/round-harness.jest';
import { loadPlan } from '../src/rounds/plan-cache';
import type { RoundInfo } from '../src/store/types';
import { eventually, startCluster, type Cluster } from './support/cluster';
import { FakeExchange } from './support/fake-exchange';
import {
  recordingFetch,
  RedisRecorder,
  routeOf,
  trails,
  type Sent,
  type Stored,
} from './support/secagg-capture';
import { chanceBound, chiSquare, chiSquareCritical, clearHits } from './support/secagg-clear';
import { FakeClock, numbers, SdkHarness } from './support/sdk-harness';
import { threeSumsOf, threeSumsPlan, THREE_SUMS } from './support/secure-plans';

// "The server learns nothing single" (issue 9): a SecAgg+ round of 16 SDK clients through the built server,
// with everything the server receives (request bodies, captured by the clients' fetch) and everything it
// holds in Redis (every key of the prefix, read over and over while the round runs) checked against each
// client's true V1, V2 and V3. Each place a secure-sum value could appear holds only a public key, a share
// ciphertext, a masked upload, a Shamir share of a seed or key, or a sum over at least
// min_clients_in_aggregate clients; no client value is ever in the clear outside the released output.

/**
 * The SDK's randomness, seeded in the statistical test only: SecAggExchange makes its own SecAggClientRound,
 * whose keys, self-mask seed and nonces come from the crypto module's secureRandomBytes.
 */
let mockRandom: RandomBytes | undefined;
jest.mock('../src/secagg/crypto', () => {
  const actual = jest.requireActual<{ secureRandomBytes: RandomBytes }>('../src/secagg/crypto');
  return {
    ...actual,
    secureRandomBytes: (length: number) => (mockRandom ?? actual.secureRandomBytes)(length),
  };
});

const CLIENTS = 16;
/** Clients 0-2 share their keys and leave before uploading; 3-4 upload and leave before unmasking. */
const LEAVES_AFTER_R1 = 3;
const LEAVES_AFTER_R2 = 5;
const UPLOADERS = CLIENTS - LEAVES_AFTER_R1;
const MIN_CLIENTS = 10;
const DEGREE = 11;
const THRESHOLD = 6;
/** The plan's secure-sum parameters, as the round hands them to clients. */
const THREE_SUMS_PARAMS = {
  bitwidth: [THREE_SUMS.bitwidth],
  max_input: [THREE_SUMS.maxInput],
  modulus: [THREE_SUMS.modulus],
};
/** Client c's sum s: distinct, and far from the plan's and the protocol's own numbers (4s < max_input). */
const sumOf = (c: number): number => 103 + 9 * c;

describe('the server learns nothing single', () => {
  let cluster: Cluster;
  const h = new SdkHarness(() => cluster, 'privacy');
  let redis: Redis;

  // No worker at first: the uploads wait at rest until the recorder has read every one of them.
  beforeAll(async () => {
    redis = new Redis('redis://127.0.0.1:6379');
    cluster = await startCluster({ workers: 0 });
  });
  afterAll(async () => {
    await cluster?.stop();
    redis?.disconnect();
  });

  test('a round of 16 with 3 + 2 dropouts: the server receives and holds only keys, ciphertexts, masked uploads, shares and sums of at least 10', async () => {
    const population = h.unique('round');
    const plan = threeSumsPlan(
      population,
      {
        rounds: 1,
        target_clients: UPLOADERS,
        over_selection: CLIENTS / UPLOADERS,
        min_reports: MIN_CLIENTS,
        min_clients_in_aggregate: MIN_CLIENTS,
        selection_timeout_s: 60,
        reporting_deadline_s: 240,
      },
      // Neighbourhoods of 11 of the 16: five dropouts still leave 6 (the threshold) of anyone's neighbours.
      { protocol: 'secagg+', degree: DEGREE, threshold: THRESHOLD, unmasking_timeout_s: 5 },
    );
    const { types } = checkPlan(plan);
    const id = await h.submit(plan);
    const recorder = new RedisRecorder(redis, cluster.prefix);
    const sent: Sent[] = [];
    let info: RoundInfo;
    recorder.start();
    try {
      const outcomes = await Promise.all(
        Array.from({ length: CLIENTS }, (_, c) => {
          const s = sumOf(c);
          return h
            .client(population, [s - Math.floor(s / 2), Math.floor(s / 2)], {
              fetch: recordingFetch(c, sent),
              beforeUpload: () => c >= LEAVES_AFTER_R1,
              beforeUnmask: () => c >= LEAVES_AFTER_R2,
            })
            .runOnce();
        }),
      );
      expect(outcomes.map((o) => o.kind)).toEqual(
        Array.from({ length: CLIENTS }, (_, c) => (c < LEAVES_AFTER_R2 ? 'dropped' : 'completed')),
      );
      await eventually('the recorder to read every upload at rest', async () =>
        recorder.entries().filter((e) => e.key.includes(':upload:')).length >= UPLOADERS ? true : undefined,
      );
      cluster.addWorker();
      info = await eventually(
        'the round to complete',
        async () => {
          const r = await h.roundOf(id, 1);
          if (r.phase === 'failed') throw new Error(`the round failed: ${r.error}`);
          return r.phase === 'completed' ? r : undefined;
        },
        120_000,
      );
    } finally {
      await recorder.stop();
    }

    // The released output: the exact sums of the 13 uploaders, over at least min_clients_in_aggregate.
    const values = Array.from({ length: CLIENTS }, (_, c) => threeSumsOf(sumOf(c)));
    const total = (k: 'v1' | 'v2' | 'v3') => values.slice(LEAVES_AFTER_R1).reduce((a, v) => a + v[k], 0);
    const output = { v1: total('v1'), v2: total('v2'), v3: total('v3') % THREE_SUMS.modulus };
    expect(info.output).toEqual(output);
    expect(info.aggregated_clients).toBe(UPLOADERS);
    expect(UPLOADERS).toBeGreaterThanOrEqual(MIN_CLIENTS);

    const clear = new Map<number, string>();
    values.forEach((v, c) => {
      clear.set(v.v1, `client ${c}'s V1`);
      clear.set(v.v2, `client ${c}'s V2`);
      clear.set(v.v3, `client ${c}'s V3`);
    });
    expect(clear.size).toBe(3 * CLIENTS);
    const problems: string[] = [];
    const trail = trails(sent, CLIENTS, problems);
    const clientOfIndex = new Map(trail.map((t, c) => [t.index, c]));
    const clientOfTask = new Map(trail.map((t, c) => [t.task, c]));
    expect(new Set(clientOfIndex.keys())).toEqual(new Set(Array.from({ length: CLIENTS }, (_, i) => i)));

    // Every request body and every answer: no client value in the clear, masked uploads aside (below).
    for (const s of sent) {
      const where = `client ${s.client}: ${s.method} ${routeOf(s.url)}`;
      if (routeOf(s.url) === '/result') {
        const { tensors, metadata } = readBundle(s.body!);
        expect(tensors.map((t) => [t.dtype, t.shape])).toEqual([
          ['int32', [2, 1]],
          ['int32', [2, 1]],
          ['int32', [2, 1]],
        ]);
        expect(metadata).toEqual({});
      } else if (s.body) {
        problems.push(...clearHits(s.body, clear).map((x) => `${where} sent ${x}`));
      }
      problems.push(...clearHits(s.answer, clear).map((x) => `${where} was answered ${x}`));
    }

    // The masked uploads: residues mod M that are not the client's values. A masked value equals its input
    // with probability 1/M (M = 97 for V3), so per tensor only as many may as chance allows.
    const moduli = flatByKind(maskingModuli(THREE_SUMS_PARAMS, CLIENTS));
    expect(moduli).toEqual([2 ** 12, 2 ** 14, 97]);
    const uploaders = trail.flatMap((t, c) => (t.upload ? [c] : []));
    expect(uploaders).toEqual(Array.from({ length: UPLOADERS }, (_, k) => k + LEAVES_AFTER_R1));
    const equal = [0, 0, 0];
    for (const c of uploaders) {
      const plain = [values[c]!.v1, values[c]!.v2, values[c]!.v3 % THREE_SUMS.modulus];
      const masked = readBundle(trail[c]!.upload!).tensors.map((t, k) => fromLanes(t.data, moduli[k]!)[0]!);
      masked.forEach((y, k) => (equal[k] = equal[k]! + (y === plain[k] ? 1 : 0)));
      expect(masked).not.toEqual(plain);
    }
    equal.forEach((n, k) => expect(n).toBeLessThanOrEqual(chanceBound(UPLOADERS, moduli[k]!)));

    // Redis: each entry is what a client sent of the exchange, a partial of enough clients, the released
    // output, or holds no client value in the clear.
    const partialClients: number[] = [];
    const counts = { keys: 0, inbox: 0, upload: 0, unmask: 0, partial: 0, output: 0, other: 0 };
    const kinds = new Map<number, Set<string>>();
    for (const e of recorder.entries()) {
      const what = classify(e);
      counts[what] += 1;
      if (what === 'unmask') {
        const of = Number(e.field!.split(':')[0]);
        kinds.set(of, (kinds.get(of) ?? new Set()).add(e.value.toString().slice(0, 1)));
      }
    }
    function classify(e: Stored): keyof typeof counts {
      const at = `${e.key}${e.field === undefined ? '' : ` [${e.field}]`}`;
      const value = e.value.toString();
      if (e.key.endsWith(':sa:keys')) {
        if (!trail.some((t) => t.keys === value)) problems.push(`${at} holds keys no client advertised`);
        return 'keys';
      }
      if (e.key.endsWith(':sa:inbox') && e.field !== undefined) {
        const [to, from] = e.field.split(':').map(Number);
        const ct = trail[clientOfIndex.get(from!)!]!.shares!.shares.find((x) => x.to === to)?.ct;
        if (ct !== value) problems.push(`${at} is not the ciphertext ${from} sent to ${to}`);
        return 'inbox';
      }
      if (e.key.endsWith(':sa:unmask') && e.field !== undefined) {
        const [of, by] = e.field.split(':').map(Number);
        const given = trail[clientOfIndex.get(by!)!]!.unmask!.shares.find((x) => x.of === of);
        if (!given || value !== `${given.kind}:${given.share}`)
          problems.push(`${at} is not the share ${by} gave of ${of}`);
        return 'unmask';
      }
      const upload = /:upload:([\w-]+)$/.exec(e.key);
      if (upload) {
        const body = trail[clientOfTask.get(upload[1]!)!]?.upload;
        if (!body || !e.value.equals(body)) problems.push(`${at} is not the masked upload its task sent`);
        return 'upload';
      }
      if (/:partial:/.test(e.key)) {
        const partial = decodePartial(
          e.value,
          types,
          THREE_SUMS_PARAMS,
          maskingModuli(THREE_SUMS_PARAMS, CLIENTS),
        );
        // As in test/redis-at-rest.test.ts, a worker may commit fewer once the attempt closed (issue 7): such a
        // partial is still masked, by the pairwise masks its uploads share with the rest of U3.
        if (partial.clients < MIN_CLIENTS && e.open)
          problems.push(`${at} is a partial of ${partial.clients} clients while the attempt is open`);
        partialClients.push(partial.clients);
        return 'partial';
      }
      if (/:r:1\.1$/.test(e.key) && e.field === 'output') {
        expect(JSON.parse(value)).toEqual(output);
        return 'output';
      }
      problems.push(...clearHits(e.value, clear).map((x) => `${at} holds ${x}`));
      return 'other';
    }

    expect(problems.slice(0, 20)).toEqual([]);
    // The recorder saw every kind: all 16 key pairs, 16 x 11 ciphertexts, the 13 uploads, the shares of the
    // 11 that unmasked (one per neighbour each), the partial and the output.
    expect(counts).toMatchObject({ keys: CLIENTS, inbox: CLIENTS * DEGREE, upload: UPLOADERS, output: 1 });
    expect(counts.partial).toBeGreaterThan(0);
    expect(Math.max(...partialClients)).toBe(UPLOADERS);
    const given = trail.reduce((n, t) => n + (t.unmask?.shares.length ?? 0), 0);
    expect(counts.unmask).toBe(given);
    // A Shamir share is one point of a random polynomial of degree t - 1 over GF(256) per byte of a seed or
    // key: fewer than t of them are uniform whatever the secret, and the secret is a mask seed, not an input.
    // The server gets t or more only of b_j for an uploader j (its self-mask; j's pairwise masks stay on) or
    // of s_sk_j for one that never uploaded (nothing of its own is in the sum): never both for one client.
    for (const [of, seen] of kinds) {
      const c = clientOfIndex.get(of)!;
      expect([of, [...seen]]).toEqual([of, [c < LEAVES_AFTER_R1 ? 's' : 'b']]);
    }
    console.log(
      `privacy: ${sent.length} requests, ${recorder.scans} Redis scans, ${recorder.entries().length} distinct entries: ${JSON.stringify(counts)}; partials of ${JSON.stringify(partialClients)} clients`,
    );
  }, 300_000);
});

/** A work result of the three-sums plan for a client whose examples sum to s, as the SDK makes it. */
function workResult(s: number): { update: Uint8Array; clientPlan: ClientPlan } {
  const checked = checkPlan(threeSumsPlan('privacy-stats', { rounds: 1, target_clients: 1 }));
  const clientPlan = JSON.parse(loadPlan('p', checked).clientPlan.json) as ClientPlan;
  const broadcast = encodeBundle(structValue([]), checked.types.C);
  const examples = numbers(s - Math.floor(s / 2), Math.floor(s / 2));
  return { update: runWork(clientPlan, broadcast, examples, 1), clientPlan };
}

describe('masked uploads through the SDK', () => {
  afterEach(() => {
    mockRandom = undefined;
  });

  test('1,000 masked uploads of one constant input are indistinguishable from uniform (chi-square at 1%)', async () => {
    const n = 1000;
    const s = 200;
    const { update, clientPlan } = workResult(s);
    const plain = threeSumsOf(s);
    // The SDK's own randomness (keys, self-mask seeds, nonces), seeded: the run is the same every time.
    mockRandom = seededRandom('secagg-privacy/uniformity');
    const exchange = new FakeExchange({
      n,
      degree: 3,
      threshold: 2,
      params: THREE_SUMS_PARAMS,
      session: sha256(new TextEncoder().encode('secagg-privacy/session')),
      graphSeed: sha256(new TextEncoder().encode('secagg-privacy/graph')),
    });
    const clock = new FakeClock();
    const tasks = Array.from({ length: n }, (_, i) => {
      const { ctx, assignment } = exchange.task(i, clock);
      return new SecAggExchange(ctx, assignment);
    });
    for (const t of tasks) await t.keys();
    exchange.phase = 'sharing';
    for (const t of tasks) await t.share();
    exchange.phase = 'reporting';
    const uploads: Uint8Array[] = [];
    for (const t of tasks) uploads.push(await t.mask(update, clientPlan.upload_type));

    // The upload bundles: the work result's tensors, each now int32 [2, 1] lanes of a residue mod M.
    const names = readBundle(update).tensors.map((t) => t.name);
    const moduli = flatByKind(maskingModuli(THREE_SUMS_PARAMS, n));
    expect(moduli).toEqual([2 ** 18, 2 ** 20, 97]);
    const masked = moduli.map((m, k) =>
      uploads.map((u) => {
        const t = readBundle(u).tensors[k]!;
        expect([t.name, t.dtype, t.shape]).toEqual([names[k], 'int32', [2, 1]]);
        return fromLanes(t.data, m)[0]!;
      }),
    );
    const inputs = [plain.v1, plain.v2, plain.v3 % THREE_SUMS.modulus];
    const buckets = [64, 64, 97];
    const stats = masked.map((values, k) => chiSquare(values, moduli[k]!, buckets[k]!));
    console.log(
      `chi-square of 1,000 masked uploads (V1, V2, V3): ${stats.map((x, k) => `${x.toFixed(1)} < ${chiSquareCritical(buckets[k]! - 1).toFixed(1)}`).join(', ')}`,
    );
    masked.forEach((_, k) => {
      expect(stats[k]).toBeLessThan(chiSquareCritical(buckets[k]! - 1));
      // The same statistic on what would be sent unmasked is far past it.
      const unmasked = new Array<number>(n).fill(inputs[k]!);
      expect(chiSquare(unmasked, moduli[k]!, buckets[k]!)).toBeGreaterThan(
        chiSquareCritical(buckets[k]! - 1),
      );
    });
  }, 180_000);
});

describe('the privacy checks can fail', () => {
  test('they find a value in the clear: an unmasked work result, a JSON number, a number in a field, int32 bytes', () => {
    const clear = new Map([
      [173, "client 0's V1"],
      [692, "client 0's V2"],
      [1211, "client 0's V3"],
    ]);
    const text = (t: string): Uint8Array => new TextEncoder().encode(t);
    // Without masking, the bundle work made for s = 173 holds all three values as they are.
    expect(clearHits(workResult(173).update, clear)).toHaveLength(3);
    expect(clearHits(text('{"output":{"v1":173}}'), clear)).toEqual(["client 0's V1 (173) as a JSON number"]);
    expect(clearHits(text('{"ids":"3:692"}'), clear)).toEqual(["client 0's V2 (692) as a number in text"]);
    expect(clearHits(text('b:1211'), clear)).toHaveLength(1);
    const binary = new Uint8Array(12).fill(0xff);
    new DataView(binary.buffer).setInt32(5, 1211, true);
    expect(clearHits(binary, clear)).toEqual(["client 0's V3 (1211) as int32 bytes at offset 5"]);
    expect(clearHits(text('{"n":16,"at":1796051237393,"ct":"x173y"}'), clear)).toEqual([]);
    // A masked tensor sent unmasked by 13 clients would show 13 equal values; chance allows few.
    expect([chanceBound(13, 97), chanceBound(13, 2 ** 12), chanceBound(13, 2 ** 14)]).toEqual([4, 2, 1]);
  });
});
