/**
 * The SDK's session runner over real HTTP, against a small fake of the server's side of the session
 * protocol (src/stateful/wire.ts) started inside the test: it serves the client program of a real program
 * (the sum program of test/support/stateful-programs.ts) and the broadcasts, hands out a scripted list of
 * executor requests in batches with a long poll that honours `wait`, ends the session as the server would
 * (on a failed answer, a DELETE, or the end of its script) and records every poll, answer and upload.
 */
import * as tf from '@tensorflow/tfjs';
import express, { type Request, type Response } from 'express';
import type * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readings, sumProgram } from '../../test/support/stateful-programs';
import { decodeBundle, encodeBundle } from '../codec';
import { tensorType } from '../compute/types';
import { disposeValue } from '../compute/value';
import { valueToJson } from '../compute/value-json';
import { clientProgramOf } from '../stateful/client-program';
import { ClientExecutor } from '../stateful/executor';
import { runProgram } from '../stateful/reference';
import type { ExecutorAnswer, ExecutorRequest } from '../stateful/requests';
import type {
  NumberedRequest,
  RequestsResponse,
  SessionGrant,
  WireAnswer,
  WireRequest,
} from '../stateful/wire';
import { RoundhouseClient } from './client';
import { MemoryExampleStore } from './example-store';
import { SessionRunner, runSession, type SessionOptions } from './session';
import type { SessionOutcome } from './types';
import { contributionType } from '../stateful/requests';

const F32 = tensorType('float32', []);
const DEVICE = readings(1, 2, 3);
const SESSION_TOKEN = 'session-token';

type End = NonNullable<RequestsResponse['end']>;
/** A batch of requests (in their in-process form), released once the previous batch is answered. */
interface Batch {
  readonly requests: readonly ExecutorRequest[];
  /** How long after the previous batch was answered this one becomes ready (exercises the long poll). */
  readonly delayMs?: number;
}
type Step = Batch | { readonly end: End };

interface Upload {
  readonly task: string;
  readonly bytes: Uint8Array;
  readonly credential: string | undefined;
}
interface Poll {
  readonly after: number;
  readonly wait: number;
  readonly count: number;
}
interface Fault {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly code: string;
  /** How many requests it answers (default 1). */
  times?: number;
}

/** The server's side of one session, scripted. */
class FakeSessionServer {
  readonly polls: Poll[] = [];
  readonly answers: WireAnswer[] = [];
  readonly uploads: Upload[] = [];
  /** Every request the device made, as `METHOD path`, faults included. */
  readonly log: string[] = [];
  deleted = 0;
  end: End | undefined;
  /** The grant's step timeout. */
  stepTimeoutS = 60;
  /** Answered once each, before the route runs: a transient or final failure of that route. */
  readonly faults: Fault[] = [];
  private readonly released: NumberedRequest[] = [];
  private readonly bundles = new Map<number, Uint8Array>();
  private readonly tokens = new Map<string, 'fresh' | 'used'>();
  private next = 0;
  private answeredAt = Date.now();
  private server: http.Server | undefined;
  base = '';

  constructor(
    private readonly steps: readonly Step[],
    private readonly program: unknown = clientProgramOf(sumProgram()),
  ) {}

  grant(): SessionGrant {
    const s = `${this.base}/v1/sessions/s1`;
    return {
      program_id: 'p1',
      session_id: 's1',
      token: SESSION_TOKEN,
      client_program_url: `${s}/client-program`,
      requests_url: `${s}/requests`,
      answers_url: `${s}/answers`,
      session_url: s,
      step_timeout_s: this.stepTimeoutS,
      answered: 0,
    };
  }

  async start(): Promise<void> {
    const app = express();
    app.use((req, res, next) => {
      this.log.push(`${req.method} ${req.path}`);
      const i = this.faults.findIndex((f) => f.method === req.method && req.path.startsWith(f.path));
      if (i < 0) return next();
      const f = this.faults[i]!;
      f.times = (f.times ?? 1) - 1;
      if (f.times <= 0) this.faults.splice(i, 1);
      res.status(f.status).json({ error: { code: f.code, message: `scripted ${f.status}` } });
    });
    app.post('/v1/populations/:population/checkin', (_req, res) => {
      res.json({ session: this.grant() });
    });
    const session = express.Router();
    session.use((req, res, next) => {
      if (req.get('authorization') === `Bearer ${SESSION_TOKEN}`) return next();
      res.status(401).json({ error: { code: 'TOKEN_INVALID', message: 'not the session token' } });
    });
    session.get('/client-program', (_req, res) => {
      res.json(this.program);
    });
    session.get('/requests', (req, res) => void this.poll(req, res));
    session.post('/answers', express.json(), (req, res) => this.answer(req, res));
    session.delete('/', (_req, res) => {
      this.deleted++;
      this.end ??= { status: 'left' };
      res.status(204).end();
    });
    session.get('/bundles/:seq', (req, res) => {
      const bytes = this.bundles.get(Number(req.params['seq']));
      if (!bytes) return void res.status(404).json({ error: { code: 'NOT_FOUND', message: 'no bundle' } });
      res.type('application/octet-stream').send(Buffer.from(bytes));
    });
    app.use('/v1/sessions/s1', session);
    // As the upload route: the task's token (single use), octets (gzip inflated by the body parser).
    app.post('/v1/tasks/:task/result', express.raw({ type: 'application/octet-stream' }), (req, res) => {
      const task = String(req.params['task']);
      const token = req.get('authorization')?.replace(/^Bearer /, '') ?? '';
      const state = this.tokens.get(token);
      if (token !== `token-${task}` || !state) {
        return void res.status(401).json({ error: { code: 'TOKEN_INVALID', message: 'bad task token' } });
      }
      if (state === 'used') {
        return void res
          .status(409)
          .json({ error: { code: 'UPLOAD_DUPLICATE', message: 'already uploaded' } });
      }
      if (req.get('content-type') !== 'application/octet-stream' || !Buffer.isBuffer(req.body)) {
        return void res.status(415).json({ error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'octets' } });
      }
      this.tokens.set(token, 'used');
      this.uploads.push({
        task,
        bytes: new Uint8Array(req.body),
        credential: req.get('x-device-credential'),
      });
      res.status(202).json({ accepted: true });
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', resolve));
    this.server = server;
    this.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  /** Long poll: answered as soon as requests after `after` are ready or the session ended, else after `wait`. */
  private async poll(req: Request, res: Response): Promise<void> {
    const after = Number(req.query['after']);
    const wait = Number(req.query['wait']);
    const until = Date.now() + Math.min(wait, 30) * 1000;
    let gone = false;
    res.on('close', () => (gone = true));
    for (;;) {
      this.release();
      const ready = this.released.filter((r) => r.seq > after);
      if (this.end || ready.length > 0 || Date.now() >= until) {
        this.polls.push({ after, wait, count: ready.length });
        const body: RequestsResponse = this.end ? { requests: [], end: this.end } : { requests: ready };
        if (!gone) res.json(body);
        return;
      }
      if (gone) return;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Releases the next step once every released request is answered (and its delay passed). */
  private release(): void {
    if (this.end || this.answers.length < this.released.length) return;
    const step = this.steps[this.next];
    if (!step) {
      this.end = { status: 'completed' };
      return;
    }
    if ('end' in step) {
      this.end = step.end;
      return;
    }
    if (Date.now() < this.answeredAt + (step.delayMs ?? 0)) return;
    this.next++;
    for (const request of step.requests) {
      const seq = this.released.length + 1;
      this.released.push({ seq, request: this.wire(seq, request) });
    }
  }

  /** A request on the wire: the bytes of a broadcast served at a URL, a contribution's upload URL and token. */
  private wire(seq: number, r: ExecutorRequest): WireRequest {
    if (r.kind === 'create_value') {
      this.bundles.set(seq, r.bundle);
      return {
        kind: 'create_value',
        handle: r.handle,
        type: r.type,
        bundle_url: `${this.grant().session_url}/bundles/${seq}`,
      };
    }
    if (r.kind === 'contribute') {
      const task = `c${seq}`;
      this.tokens.set(`token-${task}`, 'fresh');
      return {
        ...r,
        upload_url: `${this.base}/v1/tasks/${task}/result`,
        token: `token-${task}`,
        deadline: Date.now() + 60_000,
      };
    }
    return r;
  }

  private answer(req: Request, res: Response): void {
    const { answers } = req.body as { answers: WireAnswer[] };
    for (const a of answers) {
      // Answers come in order; one already held is ignored (a batch sent again after a lost answer).
      if (a.seq <= this.answers.length) continue;
      if (a.seq !== this.answers.length + 1 || a.seq > this.released.length) {
        return void res.status(400).json({ error: { code: 'REQUEST_INVALID', message: `answer ${a.seq}` } });
      }
      this.answers.push(a);
      if (!a.ok)
        this.end = { status: 'failed', code: a.code, reason: `the device answered ${a.seq}: ${a.code}` };
    }
    this.answeredAt = Date.now();
    res.json({ answered: this.answers.length });
  }
}

let servers: FakeSessionServer[] = [];
async function serve(steps: readonly Step[], program?: unknown): Promise<FakeSessionServer> {
  const s = new FakeSessionServer(steps, program);
  await s.start();
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  servers = [];
});

function options(extra: Partial<SessionOptions> = {}): SessionOptions {
  return { store: new MemoryExampleStore(DEVICE), pollWaitS: 1, retry: { baseMs: 10, maxMs: 50 }, ...extra };
}

function scalarBundle(x: number): Uint8Array {
  const t = tf.scalar(x);
  try {
    return encodeBundle(t, F32);
  } finally {
    t.dispose();
  }
}

function decoded(bytes: Uint8Array): unknown {
  const v = decodeBundle(bytes, contributionType(F32));
  try {
    // A contribution travels as an upload <U, <>, <>, <>>: U is its first field.
    return (valueToJson(v) as unknown[])[0];
  } finally {
    disposeValue(v);
  }
}

/** The answers a second, in-process executor gives the same requests. */
async function inProcess(requests: readonly ExecutorRequest[]): Promise<ExecutorAnswer[]> {
  const e = new ClientExecutor(clientProgramOf(sumProgram()), new MemoryExampleStore(DEVICE));
  const answers: ExecutorAnswer[] = [];
  for (const r of requests) answers.push(await e.execute(r));
  e.reset();
  return answers;
}

/** What the wire should carry for an in-process answer: no bytes, the seq added. */
function onWire(seq: number, a: ExecutorAnswer): WireAnswer {
  if (!a.ok) return { seq, ok: false, code: a.code, message: a.message };
  if (a.kind === 'created') return { seq, ok: true, kind: 'created', handle: a.handle, type: a.type };
  if (a.kind === 'contributed') return { seq, ok: true, kind: 'contributed', aggregation: a.aggregation };
  return { seq, ok: true, kind: 'disposed' };
}

const firstBatch = (): ExecutorRequest[] => [
  { kind: 'create_data', handle: 'h0', collection: 'readings' },
  { kind: 'create_call', handle: 'h1', fn: 'local_sum', args: ['h0'] },
  { kind: 'contribute', aggregation: 'total', handle: 'h1' },
];

describe('runSession', () => {
  it("answers a program's requests as the in-process executor does, and uploads the same bytes", async () => {
    // The reference run of the program over this device (sum 6) and another (sum 4): total 10, doubled 20,
    // scaled 20 x 10 = 200. This device is sent what the reference's driver sends it: doubled is 20.
    const reference = await runProgram(
      sumProgram(),
      new Map([
        ['a', DEVICE],
        ['b', readings(4)],
      ]),
      {
        serverValues: true,
      },
    );
    expect(reference.outputs).toEqual({ total: 10, doubled: 20, scaled_total: 200 });
    const second: ExecutorRequest[] = [
      {
        kind: 'create_value',
        handle: 'h4',
        type: F32,
        bundle: scalarBundle(reference.values!['doubled'] as number),
      },
      { kind: 'create_call', handle: 'h5', fn: 'scale', args: ['h1', 'h4'] },
      { kind: 'create_struct', handle: 'h6', fields: [{ name: 't', handle: 'h5' }, { handle: 'h1' }] },
      { kind: 'create_selection', handle: 'h7', source: 'h6', field: 't' },
      { kind: 'contribute', aggregation: 'scaled_total', handle: 'h7' },
      { kind: 'dispose', handles: ['h0', 'h1', 'h4', 'h5', 'h6', 'h7'] },
    ];
    // The second batch is ready 1.5 s after the first is answered: longer than one poll's 1 s wait.
    const server = await serve([{ requests: firstBatch() }, { requests: second, delayMs: 1500 }]);
    const before = tf.memory().numTensors;
    const outcome = await runSession(server.grant(), options({ credential: () => 'device-7' }));
    expect(tf.memory().numTensors).toBe(before);

    expect(outcome).toEqual<SessionOutcome>({
      status: 'completed',
      endedBy: 'server',
      programId: 'p1',
      sessionId: 's1',
      requests: 9,
      contributions: 2,
    });
    const expected = await inProcess([...firstBatch(), ...second]);
    expect(server.answers).toEqual(expected.map((a, i) => onWire(i + 1, a)));
    expect(server.answers.every((a) => a.ok)).toBe(true);
    const bundles = expected.flatMap((a) => (a.ok && a.kind === 'contributed' ? [a.bundle] : []));
    expect(server.uploads.map((u) => u.task)).toEqual(['c3', 'c8']);
    expect(server.uploads.map((u) => u.bytes)).toEqual(bundles);
    // Its sum 1 + 2 + 3, then that sum scaled by the broadcast: 6 x 20.
    expect(server.uploads.map((u) => decoded(u.bytes))).toEqual([6, 120]);
    expect(server.uploads.map((u) => u.credential)).toEqual(['device-7', 'device-7']);
    // Polls resume after the last answered request; the wait is asked for on each, and at least one ran out.
    expect(server.polls[0]).toEqual({ after: 0, wait: 1, count: 3 });
    expect(server.polls.at(-1)).toMatchObject({ after: 9, count: 0 });
    expect(server.polls.filter((p) => p.after === 3 && p.count === 0).length).toBeGreaterThanOrEqual(1);
    expect(server.polls.find((p) => p.after === 3 && p.count > 0)).toEqual({ after: 3, wait: 1, count: 6 });
    expect(server.deleted).toBe(0);
  });

  it('answers HANDLE_UNKNOWN for a handle it does not hold, and stops there', async () => {
    const server = await serve([
      {
        requests: [
          { kind: 'create_data', handle: 'h0', collection: 'readings' },
          { kind: 'create_call', handle: 'h1', fn: 'local_sum', args: ['gone'] },
          { kind: 'create_call', handle: 'h2', fn: 'local_sum', args: ['h0'] },
        ],
      },
      { requests: [{ kind: 'dispose', handles: ['h0'] }] },
    ]);
    const before = tf.memory().numTensors;
    const outcome = await runSession(server.grant(), options());
    expect(tf.memory().numTensors).toBe(before);
    expect(outcome).toMatchObject({
      status: 'failed',
      endedBy: 'device',
      code: 'HANDLE_UNKNOWN',
      requests: 2,
    });
    expect(server.answers).toEqual([
      {
        seq: 1,
        ok: true,
        kind: 'created',
        handle: 'h0',
        type: expect.objectContaining({ kind: 'sequence' }),
      },
      // The code only: the executor's message stays on the device (it may quote the device's data).
      { seq: 2, ok: false, code: 'HANDLE_UNKNOWN' },
    ]);
    expect(server.end).toMatchObject({ status: 'failed', code: 'HANDLE_UNKNOWN' });
    // The request after the failure was never run, nor anything polled or left.
    expect(server.polls).toHaveLength(1);
    expect(server.deleted).toBe(0);
  });

  // With the transport's retries, and with none (one try per request): then the session's own backoff,
  // bounded by the step timeout, retries.
  it.each([
    ['the transport', { baseMs: 10, maxMs: 50 }],
    ['the session', { attempts: 1, baseMs: 10, maxMs: 50 }],
  ])(
    'retries 503s of the poll, the bundle, the upload and the answers (%s retries), answering each request once',
    async (_by, retry) => {
      const server = await serve([
        {
          requests: [
            ...firstBatch(),
            { kind: 'create_value', handle: 'h4', type: F32, bundle: scalarBundle(3) },
            { kind: 'create_call', handle: 'h5', fn: 'scale', args: ['h1', 'h4'] },
            { kind: 'contribute', aggregation: 'scaled', handle: 'h5' },
          ],
        },
      ]);
      for (const path of [
        '/v1/sessions/s1/requests',
        '/v1/sessions/s1/bundles',
        '/v1/tasks/',
        '/v1/sessions/s1/answers',
      ]) {
        server.faults.push({
          method: path.includes('bundles') || path.endsWith('requests') ? 'GET' : 'POST',
          path,
          status: 503,
          code: 'BUSY',
        });
      }
      const outcome = await runSession(server.grant(), options({ retry }));
      expect(outcome).toMatchObject({ status: 'completed', requests: 6, contributions: 2 });
      expect(server.faults).toEqual([]);
      expect(server.answers.map((a) => a.seq)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(server.uploads.map((u) => decoded(u.bytes))).toEqual([6, 18]);
      // Each faulted route was asked twice: the 503, then the try that went through.
      const count = (line: string) => server.log.filter((l) => l === line).length;
      expect(count('POST /v1/tasks/c3/result')).toBe(2);
      expect(count('GET /v1/sessions/s1/bundles/4')).toBe(2);
      expect(count('POST /v1/sessions/s1/answers')).toBe(2);
    },
  );

  it('gives up on a server unavailable for longer than the step timeout, and leaves', async () => {
    const server = await serve([{ requests: firstBatch() }]);
    server.stepTimeoutS = 1;
    server.faults.push({
      method: 'GET',
      path: '/v1/sessions/s1/requests',
      status: 503,
      code: 'BUSY',
      times: 1e6,
    });
    const t0 = Date.now();
    const outcome = await runSession(
      server.grant(),
      options({ retry: { attempts: 2, baseMs: 20, maxMs: 100 } }),
    );
    const took = Date.now() - t0;
    expect(outcome).toMatchObject({ status: 'failed', endedBy: 'device', code: 'BUSY', requests: 0 });
    // Polled again and again for about the step timeout (1 s), not forever; the bound is for a loaded machine.
    expect(server.log.filter((l) => l === 'GET /v1/sessions/s1/requests').length).toBeGreaterThan(4);
    expect(took).toBeGreaterThanOrEqual(800);
    expect(took).toBeLessThan(10_000);
    expect(server.deleted).toBe(1);
  });

  it("posts a slow batch's answers as they come once it has taken half the step timeout", async () => {
    // A store that takes 700 ms per read: each create_data outlasts half of a 1 s step timeout.
    const slow = new MemoryExampleStore(DEVICE);
    const store = {
      examples: async (...args: Parameters<MemoryExampleStore['examples']>) => {
        await new Promise((r) => setTimeout(r, 700));
        return slow.examples(...args);
      },
    };
    const server = await serve([
      {
        requests: [
          { kind: 'create_data', handle: 'h0', collection: 'readings' },
          { kind: 'create_data', handle: 'h1', collection: 'readings' },
          { kind: 'dispose', handles: ['h0', 'h1'] },
        ],
      },
    ]);
    server.stepTimeoutS = 1;
    const outcome = await runSession(server.grant(), options({ store }));
    expect(outcome).toMatchObject({ status: 'completed', requests: 3 });
    // Two posts of one answer each while the batch ran, and the quick dispose at the batch's end.
    expect(server.log.filter((l) => l === 'POST /v1/sessions/s1/answers')).toHaveLength(3);
    expect(server.answers.map((a) => (a.ok ? a.kind : a.code))).toEqual(['created', 'created', 'disposed']);
  });

  it('ends with a 4xx the server answers, and leaves', async () => {
    const server = await serve([{ requests: firstBatch() }]);
    server.faults.push({
      method: 'POST',
      path: '/v1/sessions/s1/answers',
      status: 409,
      code: 'HANDLE_UNKNOWN',
    });
    const outcome = await runSession(server.grant(), options());
    expect(outcome).toMatchObject({
      status: 'failed',
      endedBy: 'device',
      code: 'HANDLE_UNKNOWN',
      requests: 3,
    });
    expect(server.answers).toEqual([]);
    expect(server.deleted).toBe(1);
  });

  it('answers UPLOAD_LATE when the server finds a contribution late', async () => {
    const server = await serve([{ requests: firstBatch() }]);
    server.faults.push({ method: 'POST', path: '/v1/tasks/', status: 409, code: 'UPLOAD_LATE' });
    const outcome = await runSession(server.grant(), options());
    expect(outcome).toMatchObject({
      status: 'failed',
      endedBy: 'device',
      code: 'UPLOAD_LATE',
      contributions: 0,
    });
    expect(server.answers.map((a) => (a.ok ? a.kind : a.code))).toEqual([
      'created',
      'created',
      'UPLOAD_LATE',
    ]);
    expect(server.uploads).toEqual([]);
  });

  it('stops when the poll answers the end, with its code and reason', async () => {
    const end: End = { status: 'failed', code: 'EVAL_ERROR', reason: 'step 3 failed on the server' };
    const server = await serve([{ requests: firstBatch().slice(0, 2) }, { end }]);
    const outcome = await runSession(server.grant(), options());
    expect(outcome).toEqual({
      status: 'failed',
      endedBy: 'server',
      programId: 'p1',
      sessionId: 's1',
      requests: 2,
      contributions: 0,
      code: 'EVAL_ERROR',
      reason: 'step 3 failed on the server',
    });
    expect(server.deleted).toBe(0);
  });

  it('leaves with DELETE when aborted during a long poll, and when leave() is called', async () => {
    // The second batch would come after a minute: the device is polling when it is told to stop.
    const steps: Step[] = [
      { requests: firstBatch() },
      { requests: [{ kind: 'dispose', handles: ['h0'] }], delayMs: 60_000 },
    ];
    const server = await serve(steps);
    const stop = new AbortController();
    const before = tf.memory().numTensors;
    const running = runSession(server.grant(), options({ signal: stop.signal, pollWaitS: 30 }));
    await until(() => server.answers.length === 3);
    const t0 = Date.now();
    stop.abort();
    const outcome = await running;
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(outcome).toMatchObject({ status: 'left', endedBy: 'device', requests: 3, contributions: 1 });
    expect(outcome.code).toBeUndefined();
    expect(server.deleted).toBe(1);
    expect(server.end).toEqual({ status: 'left' });
    expect(tf.memory().numTensors).toBe(before);

    const other = await serve(steps);
    const runner = new SessionRunner(other.grant(), options({ pollWaitS: 30 }));
    const run = runner.run();
    await until(() => other.answers.length === 3);
    await runner.leave();
    expect(await run).toMatchObject({ status: 'left', endedBy: 'device', requests: 3 });
    expect(other.deleted).toBe(1);
  });

  it('leaves, answering nothing, a client program of a format it does not read', async () => {
    const program = { ...clientProgramOf(sumProgram()), format: 'roundhouse.client-program/v2' };
    const server = await serve([{ requests: firstBatch() }], program);
    const outcome = await runSession(server.grant(), options());
    expect(outcome).toMatchObject({
      status: 'left',
      endedBy: 'device',
      code: 'CLIENT_PLAN_UNSUPPORTED',
      reason: expect.stringContaining('roundhouse.client-program/v2'),
      requests: 0,
    });
    expect(server.polls).toEqual([]);
    expect(server.answers).toEqual([]);
    expect(server.deleted).toBe(1);
  });
});

describe('RoundhouseClient and sessions', () => {
  it('runs the session a check-in grants, and runOnce says how it ended', async () => {
    const server = await serve([{ requests: firstBatch() }]);
    const client = new RoundhouseClient({
      server: server.base,
      population: 'sensors',
      store: new MemoryExampleStore(DEVICE),
      deviceId: 'device-9',
      sessionPollWaitS: 1,
    });
    const outcome = await client.runOnce();
    expect(outcome).toEqual({
      kind: 'session',
      session: {
        status: 'completed',
        endedBy: 'server',
        programId: 'p1',
        sessionId: 's1',
        requests: 3,
        contributions: 1,
      },
    });
    expect(server.uploads.map((u) => [decoded(u.bytes), u.credential])).toEqual([[6, 'device-9']]);
  });
});

async function until(condition: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
