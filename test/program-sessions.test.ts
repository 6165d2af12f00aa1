import type { RoundhouseClient } from '../src/client';
import type { RunOutcome } from '../src/client/types';
import { initBackend } from '../src/compute/backend';
import type { JsonValue } from '../src/compute/value-json';
import type { Program } from '../src/stateful/program';
import { runProgram } from '../src/stateful/reference';
import type { ProgramSummary } from '../src/stateful/server/program-store';
import type { RequestsResponse, SessionGrant } from '../src/stateful/wire';
import Redis from 'ioredis';
import { HELD_POLLS_PER_HOLDER } from '../src/api/held-polls';
import { eventually, startCluster, type Cluster } from './support/cluster';
import { apiMetric } from './support/metrics';
import { testRedisUrl } from './support/test-redis';
import { varianceProgram } from './support/programs';
import { readings, sumProgram, programDevice, type DeviceArgs } from './support/stateful-programs';

// Hostile programs and hostile or failing devices against a real server (API and worker processes, real
// Redis, real HTTP), with the sum-then-scale program (test/support/stateful-programs.ts): each device sums
// its readings (s), the sums are aggregated (total), the server doubles it and broadcasts it, each device
// scales its own sum by it and those are aggregated (scaled_total).
type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('stateful programs: hostile programs, hostile and failing devices', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    await initBackend();
    // A killed worker's jobs stall for WORKER_LOCK_MS before another takes them (the SIGKILL test).
    cluster = await startCluster({ workers: 1, env: { WORKER_LOCK_MS: '2000' } });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  let populations = 0;
  /** The program with its own population (tests do not share cohorts) and short timeouts. */
  function program(min: number, target: number, stepTimeoutS = 60): Program {
    const p: Json = sumProgram(min, target);
    p.population = `sensors-${process.pid}-${++populations}`;
    p.cohort.step_timeout_s = stepTimeoutS;
    return p as Program;
  }

  async function submit(p: unknown): Promise<Response> {
    return cluster.operator('/v1/programs', { method: 'POST', body: JSON.stringify(p) });
  }

  async function submitted(p: Program): Promise<string> {
    const res = await submit(p);
    expect(res.status).toBe(201);
    return ((await res.json()) as { id: string }).id;
  }

  async function summary(id: string): Promise<ProgramSummary & { sessions: Record<string, number> }> {
    return (await (await cluster.operator(`/v1/programs/${id}`)).json()) as ProgramSummary & {
      sessions: Record<string, number>;
    };
  }

  async function ended(id: string): Promise<ProgramSummary & { sessions: Record<string, number> }> {
    return eventually(`program ${id} to end`, async () => {
      const p = await summary(id);
      return p.status === 'completed' || p.status === 'failed' ? p : undefined;
    });
  }

  const device = (...args: DeviceArgs): RoundhouseClient => programDevice(cluster.url, ...args);

  /** Checks in as `deviceId` by hand and answers its grant. */
  async function grantOf(population: string, deviceId: string): Promise<SessionGrant> {
    const res = await fetch(`${cluster.url}/v1/populations/${population}/checkin`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ device_id: deviceId }),
    });
    const body = (await res.json()) as { session?: SessionGrant };
    if (!body.session) throw new Error(`no session: ${JSON.stringify(body)}`);
    return body.session;
  }

  /**
   * A fetch that dies with its device once it has answered a contribution: every call after fails as a
   * killed process's would (nothing reaches the server, not even a DELETE).
   */
  function dyingFetch(onDeath: () => void): typeof globalThis.fetch {
    let dead = false;
    return async (input, init) => {
      if (dead) throw new TypeError('fetch failed: the device is dead');
      const res = await fetch(input, init);
      const url = String(input instanceof Request ? input.url : input);
      if (url.endsWith('/answers') && typeof init?.body === 'string' && init.body.includes('"contributed"')) {
        dead = true;
        onDeath();
      }
      return res;
    };
  }

  describe('programs refused at submission, with the code and the pointer', () => {
    it.each([
      [
        'a server step reading a client value directly',
        (p: Json) => (p.steps[3].args = ['stats']),
        'PROGRAM_PRIVACY_VIOLATION',
        '/steps/3/args/0',
      ],
      [
        'an output naming a client value',
        (p: Json) => {
          p.outputs.leak = 'dev';
          p.steps.at(-1).values = ['values'];
        },
        'PROGRAM_PRIVACY_VIOLATION',
        '/outputs/leak',
      ],
      [
        'an aggregation below the cohort minimum',
        (p: Json) => (p.steps[2].min_clients = 2),
        'PROGRAM_PRIVACY_VIOLATION',
        '/steps/2/min_clients',
      ],
      [
        'a cohort of one',
        (p: Json) => {
          p.cohort.min_clients = 1;
          p.steps[2].min_clients = 1;
        },
        'PROGRAM_PRIVACY_VIOLATION',
        '/cohort/min_clients',
      ],
      [
        'a step naming a value that does not exist',
        (p: Json) => (p.steps[5].args = ['stats', 'elsewhere']),
        'PLAN_TYPE_ERROR',
        '/steps/5/args/1',
      ],
    ])('%s', async (_, mutate, code, pointer) => {
      const p: Json = varianceProgram();
      mutate(p);
      const res = await submit(p);
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: { code: string; details: { path: string }[] } };
      expect(body.error.code).toBe(code);
      expect(body.error.details.map((d) => d.path)).toContain(pointer);
      expect(
        ((await (await cluster.operator('/v1/programs')).json()) as { programs: unknown[] }).programs.every(
          (x) => (x as { name: string }).name !== p.name || false,
        ),
      ).toBe(true);
    });
  });

  it('a session token is good for its own session only, and is no task token; answers come in order', async () => {
    const p = program(2, 2);
    const id = await submitted(p);
    const a = await grantOf(p.population, 'hostile-a');
    const b = await grantOf(p.population, 'hostile-b');
    // The same device checking in again gets its own live session back, not a second place.
    expect((await grantOf(p.population, 'hostile-a')).session_id).toBe(a.session_id);
    const auth = (token: string) => ({ authorization: `Bearer ${token}` });
    // b's token on a's session.
    const foreign = await fetch(`${a.requests_url}?after=0&wait=0`, { headers: auth(b.token) });
    expect(foreign.status).toBe(401);
    expect(((await foreign.json()) as { error: { code: string } }).error.code).toBe('TOKEN_INVALID');
    // A forged token.
    const forged = await fetch(`${a.requests_url}?after=0&wait=0`, {
      headers: auth(`${a.token.slice(0, -4)}AAAA`),
    });
    expect(forged.status).toBe(401);
    // A session token as a task token.
    const upload = await fetch(`${cluster.url}/v1/tasks/anything/result`, {
      method: 'POST',
      headers: { ...auth(a.token), 'content-type': 'application/octet-stream' },
      body: new Uint8Array(8),
    });
    expect(upload.status).toBe(401);
    // The cohort is full: the driver starts, and a's first requests arrive.
    const polled = await eventually('requests for a', async () => {
      const r = (await (
        await fetch(`${a.requests_url}?after=0&wait=5`, { headers: auth(a.token) })
      ).json()) as RequestsResponse;
      return r.requests.length > 0 ? r : undefined;
    });
    expect(polled.requests[0]).toMatchObject({ seq: 1, request: { kind: 'create_data', handle: 'h0' } });
    // An answer out of order.
    const skip = await fetch(a.answers_url, {
      method: 'POST',
      headers: { ...auth(a.token), 'content-type': 'application/json' },
      body: JSON.stringify({ answers: [{ seq: 2, ok: true, kind: 'disposed' }] }),
    });
    expect(skip.status).toBe(409);
    expect(((await skip.json()) as { error: { code: string } }).error.code).toBe('ANSWER_OUT_OF_ORDER');
    // An answer that is no answer.
    const junk = await fetch(a.answers_url, {
      method: 'POST',
      headers: { ...auth(a.token), 'content-type': 'application/json' },
      body: JSON.stringify({ answers: [{ seq: 1, value: [1, 2, 3] }] }),
    });
    expect(junk.status).toBe(400);
    // Answered up to the contribution, whose poll must carry the session's own device credential: the server
    // keeps only the device's binding to the program, and assigns the contribution's task to the device id.
    const created = (seq: number, handle: string) => ({
      seq,
      ok: true,
      kind: 'created',
      handle,
      type: { kind: 'struct', fields: [] },
    });
    const answered = await fetch(a.answers_url, {
      method: 'POST',
      headers: { ...auth(a.token), 'content-type': 'application/json' },
      body: JSON.stringify({ answers: [created(1, 'h0'), created(2, 'h1')] }),
    });
    expect(await answered.json()).toEqual({ answered: 2 });
    const contribution = (credential?: string) =>
      fetch(`${a.requests_url}?after=2&wait=5`, {
        headers: { ...auth(a.token), ...(credential ? { 'x-device-credential': credential } : {}) },
      });
    const bare = await contribution();
    expect(bare.status).toBe(401);
    expect(((await bare.json()) as { error: { code: string } }).error.code).toBe('DEVICE_CREDENTIAL_INVALID');
    const other = await contribution('hostile-b');
    expect(other.status).toBe(403);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('DEVICE_MISMATCH');
    const own = (await (await contribution('hostile-a')).json()) as RequestsResponse;
    expect(own.requests[0]).toMatchObject({
      seq: 3,
      request: { kind: 'contribute', aggregation: 'total', handle: 'h1' },
    });
    expect((own.requests[0]!.request as { token: string }).token).not.toBe('');
    // The aggregation's plan takes no device from outside the cohort: not through the program's data
    // collection, and its own population is not a name a device can check in to.
    const outsider = async (population: string) =>
      fetch(`${cluster.url}/v1/populations/${encodeURIComponent(population)}/checkin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ device_id: 'outsider' }),
      });
    expect(await (await outsider('readings')).json()).toHaveProperty('retry');
    const hidden = await outsider(`~p.${id}`);
    expect(hidden.status).toBe(400);
    expect(((await hidden.json()) as { error: { code: string } }).error.code).toBe('REQUEST_INVALID');
    // Neither the token nor Redis holds the device id.
    expect(Buffer.from(a.token.split('.')[1]!, 'base64url').toString()).not.toContain('hostile-a');
    // a fails its contribution with a message quoting its data: the server keeps the code, not the words.
    const failed = await fetch(a.answers_url, {
      method: 'POST',
      headers: { ...auth(a.token), 'content-type': 'application/json' },
      body: JSON.stringify({
        answers: [{ seq: 3, ok: false, code: 'DATA_INVALID', message: 'row 2: secret-value-42' }],
      }),
    });
    expect(await failed.json()).toEqual({ answered: 2 });
    const told = (await (
      await fetch(`${a.requests_url}?after=2&wait=0`, { headers: auth(a.token) })
    ).json()) as RequestsResponse;
    expect(told.end).toEqual({ status: 'failed', code: 'DATA_INVALID', reason: 'request 3: DATA_INVALID' });
    // b leaves: a cohort of 2 with minimum 2 cannot go on, and the program fails with its reason.
    expect((await fetch(b.session_url, { method: 'DELETE', headers: auth(b.token) })).status).toBe(204);
    const p2 = await ended(id);
    expect(p2.status).toBe('failed');
    // a failed, then b left: the driver sees one or both gone, whichever its pass comes after.
    expect(p2.error).toMatch(/[01] devices are live, fewer than the min_clients \(2\)/);
    expect(p2.outputs).toBeUndefined();
    const end = (await (
      await fetch(`${a.requests_url}?after=1&wait=1`, { headers: auth(a.token) })
    ).json()) as RequestsResponse;
    expect(end.end).toMatchObject({ status: 'failed' });
    const redis = new Redis(testRedisUrl());
    try {
      for (const key of await redis.keys(`${cluster.prefix}:{p.${id}}:*`)) {
        const type = await redis.type(key);
        const dump =
          type === 'hash'
            ? JSON.stringify(await redis.hgetall(key))
            : type === 'list'
              ? JSON.stringify(await redis.lrange(key, 0, -1))
              : type === 'string'
                ? String(await redis.get(key))
                : '';
        expect(dump).not.toContain('hostile-a');
        expect(dump).not.toContain('secret-value-42');
      }
    } finally {
      redis.disconnect();
    }
  }, 120_000);

  it('a device killed mid-program and restarted (its state lost): the others finish without it', async () => {
    const p = program(2, 3);
    const id = await submitted(p);
    const data = [readings(1, 2, 3), readings(4, 5), readings(10)];
    const ids = ['kill-a', 'kill-b', 'kill-victim'];
    const stop = new AbortController();
    const runs = [
      device(p.population, ids[0]!, data[0]!).runOnce(),
      device(p.population, ids[1]!, data[1]!).runOnce(),
      device(
        p.population,
        ids[2]!,
        data[2]!,
        dyingFetch(() => stop.abort()),
        stop.signal,
      )
        .runOnce()
        .catch((e: unknown) => e),
    ];
    if (!stop.signal.aborted) await new Promise((r) => stop.signal.addEventListener('abort', r));
    // The victim comes back with no state: the check-in gives it its session again, and the next request
    // naming a handle it held fails it.
    const again = (await device(p.population, ids[2]!, data[2]!).runOnce()) as Extract<
      RunOutcome,
      { kind: 'session' }
    >;
    expect(again.session).toMatchObject({ status: 'failed', code: 'HANDLE_UNKNOWN' });
    const outcomes = (await Promise.all(runs.slice(0, 2))) as Extract<RunOutcome, { kind: 'session' }>[];
    for (const o of outcomes) expect(o.session.status).toBe('completed');
    const server = await ended(id);
    expect(server.status).toBe('completed');
    expect(server.sessions).toMatchObject({ live: 2, failed: 1 });
    // The reference: the victim contributed to `total`, then lost its state after step 2.
    const reference = await runProgram(p, new Map(ids.map((d, i) => [d, data[i]!])), {
      loseStateAfterStep: new Map([['kill-victim', 2]]),
    });
    expect(reference.failed).toBeUndefined();
    expect(server.outputs).toEqual(reference.outputs as JsonValue);
    // total over all three (1+2+3+4+5+10 = 25); scaled_total over the two left (6 + 9) * 50.
    expect(server.outputs).toEqual({ total: 25, doubled: 50, scaled_total: 750 });
  }, 120_000);

  it('a device killed for good with too few left: the program fails with its reason and releases nothing', async () => {
    const p = program(3, 3, 3);
    const id = await submitted(p);
    const stop = new AbortController();
    const runs = [
      device(p.population, 'few-a', readings(1)).runOnce(),
      device(p.population, 'few-b', readings(2)).runOnce(),
      device(
        p.population,
        'few-victim',
        readings(3),
        dyingFetch(() => stop.abort()),
        stop.signal,
      )
        .runOnce()
        .catch((e: unknown) => e),
    ];
    const server = await ended(id);
    expect(server.status).toBe('failed');
    // The silent device times out (step_timeout_s 3), and 2 live devices cannot make a minimum of 3.
    expect(server.error).toMatch(/2 devices are live, fewer than the min_clients \(3\)/);
    expect(server.outputs).toBeUndefined();
    expect(server.sessions).toMatchObject({ failed: 1 });
    const outcomes = (await Promise.all(runs.slice(0, 2))) as Extract<RunOutcome, { kind: 'session' }>[];
    for (const o of outcomes) expect(o.session).toMatchObject({ status: 'failed', endedBy: 'server' });
    // The operator deletes the ended program: its keys, and its aggregations' plans with theirs.
    const aggregations = ((await summary(id)) as unknown as { aggregations: string[] }).aggregations;
    expect(aggregations.length).toBeGreaterThan(0);
    const deleted = await cluster.operator(`/v1/programs/${id}`, { method: 'DELETE' });
    expect(deleted.status).toBe(200);
    expect(((await deleted.json()) as { keys: number }).keys).toBeGreaterThan(0);
    expect((await cluster.operator(`/v1/programs/${id}`)).status).toBe(404);
    for (const plan of aggregations) expect((await cluster.operator(`/v1/plans/${plan}`)).status).toBe(404);
    const redis = new Redis(testRedisUrl());
    try {
      expect(await redis.keys(`${cluster.prefix}:{p.${id}}:*`)).toEqual([]);
      expect(await redis.zscore(`${cluster.prefix}:programs`, id)).toBeNull();
    } finally {
      redis.disconnect();
    }
  }, 120_000);

  it('a device that held its poll longer than step_timeout_s before a request went out is not timed out', async () => {
    // Recruiting runs to its join deadline (target 3, 2 devices), 6 s, while both devices hold one poll each;
    // step_timeout_s is 2, and each device takes a second to answer every request. Its silence counts from
    // when the request went out, not from the start of the poll that got it.
    const p: Json = program(2, 3, 2);
    p.cohort.join_timeout_s = 6;
    const id = await submitted(p);
    const slow: typeof globalThis.fetch = async (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      if (url.endsWith('/answers')) await new Promise((r) => setTimeout(r, 1000));
      return fetch(input, init);
    };
    const runs = ['held-a', 'held-b'].map((d, i) =>
      device(p.population, d, readings(i + 1, 2), slow).runOnce(),
    );
    const server = await ended(id);
    expect([server.status, server.error]).toEqual(['completed', undefined]);
    expect(server.sessions).toMatchObject({ failed: 0 });
    const outcomes = (await Promise.all(runs)) as Extract<RunOutcome, { kind: 'session' }>[];
    for (const o of outcomes) expect(o.session).toMatchObject({ status: 'completed' });
  }, 120_000);

  it('the worker driving a program is SIGKILLed mid-program: another resumes it from Redis, outputs exact', async () => {
    const p = program(3, 3);
    const id = await submitted(p);
    let killed = false;
    // The first device to answer a contribution kills the only worker (driver and aggregation both).
    const killing: typeof globalThis.fetch = async (input, init) => {
      const res = await fetch(input, init);
      const url = String(input instanceof Request ? input.url : input);
      if (
        !killed &&
        url.endsWith('/answers') &&
        typeof init?.body === 'string' &&
        init.body.includes('"contributed"')
      ) {
        killed = true;
        cluster.workers[0]!.kill('SIGKILL');
        cluster.addWorker();
      }
      return res;
    };
    const outcomes = (await Promise.all([
      device(p.population, 'restart-a', readings(1, 2), killing).runOnce(),
      device(p.population, 'restart-b', readings(3), killing).runOnce(),
      device(p.population, 'restart-c', readings(4), killing).runOnce(),
    ])) as Extract<RunOutcome, { kind: 'session' }>[];
    expect(killed).toBe(true);
    for (const o of outcomes) expect(o.session.status).toBe('completed');
    const server = await ended(id);
    expect(server.status).toBe('completed');
    // total 10, doubled 20, scaled_total (3 + 3 + 4) * 20.
    expect(server.outputs).toEqual({ total: 10, doubled: 20, scaled_total: 200 });
  }, 120_000);

  it('one session holds at most HELD_POLLS_PER_HOLDER polls at once; the next is answered at once', async () => {
    const p = program(2, 3);
    const id = await submitted(p);
    // One device of a cohort of 2: the program recruits, and the session has no requests to wait for.
    const g = await grantOf(p.population, 'held-polls-a');
    const poll = async (wait: number) =>
      (await (
        await fetch(`${g.requests_url}?after=0&wait=${wait}`, {
          headers: { authorization: `Bearer ${g.token}` },
        })
      ).json()) as RequestsResponse;
    const unheld = () => apiMetric(cluster.url, 'roundhouse_polls_unheld_total{bound="holder"}');
    const unheld0 = await unheld();
    // Five polls of the session at once: four are held, whichever comes last is answered at once.
    let answered = 0;
    const polls = Array.from({ length: HELD_POLLS_PER_HOLDER + 1 }, () =>
      poll(30).then((r) => {
        answered += 1;
        return r;
      }),
    );
    const first = await Promise.race(polls);
    expect(first).toMatchObject({ requests: [] });
    expect(first.end).toBeUndefined();
    expect(answered).toBe(1);
    // Only this test holds four polls of one session: the holder bound's count is this poll's.
    expect(await unheld()).toBe(unheld0 + 1);
    const held = await apiMetric(cluster.url, 'roundhouse_held_polls');
    expect(held).toBeGreaterThanOrEqual(HELD_POLLS_PER_HOLDER);
    // The operator cancels the program: the four held polls answer with the session's end, and let go.
    expect((await cluster.operator(`/v1/programs/${id}/cancel`, { method: 'POST' })).status).toBe(200);
    const all = await Promise.all(polls);
    expect(all.filter((r) => r.end?.status === 'failed')).toHaveLength(HELD_POLLS_PER_HOLDER);
    expect(await apiMetric(cluster.url, 'roundhouse_held_polls')).toBeLessThanOrEqual(
      held - HELD_POLLS_PER_HOLDER,
    );
  }, 120_000);

  it('the operator cancels a program: its sessions end, it cannot be cancelled twice, and once deleted it is served no more', async () => {
    const p = program(2, 3);
    const id = await submitted(p);
    const g = await grantOf(p.population, 'cancel-a');
    const early = await cluster.operator(`/v1/programs/${id}`, { method: 'DELETE' });
    expect(early.status).toBe(409);
    expect(((await early.json()) as { error: { code: string } }).error.code).toBe('PLAN_ACTIVE');
    const res = await cluster.operator(`/v1/programs/${id}/cancel`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'cancelled', error: 'cancelled by the operator' });
    const poll = (await (
      await fetch(`${g.requests_url}?after=0&wait=1`, { headers: { authorization: `Bearer ${g.token}` } })
    ).json()) as RequestsResponse;
    expect(poll.end).toMatchObject({ status: 'failed', reason: 'cancelled by the operator' });
    const again = await cluster.operator(`/v1/programs/${id}/cancel`, { method: 'POST' });
    expect(again.status).toBe(409);
    expect((await cluster.operator('/v1/programs/pnosuchprogram/cancel', { method: 'POST' })).status).toBe(
      404,
    );
    // A cancelled program takes no one.
    const late = await fetch(`${cluster.url}/v1/populations/${p.population}/checkin`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ device_id: 'cancel-late' }),
    });
    expect(await late.json()).toHaveProperty('retry');

    // Deleted, it is served no more, though this API process served (and cached) its client program.
    const asDevice = { headers: { authorization: `Bearer ${g.token}` } };
    expect((await fetch(g.client_program_url, asDevice)).status).toBe(200);
    expect((await cluster.operator(`/v1/programs/${id}`, { method: 'DELETE' })).status).toBe(200);
    const gone = await fetch(g.client_program_url, asDevice);
    expect({ status: gone.status, body: await gone.json() }).toMatchObject({
      status: 404,
      body: { error: { code: 'PROGRAM_NOT_FOUND' } },
    });
    const poll2 = await fetch(`${g.requests_url}?after=0`, asDevice);
    expect({ status: poll2.status, body: await poll2.json() }).toMatchObject({
      status: 404,
      body: { error: { code: 'SESSION_NOT_FOUND' } },
    });
  });
});
