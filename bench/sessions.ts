// Benchmark: 1,000 concurrent long-polling sessions held by one API process (issue 13's acceptance point):
// the API's memory per held poll, errors, and how soon every held poll is answered once work is ready,
// against a bare express app that holds the same polls on an in-process EventEmitter
// (bench/sessions-baseline.ts), driven by the same generator in the same run.
//   npm run bench:sessions   (options: --devices N --trials N --warmup N --profile DIR)
//
// Roundhouse side: one API process (bench/sessions-api.ts: `roundhouse start --no-worker` plus an IPC channel
// to read its heap after a full collection) on a fresh Redis prefix. A program whose first steps are client
// steps (client_data, then client_calls) is submitted with cohort target = devices, and every device checks
// in and joins the cohort (the check-in answers its session grant). Then per trial: every device long-polls
// `requests?after=k&wait=30`; the benchmark checks in Redis that every poll is held (a poll records the
// session's last contact before it waits), waits a random 0.2-2.2 s (so that the work lands at any phase of
// the polls' 2 s recheck timers), and issues the step's request through ProgramStore.issue, the driver's own
// call (the request and the step's move in one script, then the program event). A poll's wake latency runs
// from just before that call to its answer read in full by the device. Once every poll of the trial is
// answered, each device posts its answer, as the SDK does (after the wake, so that the answers do not
// compete with it), and polls for the next. No worker process runs: the benchmark plays the driver for these
// client steps (ProgramStore.move from recruiting to running, then one issue per trial), so that the instant
// work becomes ready is known exactly. The default SCHEDULE_* bounds allow the cohort
// (SCHEDULE_MAX_TARGET_CLIENTS 100,000): none is raised.
//
// The baseline's devices check in, poll and answer the same way with the same generator (one undici Client,
// one keep-alive connection, per device); its work is issued by `POST /issue`. Both servers run side by side
// and their trials alternate (only one side's polls are held at a time), so that whatever else shares the
// machine weighs on both. Memory is read with 1,000 polls held, after a full collection, in the first and
// the last trial, against the same process before any device connected. Latency and CPU count only the
// trials between warm-up and that last one (see main). CPU time of each process (from /proc) is summed over
// the wake windows, from the issue to the last poll answered.
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { Client } from 'undici';
import { sequenceType, tensorType } from '../src/compute/types';
import { f32 } from '../src/plans/common';
import { newClient } from '../src/runtime/redis-connection';
import { ProgramBuilder } from '../src/stateful/builder';
import type { Program } from '../src/stateful/program';
import { ProgramStore, type StoredRequest } from '../src/stateful/server/program-store';
import type { RequestsResponse, SessionGrant } from '../src/stateful/wire';
import { Keys } from '../src/store/keys';
import { deleteKeys, freePort } from '../test/support/cluster';
import { testRedisUrl } from '../test/support/test-redis';
import { startInstrumented, type Instrumented, type Memory } from './instrumented';
import { CpuMeter, redisPid, runOptions } from './support';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

/** The acceptance bound on wake latency: p99 of the polls answered after work is ready (ms). */
const P99_BOUND_MS = 100;
/**
 * The memory bound of a held poll in the API process, per session: heap in use after a full collection
 * (measured 14-16 KiB: the socket, the request and response objects, the route's closure and its wait),
 * and resident memory, which also counts the heap's free space and the allocator's pages and so moves
 * from run to run (measured 3-68 KiB). For 1,000 polls: at most 32 MiB of heap, 128 MiB resident.
 */
const HEAP_PER_SESSION_BOUND = 32 * 1024;
const RSS_PER_SESSION_BOUND = 128 * 1024;
/** The long poll's wait, seconds (the most the server holds one: MAX_POLL_WAIT_S). */
const WAIT_S = 30;
/** A trial whose polls are not all answered this long after the work is ready has failed (ms). */
const TRIAL_TIMEOUT_MS = 20_000;
/** Check-ins in flight at once, so that joining the cohort does not open 1,000 connections in one burst. */
const CHECKIN_CONCURRENCY = 64;

const json = { 'content-type': 'application/json' };
const F32 = f32();

/** One side of the comparison: where the devices check in, how polls are seen held, how work is issued. */
interface Side {
  readonly name: string;
  readonly server: Instrumented;
  readonly checkinPath: string;
  /** Runs once every device has checked in, before trial 1's polls. */
  readonly cohortFormed?: () => Promise<void>;
  /** True once every device's poll of this trial is held by the server (none answered yet). */
  allHeld(since: number): Promise<boolean>;
  /** Makes request `trial + 1` ready; resolves when the call that does it returns. */
  issue(trial: number): Promise<void>;
  close(): Promise<void>;
}

/** What one side measured. */
interface Outcome {
  readonly latencies: number[];
  readonly trialMax: number[];
  /** The first poll's latency in each counted trial: the wake and the shared read, before any answer. */
  readonly trialMin: number[];
  /** The last poll's latency in each trial not counted: the warm-up ones and the last (memory read). */
  readonly uncountedMax: number[];
  readonly before: Memory;
  /** Samples with every poll held, the first and the last trial's. */
  readonly held: Memory[];
  readonly cpu: Record<string, number>;
  readonly checkinMs: number;
  readonly meter: CpuMeter;
}

class Gate {
  open!: () => void;
  readonly opened = new Promise<void>((r) => (this.open = r));
}

/** Counts devices through a point; `reached` resolves when all have passed. */
class Countdown {
  private left: number;
  private resolve!: () => void;
  readonly reached = new Promise<void>((r) => (this.resolve = r));
  constructor(n: number) {
    this.left = n;
    if (n === 0) this.resolve();
  }
  pass(): void {
    if (--this.left === 0) this.resolve();
  }
}

/** A program of `clientSteps` client steps (client_data, then client_calls) ending in an aggregate. */
function benchProgram(population: string, clients: number, clientSteps: number): Program {
  const batch = tensorType('float32', [null]);
  const pair = (a: typeof F32, b: typeof F32) => ({
    kind: 'struct' as const,
    fields: [{ type: a }, { type: b }],
  });
  const pb = new ProgramBuilder();
  const addBatch = pb.fn('add_batch', pair(F32, batch), (b, p) =>
    b.add(b.field(p, 0), b.reduceSum(b.field(p, 1))),
  );
  pb.computation('local_sum', sequenceType(batch), (b, data) =>
    b.fold(data, b.scalar(0), addBatch, {}, 'sum'),
  );
  pb.computation('double', F32, (b, x) => b.mul(x, 2));
  pb.computation('zero', undefined, (b) => b.scalar(0));
  pb.computation('accumulate', pair(F32, F32), (b, p) => b.add(b.field(p, 0), b.field(p, 1)));
  pb.computation('merge', pair(F32, F32), (b, p) => b.add(b.field(p, 0), b.field(p, 1)));
  pb.computation('report', F32, (b, a) => b.mul(a, 1));
  let v = pb.clientCall('local_sum', [pb.clientData('readings')]);
  for (let i = 2; i < clientSteps; i++) v = pb.clientCall('double', [v]);
  const total = pb.aggregate(v, {
    zero: 'zero',
    accumulate: 'accumulate',
    merge: 'merge',
    report: 'report',
    minClients: 2,
  });
  pb.output('total', total);
  return pb.build({
    name: 'bench-sessions',
    population,
    client_data: { readings: { collection: 'readings', element: batch, batch_size: 2 } },
    cohort: { target_clients: clients, min_clients: 2, join_timeout_s: 3600, step_timeout_s: 3600 },
  });
}

/** The request the driver issues for client step `index` (src/stateful/server/driver.ts, runStep). */
function requestOf(program: Program, index: number): StoredRequest {
  const step = program.steps[index]!;
  const handles = new Map(
    program.steps.flatMap((s, i) => ('result' in s ? [[s.result, `h${i}`] as const] : [])),
  );
  const handle = `h${index}`;
  if (step.op === 'client_data') return { kind: 'create_data', handle, collection: step.collection };
  if (step.op === 'client_call') {
    return { kind: 'create_call', handle, fn: step.fn, args: (step.args ?? []).map((a) => handles.get(a)!) };
  }
  throw new Error(`step ${index} (${step.op}) is not a client step`);
}

/** A response read in full, and when its last byte was parsed (performance.now()). */
interface Received {
  readonly status: number;
  readonly text: string;
  readonly at: number;
}

/**
 * One request through undici's dispatch handler, the client's own lowest layer: its `request()` builds a
 * body stream and several promises per response, and a thousand responses arriving at once then queue
 * behind the generator's own CPU (measured: ~100 us a response, as much as the server spends answering),
 * which is the machine's cost of playing 1,000 devices in one process, not the server's latency.
 */
function dispatch(
  client: Client,
  method: 'GET' | 'POST',
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<Received> {
  return new Promise((resolve, reject) => {
    let status = 0;
    const chunks: Buffer[] = [];
    client.dispatch(
      { method, path, headers, ...(body === undefined ? {} : { body }) },
      {
        // The handler interface Client.dispatch takes in undici 7 (the controller-based one needs a wrapper).
        onConnect: () => undefined,
        onHeaders: (statusCode) => {
          status = statusCode;
          return true;
        },
        onData: (chunk) => {
          chunks.push(chunk);
          return true;
        },
        onComplete: () =>
          resolve({
            status,
            text: chunks.length === 1 ? chunks[0]!.toString() : Buffer.concat(chunks).toString(),
            at: performance.now(),
          }),
        onError: reject,
      },
    );
  });
}

/** One request on a device's own connection; the body and when it arrived, else an error naming what failed. */
async function call(
  client: Client,
  what: string,
  method: 'GET' | 'POST',
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ value: unknown; at: number }> {
  const { status, text, at } = await dispatch(client, method, path, headers, body);
  if (status < 200 || status >= 300) throw new Error(`${what} answered ${status}: ${text.slice(0, 200)}`);
  return { value: text ? JSON.parse(text) : undefined, at };
}

/**
 * The devices of one side, each on its own keep-alive connection, stepped through the run by the
 * benchmark: check in, then per trial poll (once the trial opens), answer (once every poll of the trial is
 * answered, so that answers do not compete with the wake being measured) and wait for the next trial.
 */
class Fleet {
  private readonly clients: Client[];
  private readonly polls: Gate[];
  private readonly answers: Gate[];
  private readonly arrived: Countdown[];
  private readonly answered: Countdown[];
  private readonly arrivals: Float64Array[];
  private readonly checkedIn: Countdown;
  private fail: (e: Error) => void = () => undefined;
  private readonly failure = new Promise<never>((_, reject) => (this.fail = reject));
  private readonly running: Promise<unknown>;
  private slots = CHECKIN_CONCURRENCY;
  private readonly queue: (() => void)[] = [];

  constructor(
    readonly side: Side,
    private readonly devices: number,
    trials: number,
  ) {
    this.failure.catch(() => undefined);
    this.clients = Array.from(
      { length: devices },
      () =>
        new Client(side.server.url, {
          pipelining: 1,
          keepAliveTimeout: 120_000,
          headersTimeout: (WAIT_S + 30) * 1000,
          bodyTimeout: (WAIT_S + 30) * 1000,
        }),
    );
    this.polls = Array.from({ length: trials }, () => new Gate());
    this.answers = Array.from({ length: trials }, () => new Gate());
    this.arrived = Array.from({ length: trials }, () => new Countdown(devices));
    this.answered = Array.from({ length: trials }, () => new Countdown(devices));
    this.arrivals = Array.from({ length: trials }, () => new Float64Array(devices));
    this.checkedIn = new Countdown(devices);
    this.running = Promise.all(
      Array.from({ length: devices }, (_, i) => this.device(i, trials).catch((e: Error) => this.fail(e))),
    );
  }

  /** `p`, or the first device's error. */
  within<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.failure]);
  }

  /** Lets the devices check in; how long until all had their session (ms). */
  async checkIn(): Promise<number> {
    const t0 = performance.now();
    this.release();
    await this.within(this.checkedIn.reached);
    return performance.now() - t0;
  }

  /**
   * Trial `k`: opens the polls, waits until the server holds all of them (sampling its memory then, when
   * asked), waits `delay` ms, issues the work; each poll's latency from just before the issue to its answer.
   */
  async trial(
    k: number,
    delay: number,
    cpu: CpuMeter,
    sample: boolean,
  ): Promise<{ latencies: number[]; memory?: Memory; cpu: Record<string, number> }> {
    const since = Date.now();
    // Contacts recorded in the same millisecond as `since` must come from this trial's polls.
    while (Date.now() <= since) await new Promise((r) => setImmediate(r));
    this.polls[k]!.open();
    const heldBy = performance.now() + TRIAL_TIMEOUT_MS;
    while (!(await this.within(this.side.allHeld(since)))) {
      if (performance.now() > heldBy) {
        throw new Error(
          `${this.side.name}: trial ${k + 1}'s polls were not all held in ${TRIAL_TIMEOUT_MS} ms`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    // After a full collection: what the held polls keep, not the garbage of the check-ins or earlier trials.
    const memory = sample ? await this.side.server.ask<Memory>('memory') : undefined;
    await new Promise((r) => setTimeout(r, delay));
    cpu.start();
    const ready = performance.now();
    await this.within(this.side.issue(k));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `${this.side.name}: trial ${k + 1}'s polls were not all answered in ${TRIAL_TIMEOUT_MS} ms`,
            ),
          ),
        TRIAL_TIMEOUT_MS,
      );
    });
    try {
      await this.within(Promise.race([this.arrived[k]!.reached, late]));
    } finally {
      clearTimeout(timer);
    }
    const used = cpu.stop();
    this.answers[k]!.open();
    await this.within(this.answered[k]!.reached);
    return {
      latencies: Array.from(this.arrivals[k]!, (t) => t - ready),
      ...(memory ? { memory } : {}),
      cpu: used,
    };
  }

  async close(): Promise<void> {
    // Unblocks devices still waiting at a gate when a trial failed, so that their connections close.
    for (const g of [this.started, ...this.polls, ...this.answers]) g.open();
    await Promise.all(this.clients.map((c) => c.destroy().catch(() => undefined)));
    await this.running;
  }

  private started = new Gate();

  private release(): void {
    this.started.open();
  }

  private async slot<T>(f: () => Promise<T>): Promise<T> {
    while (this.slots === 0) await new Promise<void>((r) => this.queue.push(r));
    this.slots -= 1;
    try {
      return await f();
    } finally {
      this.slots += 1;
      this.queue.shift()?.();
    }
  }

  private async device(i: number, trials: number): Promise<void> {
    const client = this.clients[i]!;
    await this.started.opened;
    const grant = await this.slot(async () => {
      const r = (
        await call(
          client,
          `check-in ${i}`,
          'POST',
          this.side.checkinPath,
          json,
          JSON.stringify({ device_id: `bench-device-${i}` }),
        )
      ).value as { session?: SessionGrant };
      if (!r.session)
        throw new Error(`check-in ${i} answered no session: ${JSON.stringify(r).slice(0, 200)}`);
      return r.session;
    });
    this.checkedIn.pass();
    const auth = { authorization: `Bearer ${grant.token}` };
    const requests = new URL(grant.requests_url).pathname;
    const answers = new URL(grant.answers_url).pathname;
    for (let k = 0; k < trials; k++) {
      await this.polls[k]!.opened;
      const { value, at } = await call(
        client,
        `poll ${k + 1} of device ${i}`,
        'GET',
        `${requests}?after=${k}&wait=${WAIT_S}`,
        auth,
      );
      this.arrivals[k]![i] = at;
      const polled = value as RequestsResponse;
      const first = polled.requests[0];
      if (!first || first.seq !== k + 1) {
        throw new Error(
          `poll ${k + 1} of device ${i} answered without request ${k + 1}: ${JSON.stringify(polled).slice(0, 200)}`,
        );
      }
      this.arrived[k]!.pass();
      await this.answers[k]!.opened;
      const handle = (first.request as { handle: string }).handle;
      await call(
        client,
        `answer ${k + 1} of device ${i}`,
        'POST',
        answers,
        { ...auth, ...json },
        JSON.stringify({ answers: [{ seq: k + 1, ok: true, kind: 'created', handle, type: F32 }] }),
      );
      this.answered[k]!.pass();
    }
  }
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
}

function summary(latencies: readonly number[]) {
  const s = [...latencies].sort((a, b) => a - b);
  return {
    p50: quantile(s, 0.5),
    p95: quantile(s, 0.95),
    p99: quantile(s, 0.99),
    max: s[s.length - 1] ?? NaN,
  };
}

const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

async function startBaseline(nodeArgs: string[], devices: number, program: Program): Promise<Side> {
  const server = await startInstrumented(path.join(__dirname, 'sessions-baseline.js'), {
    nodeArgs,
    args: [String(await freePort())],
  });
  const issuer = new Client(server.url, { pipelining: 1 });
  return {
    name: 'baseline',
    server,
    checkinPath: '/checkin',
    allHeld: async () => (await server.ask<number>('waiting')) === devices,
    async issue(trial) {
      const res = await issuer.request({
        method: 'POST',
        path: '/issue',
        headers: json,
        body: JSON.stringify(requestOf(program, trial)),
      });
      await res.body.dump();
      if (res.statusCode !== 204) throw new Error(`baseline issue answered ${res.statusCode}`);
    },
    async close() {
      await issuer.close();
      await server.stop();
    },
  };
}

async function startRoundhouse(
  nodeArgs: string[],
  env: Record<string, string>,
  devices: number,
  trials: number,
): Promise<Side> {
  const port = await freePort();
  const prefix = `rh-bench-sessions-${process.pid}-${randomBytes(4).toString('hex')}`;
  const operatorToken = randomBytes(16).toString('hex');
  const redisUrl = env.REDIS_URL ?? testRedisUrl();
  const server = await startInstrumented(path.join(__dirname, 'sessions-api.js'), {
    nodeArgs,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      REDIS_URL: redisUrl,
      REDIS_PREFIX: prefix,
      OPERATOR_TOKEN: operatorToken,
      TOKEN_SECRET: randomBytes(32).toString('hex'),
      LOG_LEVEL: 'warn',
      // Every device of the benchmark checks in from 127.0.0.1.
      ANONYMOUS_RATE_LIMIT: '0',
    },
  });
  const redis = newClient(redisUrl, { maxRetriesPerRequest: 3 });
  const programs = new ProgramStore(redis, new Keys(prefix));
  const population = `bench-sessions-${randomBytes(3).toString('hex')}`;
  const program = benchProgram(population, devices, trials);
  const res = await fetch(`${server.url}/v1/programs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${operatorToken}`, ...json },
    body: JSON.stringify(program),
  });
  if (res.status !== 201) throw new Error(`program submission answered ${res.status}: ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  return {
    name: 'roundhouse',
    server,
    checkinPath: `/v1/populations/${population}/checkin`,
    async allHeld(since) {
      const sessions = await programs.sessions(id);
      return sessions.length === devices && sessions.every((s) => s.status === 'live' && s.seen > since);
    },
    // The cohort is complete: the driver's recruit step, played here.
    async cohortFormed() {
      if (!(await programs.move(id, 'recruiting', 'running', { started_at: Date.now() }))) {
        throw new Error(`program ${id} did not move to running`);
      }
    },
    async issue(trial) {
      const seq = await programs.issue(id, trial, trial + 1, [requestOf(program, trial)]);
      if (seq !== trial + 1) throw new Error(`issue of request ${trial + 1} answered ${seq}`);
    },
    async close() {
      await server.stop();
      redis.disconnect();
      await deleteKeys(prefix, redisUrl);
    },
  };
}

async function main(): Promise<void> {
  const devices = arg('--devices', 1000);
  const measured = arg('--trials', 10);
  // A server runs its wake path all day; a fresh process runs it cold (measured: the first wake of 1,000
  // polls took 2-3 times as long as the next ones, in both servers). Warm-up trials run the whole path
  // before the measured ones. Memory is read in the first warm-up trial and in one more trial after the
  // measured ones: reading it forces a full collection, after which the next wake ran up to twice as slow
  // (measured), which no server's own collections do. None of these is counted; their figures are printed
  // apart.
  const warmup = Math.max(1, arg('--warmup', 3));
  const trials = warmup + measured + 1;
  if (measured < 1) throw new Error('--trials must be at least 1');
  const options = runOptions(process.argv);
  const delays = Array.from({ length: trials }, () => 200 + Math.random() * 2000);
  console.log(
    `long-polling sessions: ${devices} devices holding polls (wait=${WAIT_S}) on one API process, ${measured} requests issued and measured (and ${warmup} before, 1 after), node ${process.version}`,
  );
  const redis = await redisPid(options.env.REDIS_URL);
  const outcomes: Record<string, Outcome> = {};
  // Both sides run side by side and their trials alternate, so that whatever else shares the machine weighs
  // on both alike; in each trial only one side's polls are held.
  const baseline = await startBaseline(
    options.nodeArgs,
    devices,
    benchProgram('bench-sessions', devices, trials),
  );
  const roundhouse = await startRoundhouse(options.nodeArgs, options.env, devices, trials);
  const sides = [baseline, roundhouse];
  const fleets = sides.map((side) => new Fleet(side, devices, trials));
  try {
    for (const fleet of fleets) {
      const { side } = fleet;
      const groups: Record<string, number[]> = { server: [side.server.child.pid!], client: [process.pid] };
      if (side === roundhouse) groups.redis = [redis];
      const before = await side.server.ask<Memory>('memory');
      const checkinMs = await fleet.checkIn();
      await fleet.within(side.cohortFormed?.() ?? Promise.resolve());
      outcomes[side.name] = {
        latencies: [],
        trialMax: [],
        trialMin: [],
        uncountedMax: [],
        before,
        held: [],
        cpu: {},
        checkinMs,
        meter: new CpuMeter(groups),
      };
    }
    for (let k = 0; k < trials; k++) {
      for (const fleet of fleets) {
        const o = outcomes[fleet.side.name]!;
        const t = await fleet.trial(k, delays[k]!, o.meter, k === 0 || k === trials - 1);
        if (t.memory) o.held.push(t.memory);
        if (k < warmup || k === trials - 1) {
          o.uncountedMax.push(Math.max(...t.latencies));
          continue;
        }
        o.latencies.push(...t.latencies);
        o.trialMax.push(Math.max(...t.latencies));
        o.trialMin.push(Math.min(...t.latencies));
        for (const [g, sec] of Object.entries(t.cpu)) o.cpu[g] = (o.cpu[g] ?? 0) + sec;
      }
    }
  } finally {
    for (const f of fleets) await f.close();
    for (const s of sides) await s.close();
  }
  for (const side of sides) report(side.name, outcomes[side.name]!, devices, measured);
  const failures = table(outcomes.baseline!, outcomes.roundhouse!, devices, measured);
  if (failures.length) {
    for (const f of failures) console.error(`FAILED: ${f}`);
    process.exit(1);
  }
}

/** Memory a held poll costs the server: the most of any sample with every poll held, over the process before. */
function perPoll(o: Outcome, k: 'rss' | 'heapUsed', devices: number): number {
  if (o.held.length === 0) throw new Error('no memory sample was taken with the polls held');
  return Math.max(...o.held.map((m) => m[k] - o.before[k])) / devices;
}

/** The server's CPU time per poll answered over the wake windows, microseconds. */
function serverCpu(o: Outcome, devices: number, trials: number): number {
  return ((o.cpu.server ?? NaN) * 1e6) / (devices * trials);
}

function report(name: string, o: Outcome, devices: number, trials: number): void {
  const s = summary(o.latencies);
  const ms = (x: number) => x.toFixed(1);
  console.log(
    `  ${name}: ${devices} check-ins in ${(o.checkinMs / 1000).toFixed(1)} s; wake latency p50 ${ms(s.p50)}, p95 ${ms(s.p95)}, p99 ${ms(s.p99)}, max ${ms(s.max)} ms; first and last poll answered per trial ${o.trialMax.map((x, i) => `${o.trialMin[i]!.toFixed(0)}-${x.toFixed(0)}`).join(', ')} ms (not counted: warm-up ${o.uncountedMax
      .slice(0, -1)
      .map((x) => x.toFixed(0))
      .join(', ')}; memory read ${o.uncountedMax.at(-1)?.toFixed(0)})`,
  );
  const held = o.held.map((m) => `${mib(m.rss)} RSS, ${mib(m.heapUsed)} heap`).join('; ');
  console.log(
    `    memory after a full collection: before ${mib(o.before.rss)} RSS, ${mib(o.before.heapUsed)} heap; ${devices} polls held (first and last trial) ${held}`,
  );
  const parts = Object.entries(o.cpu).map(
    ([k, sec]) => `${k} ${((sec * 1e6) / (devices * trials)).toFixed(0)} us`,
  );
  console.log(`    CPU per poll answered, from the issue to the last poll answered: ${parts.join(', ')}`);
}

/** Prints the comparison; the acceptance bounds not met. */
function table(base: Outcome, rh: Outcome, devices: number, trials: number): string[] {
  const b = summary(base.latencies);
  const r = summary(rh.latencies);
  const ratio = (x: number, y: number) => `${(x / y).toFixed(2)}x`;
  const rows: [string, number, number, (x: number) => string][] = [
    ['wake latency p50', r.p50, b.p50, (x) => `${x.toFixed(1)} ms`],
    ['wake latency p95', r.p95, b.p95, (x) => `${x.toFixed(1)} ms`],
    ['wake latency p99', r.p99, b.p99, (x) => `${x.toFixed(1)} ms`],
    ['wake latency max', r.max, b.max, (x) => `${x.toFixed(1)} ms`],
    [
      'server CPU per wake',
      serverCpu(rh, devices, trials),
      serverCpu(base, devices, trials),
      (x) => `${x.toFixed(0)} us`,
    ],
    ['heap per held poll', perPoll(rh, 'heapUsed', devices), perPoll(base, 'heapUsed', devices), kib],
    ['RSS per held poll', perPoll(rh, 'rss', devices), perPoll(base, 'rss', devices), kib],
  ];
  console.log('');
  console.log(`| ${'figure'.padEnd(20)} | ${'roundhouse'.padEnd(12)} | ${'baseline'.padEnd(12)} | ratio |`);
  console.log(`| ${'-'.repeat(20)} | ${'-'.repeat(12)} | ${'-'.repeat(12)} | ----- |`);
  for (const [label, x, y, unit] of rows) {
    console.log(
      `| ${label.padEnd(20)} | ${unit(x).padEnd(12)} | ${unit(y).padEnd(12)} | ${ratio(x, y).padEnd(5)} |`,
    );
  }
  // Any error (a non-2xx answer, a network error, a poll answered without its request) stops the run.
  console.log(`| ${'errors'.padEnd(20)} | ${'0'.padEnd(12)} | ${'0'.padEnd(12)} |       |`);
  console.log(
    `bounds: p99 <= ${P99_BOUND_MS} ms; per held poll heap <= ${kib(HEAP_PER_SESSION_BOUND)}, RSS <= ${kib(RSS_PER_SESSION_BOUND)} (after a full collection); 0 errors`,
  );
  const failures: string[] = [];
  if (!(r.p99 <= P99_BOUND_MS))
    failures.push(`wake latency p99 ${r.p99.toFixed(1)} ms is over ${P99_BOUND_MS} ms`);
  const heap = perPoll(rh, 'heapUsed', devices);
  if (!(heap <= HEAP_PER_SESSION_BOUND))
    failures.push(`heap per held poll ${kib(heap)} is over ${kib(HEAP_PER_SESSION_BOUND)}`);
  const rss = perPoll(rh, 'rss', devices);
  if (!(rss <= RSS_PER_SESSION_BOUND))
    failures.push(`RSS per held poll ${kib(rss)} is over ${kib(RSS_PER_SESSION_BOUND)}`);
  return failures;
}

main().catch((e) => {
  console.error(`FAILED: ${(e as Error).stack ?? String(e)}`);
  process.exit(1);
});
