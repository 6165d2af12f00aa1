import { gunzipSync } from 'node:zlib';
import type { RoundhouseClient } from '../src/client';
import type { RunOutcome } from '../src/client/types';
import { readBundle } from '../src/codec';
import { initBackend } from '../src/compute/backend';
import type { JsonValue } from '../src/compute/value-json';
import type { Program } from '../src/stateful/program';
import { runProgram } from '../src/stateful/reference';
import type { ProgramSummary } from '../src/stateful/server/program-store';
import { eventually, startCluster, type Cluster } from './support/cluster';
import {
  readings,
  secureCountProgram,
  type SecureCountOptions,
  programDevice,
  type DeviceArgs,
} from './support/stateful-programs';

// A program's secure sums through a real server (API and worker processes, real Redis, real HTTP) with Node
// devices: the secure-count program (test/support/stateful-programs.ts) sums each device's int32 counts
// <n, high> with a secure sum under SecAgg+, then sums n - high in the clear with an aggregate.
type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any
type Session = Extract<RunOutcome, { kind: 'session' }>;
type Summary = ProgramSummary & { sessions: Record<string, number>; aggregations: string[] };

interface RoundView {
  phase: string;
  aggregated_clients: number;
  error: string | null;
  secure_aggregation?: { protocol: string; advertised: number; shared: number; unmasked: number };
}

describe('stateful programs: secure sums under SecAgg+', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    await initBackend();
    cluster = await startCluster({ workers: 1 });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  let populations = 0;
  function program(min: number, target: number, o?: SecureCountOptions): Program {
    const p: Json = secureCountProgram(min, target, o);
    p.population = `secure-${process.pid}-${++populations}`;
    return p as Program;
  }

  async function submitted(p: unknown): Promise<string> {
    const res = await cluster.operator('/v1/programs', { method: 'POST', body: JSON.stringify(p) });
    expect(res.status).toBe(201);
    return ((await res.json()) as { id: string }).id;
  }

  async function summary(id: string): Promise<Summary> {
    return (await (await cluster.operator(`/v1/programs/${id}`)).json()) as Summary;
  }

  async function ended(id: string): Promise<Summary> {
    return eventually(`program ${id} to end`, async () => {
      const p = await summary(id);
      return p.status === 'completed' || p.status === 'failed' ? p : undefined;
    });
  }

  async function rounds(plan: string): Promise<RoundView[]> {
    return ((await (await cluster.operator(`/v1/plans/${plan}/rounds`)).json()) as { rounds: RoundView[] })
      .rounds;
  }

  const device = (...args: DeviceArgs): RoundhouseClient => programDevice(cluster.url, ...args);

  /** A fetch that keeps the bodies of the device's uploads (what the server receives of its contributions). */
  function recording(uploads: Uint8Array[]): typeof globalThis.fetch {
    return async (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      if (url.endsWith('/result') && init?.body instanceof Uint8Array) {
        const gzip = new Headers(init.headers).get('content-encoding') === 'gzip';
        uploads.push(gzip ? new Uint8Array(gunzipSync(init.body)) : init.body);
      }
      return fetch(input, init);
    };
  }

  /**
   * A fetch whose device dies at its first upload after it has sent its SecAgg key shares: the upload and
   * every call after fail as a killed process's would (nothing reaches the server, not even a DELETE). Its
   * neighbours then hold shares of its masks, which they must send for the sum to be unmasked without it.
   */
  function dyingAtUpload(onDeath: () => void): typeof globalThis.fetch {
    let dead = false;
    let shared = false;
    return async (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      if (!dead && shared && url.endsWith('/result')) {
        dead = true;
        onDeath();
      }
      if (dead) throw new TypeError('fetch failed: the device is dead');
      const res = await fetch(input, init);
      if (url.endsWith('/secagg/shares') && res.ok) shared = true;
      return res;
    };
  }

  const data = [readings(1, 2, 3), readings(4, 5), readings(0.5, 3, 7, 9), readings(2)];

  it('a secure sum equals the reference, and the server receives only masked contributions', async () => {
    const p = program(3, 4);
    const id = await submitted(p);
    const ids = data.map((_, i) => `sum-${i}`);
    const uploads: Uint8Array[] = [];
    const runs = ids.map((d, i) => device(p.population, d, data[i]!, recording(uploads)).runOnce());
    const outcomes = (await Promise.all(runs)) as Session[];
    for (const o of outcomes) expect(o.session).toMatchObject({ status: 'completed', contributions: 2 });
    const server = await ended(id);
    expect([server.status, server.error]).toEqual(['completed', undefined]);
    const reference = await runProgram(p, new Map(ids.map((d, i) => [d, data[i]!])));
    expect(reference.failed).toBeUndefined();
    expect(server.outputs).toEqual(reference.outputs as JsonValue);
    // n = 3 + 2 + 4 + 1 = 10; high (> 2) = 1 + 2 + 3 + 0 = 6; low = 4.
    expect(server.outputs).toEqual({ total: { n: 10, high: 6 }, fraction: Math.fround(0.6), low_total: 4 });

    // The secure sum ran as a SecAgg+ round over all four devices.
    const [secure, plain] = server.aggregations;
    const plan = (await (await cluster.operator(`/v1/plans/${secure}`)).json()) as Json;
    expect(plan.name).toBe('secure-count.total');
    const [round] = await rounds(secure!);
    expect(round).toMatchObject({
      phase: 'completed',
      aggregated_clients: 4,
      secure_aggregation: { protocol: 'secagg+', advertised: 4, shared: 4, unmasked: 4 },
    });
    expect((await rounds(plain!))[0]?.secure_aggregation).toBeUndefined();

    // Of every device, one upload to each aggregation: the secure sum's carries each count as two int32
    // lanes of a residue modulo its masking modulus, not the count itself; the plain one carries n - high.
    expect(uploads).toHaveLength(8);
    const bundles = uploads.map((u) => readBundle(u).tensors);
    const masked = bundles.filter((t) => t.some((x) => x.shape.length === 2));
    expect(masked).toHaveLength(4);
    for (const tensors of masked) {
      expect(tensors.map((t) => [t.name, t.shape])).toEqual([
        ['1/n', [2, 1]],
        ['1/high', [2, 1]],
      ]);
    }
    // The masked n of the four devices differ from one another and are not their counts (3, 2, 4, 1): a
    // value y travels as the lanes [floor(y / 2^31), y mod 2^31], so a count c unmasked would be [0, c].
    const lanes = masked.map((t) => Array.from(t[0]!.data as Int32Array).join(','));
    expect(new Set(lanes).size).toBe(4);
    for (const count of [3, 2, 4, 1]) expect(lanes).not.toContain(`0,${count}`);
  }, 180_000);

  it('a device dies after sharing its keys, before its upload: the sum is unmasked without it, exactly', async () => {
    // The dead device's session times out 10 s after the sum's contribute request went out; the sum's round
    // closes at its deadline (its target, 4 uploads, is never reached), and the plain aggregate after it
    // runs with the three left.
    const p = program(2, 4, { bitwidth: 8, deadlineS: 8, stepTimeoutS: 10 });
    const id = await submitted(p);
    const ids = data.map((_, i) => `drop-${i}`);
    const stop = new AbortController();
    const runs = ids.map((d, i) =>
      i === 3
        ? device(
            p.population,
            d,
            data[i]!,
            dyingAtUpload(() => stop.abort()),
            stop.signal,
          )
            .runOnce()
            .catch((e: unknown) => e)
        : device(p.population, d, data[i]!).runOnce(),
    );
    const outcomes = (await Promise.all(runs.slice(0, 3))) as Session[];
    for (const o of outcomes) expect(o.session).toMatchObject({ status: 'completed' });
    const server = await ended(id);
    expect([server.status, server.error]).toEqual(['completed', undefined]);
    // The reference without the dead device: the outputs cover the three others only.
    const reference = await runProgram(p, new Map(ids.slice(0, 3).map((d, i) => [d, data[i]!])));
    expect(server.outputs).toEqual(reference.outputs as JsonValue);
    expect(server.outputs).toEqual({ total: { n: 9, high: 6 }, fraction: Math.fround(6 / 9), low_total: 3 });
    const [round] = await rounds(server.aggregations[0]!);
    expect(round).toMatchObject({
      aggregated_clients: 3,
      secure_aggregation: { advertised: 4, shared: 4, unmasked: 3 },
    });
    await runs[3];
  }, 180_000);

  it('with too few devices left the secure sum fails with its reason and releases nothing', async () => {
    const p = program(3, 3, { bitwidth: 8, deadlineS: 8, stepTimeoutS: 10 });
    const id = await submitted(p);
    const stop = new AbortController();
    const runs = [
      device(p.population, 'few-0', data[0]!).runOnce(),
      device(p.population, 'few-1', data[1]!).runOnce(),
      device(
        p.population,
        'few-2',
        data[2]!,
        dyingAtUpload(() => stop.abort()),
        stop.signal,
      )
        .runOnce()
        .catch((e: unknown) => e),
    ];
    const server = await ended(id);
    expect(server.status).toBe('failed');
    // The dead device never uploads: 2 uploads by the deadline, and the minimum is 3.
    expect(server.error).toBe(
      'step 2 (secure_sum total): reporting deadline with 2 reports, fewer than min_reports (3)',
    );
    expect(server.outputs).toBeUndefined();
    const [round] = await rounds(server.aggregations[0]!);
    expect(round?.phase).toBe('failed');
    const outcomes = (await Promise.all(runs.slice(0, 2))) as Session[];
    for (const o of outcomes) expect(o.session).toMatchObject({ status: 'failed', endedBy: 'server' });
    await runs[2];
  }, 180_000);

  it('a device whose value is out of the secure sum range fails its own session; the others finish', async () => {
    // bitwidth 2: each count must lie in [0, 3]; out-0 has 4 readings. It fails before it advertises its
    // keys, so the others wait for it until the selection timeout (a quarter of deadline_s).
    const p = program(2, 3, { bitwidth: 2, deadlineS: 8 });
    const id = await submitted(p);
    const own = [readings(0.5, 3, 7, 9), readings(1, 2, 3), readings(4, 5)];
    const ids = ['out-0', 'out-1', 'out-2'];
    const outcomes = (await Promise.all(
      ids.map((d, i) => device(p.population, d, own[i]!).runOnce()),
    )) as Session[];
    expect(outcomes[0]!.session).toMatchObject({ status: 'failed', code: 'SECURE_SUM_OUT_OF_RANGE' });
    for (const o of outcomes.slice(1)) expect(o.session).toMatchObject({ status: 'completed' });
    const server = await ended(id);
    expect(server.status).toBe('completed');
    expect(server.sessions).toMatchObject({ failed: 1 });
    const reference = await runProgram(p, new Map(ids.map((d, i) => [d, own[i]!])));
    expect(reference.failedSessions.map((f) => [f.device, f.reason.split(':')[0]])).toEqual([
      ['out-0', 'SECURE_SUM_OUT_OF_RANGE'],
    ]);
    expect(server.outputs).toEqual(reference.outputs as JsonValue);
    expect(server.outputs).toEqual({ total: { n: 5, high: 3 }, fraction: Math.fround(0.6), low_total: 2 });
  }, 180_000);

  it.each<[string, SecureCountOptions, Json]>([
    ['modulus 4', { modulus: 4 }, { n: 2, high: 2 }],
    ['max_input 10, in the clear', { maxInput: 10, protocol: 'none' as const }, { n: 10, high: 6 }],
  ])(
    '%s: the semantics of its kind, as the reference',
    async (_, o, total) => {
      const p = program(2, 4, o);
      const id = await submitted(p);
      const ids = data.map((_, i) => `kind-${populations}-${i}`);
      await Promise.all(ids.map((d, i) => device(p.population, d, data[i]!).runOnce()));
      const server = await ended(id);
      expect([server.status, server.error]).toEqual(['completed', undefined]);
      const reference = await runProgram(p, new Map(ids.map((d, i) => [d, data[i]!])));
      expect(server.outputs).toEqual(reference.outputs as JsonValue);
      expect((server.outputs as Json).total).toEqual(total);
      const [round] = await rounds(server.aggregations[0]!);
      expect(round?.secure_aggregation?.protocol).toBe(o.protocol === 'none' ? undefined : 'secagg+');
    },
    180_000,
  );
});
