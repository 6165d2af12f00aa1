/**
 * The device's side of a stateful program's session (docs/stateful.md, "The session protocol", the wire in
 * `src/stateful/wire.ts`): download the client program, then long-poll for executor requests, answer them in
 * order with a {@link ClientExecutor} and post the answers, until the server says the session is over or the
 * device leaves. Browser-safe like the rest of the SDK: fetch, URL and the injected clock only.
 */
import type { Limits } from '../compute/limits';
import { CLIENT_PROGRAM_FORMAT, type ClientProgram } from '../stateful/client-program';
import { ClientExecutor } from '../stateful/executor';
import type { ExecutorAnswer } from '../stateful/requests';
import {
  MAX_POLL_WAIT_S,
  type AnswersBody,
  type AnswersResponse,
  type RequestsResponse,
  type SessionGrant,
  type WireAnswer,
  type WireContributeRequest,
  type WireRequest,
} from '../stateful/wire';
import { realClock, type Clock } from './clock';
import { RoundhouseError, isRoundhouseError, type ClientErrorCode } from './errors';
import type { ExampleStore } from './example-store';
import type { TimeoutOptions } from './timeouts';
import { backoffMs, DeadlineExceeded, heldPollTransport, Transport, type RetryOptions } from './transport';
import type { SessionOutcome } from './types';
import { uploadBundle } from './upload';
import { ExchangeDropped, SecAggExchange } from './secagg-task';

/** Options of a {@link SessionRunner}: the same platform pieces a `RoundhouseClient` is given. */
export interface SessionOptions {
  /** Where `create_data` requests read the device's examples from. */
  readonly store: ExampleStore;
  /** Default: the global fetch. */
  readonly fetch?: typeof fetch;
  /** Default: real time. */
  readonly clock?: Clock;
  /** Uniform in [0, 1): backoff jitter. Default `Math.random`. */
  readonly random?: () => number;
  /** Retries of transient failures, as for check-ins and uploads. */
  readonly retry?: RetryOptions;
  /** Per-try timeouts; a long poll's try is given its `wait` on top of them. */
  readonly timeouts?: TimeoutOptions;
  /** Gzip contributions (default true), as round uploads. */
  readonly gzip?: boolean;
  /** The device credential sent with each poll and each contribution's upload, as with a round's upload. */
  readonly credential?: () => Promise<string> | string;
  /** Aborting it makes the device leave the session (`DELETE session_url`). */
  readonly signal?: AbortSignal;
  /** How long the server may hold a poll, in seconds (default and at most `MAX_POLL_WAIT_S`, at least 1). */
  readonly pollWaitS?: number;
  /** The interpreter's limits for `create_call` (default the server's). */
  readonly limits?: Limits;
}

/** The device ends its session: unwinds the loop to {@link SessionRunner.run}, which reports it. */
class DeviceEnd extends Error {
  constructor(
    readonly status: 'failed' | 'left',
    readonly code: ClientErrorCode,
    reason: string,
    /** Tell the server with `DELETE` (it does not know yet). */
    readonly leave: boolean,
  ) {
    super(reason);
    this.name = 'DeviceEnd';
  }
}

const REQUEST_KINDS: ReadonlySet<string> = new Set<WireRequest['kind']>([
  'create_value',
  'create_data',
  'create_call',
  'create_struct',
  'create_selection',
  'contribute',
  'dispose',
]);

/** Why a downloaded client program cannot be run by this SDK, or null when it can. */
export function clientProgramProblem(doc: unknown): string | null {
  const d = (doc ?? {}) as Partial<Record<keyof ClientProgram, unknown>>;
  if (d.format !== CLIENT_PROGRAM_FORMAT) {
    return `client program format ${JSON.stringify(d.format)} is not ${CLIENT_PROGRAM_FORMAT}, the one this client reads`;
  }
  const isRecord = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (
    !isRecord(d.client_data) ||
    !isRecord(d.computations) ||
    (d.functions !== undefined && !isRecord(d.functions))
  ) {
    return 'client program lacks its client_data or computations objects';
  }
  return null;
}

/**
 * One session of a stateful program, run by the device that was granted it. Requests are answered one at a
 * time in order; the answers of a poll's batch are posted together (or earlier, when the batch has taken
 * half the server's step timeout, so that a slow batch is not taken for a device gone). A failed answer
 * fails the session on the server, so the device stops once it has posted one. Transient failures are
 * retried with backoff until the server would have timed the session out anyway (`step_timeout_s` after the
 * last exchange that succeeded); any other failure ends the session, and the device then leaves.
 */
export class SessionRunner {
  private readonly controller = new AbortController();
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly transport: Transport;
  /** For polls: the server holds them up to `wait`, so their tries get that long on top of the timeouts. */
  private readonly pollTransport: Transport;
  private readonly waitS: number;
  private readonly stepTimeoutMs: number;
  private running: Promise<SessionOutcome> | undefined;
  private leaving: Promise<void> | undefined;
  /** The server ended the session: there is nothing to leave. */
  private over = false;
  private lastContact: number;
  private answered: number;
  private contributions = 0;
  /** Secure sums this device contributed to whose unmasking it still serves (they end with their round). */
  private readonly unmasking: Promise<unknown>[] = [];

  constructor(
    readonly grant: SessionGrant,
    private readonly options: SessionOptions,
  ) {
    this.clock = options.clock ?? realClock;
    this.random = options.random ?? Math.random;
    // A session this device had before a restart resumes after what the server holds (its handles are gone,
    // which the next request naming one reveals: HANDLE_UNKNOWN).
    this.answered = grant.answered ?? 0;
    const fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.transport = new Transport(fetchFn, this.clock, this.random, options.retry, options.timeouts);
    this.waitS = Math.max(1, Math.min(MAX_POLL_WAIT_S, Math.round(options.pollWaitS ?? MAX_POLL_WAIT_S)));
    this.pollTransport = heldPollTransport(
      fetchFn,
      this.clock,
      this.random,
      options.retry,
      options.timeouts,
      this.waitS,
    );
    const step = Number(grant.step_timeout_s);
    this.stepTimeoutMs = (Number.isFinite(step) && step > 0 ? step : 60) * 1000;
    this.lastContact = this.clock.now();
  }

  /** Runs the session to its end (once; later calls share the first run). Never rejects. */
  run(): Promise<SessionOutcome> {
    this.running ??= this.runSession();
    return this.running;
  }

  /**
   * Leaves the session: a running loop stops (its pending request is aborted) and sends `DELETE
   * session_url`; resolves once that is done. Nothing is sent when the server already ended the session.
   */
  async leave(): Promise<void> {
    this.controller.abort(new DeviceEnd('left', 'UNKNOWN', 'the device left', true));
    if (this.running) await this.running;
    else if (!this.over) await this.sendLeave();
  }

  private get signal(): AbortSignal {
    return this.controller.signal;
  }

  private async runSession(): Promise<SessionOutcome> {
    const outer = this.options.signal;
    const onOuterAbort = (): void => this.controller.abort(outer?.reason);
    if (outer?.aborted) onOuterAbort();
    else outer?.addEventListener('abort', onOuterAbort, { once: true });
    let executor: ClientExecutor | undefined;
    try {
      const program = await this.clientProgram();
      executor = new ClientExecutor(program, this.options.store, { limits: this.options.limits });
      return await this.loop(executor);
    } catch (e) {
      return await this.deviceEnd(e);
    } finally {
      // A device that stayed to the end has sent its unmasking shares by now (its sums were released); one
      // that leaves has aborted them. Either way nothing outlives the run.
      await Promise.all(this.unmasking);
      // Frees every tensor the session held, however it ended.
      executor?.reset();
      outer?.removeEventListener('abort', onOuterAbort);
    }
  }

  /** `GET client_program_url`: a program of another format is never run (answering nothing, the device leaves). */
  private async clientProgram(): Promise<ClientProgram> {
    const doc = await this.patiently(() =>
      this.transport.request(
        this.grant.client_program_url,
        { headers: { ...this.auth(), accept: 'application/json' } },
        { signal: this.signal },
        async (res): Promise<unknown> => res.json(),
      ),
    );
    const problem = clientProgramProblem(doc);
    if (problem !== null) throw new DeviceEnd('left', 'CLIENT_PLAN_UNSUPPORTED', problem, true);
    return doc as ClientProgram;
  }

  private async loop(executor: ClientExecutor): Promise<SessionOutcome> {
    for (;;) {
      const { requests, end } = await this.poll();
      if (end) {
        this.over = true;
        return this.outcome(end.status, 'server', end.code, end.reason);
      }
      const answers: WireAnswer[] = [];
      let since = this.clock.now();
      for (const { seq, request } of requests) {
        // A request already answered (a poll answered twice) is not run again.
        if (seq <= this.answered) continue;
        if (seq !== this.answered + 1) {
          throw new DeviceEnd(
            'failed',
            'REQUEST_INVALID',
            `request ${seq} came after request ${this.answered}: requests are numbered in order`,
            true,
          );
        }
        if (this.signal.aborted) throw this.signal.reason;
        const answer = await this.answer(executor, seq, request);
        answers.push(answer);
        this.answered = seq;
        if (!answer.ok) {
          // The server fails the session on this answer: there is nothing left to do, nor to leave.
          await this.postAnswers(answers);
          this.over = true;
          return this.outcome('failed', 'device', answer.code, answer.message);
        }
        if (this.clock.now() - since >= this.stepTimeoutMs / 2) {
          await this.postAnswers(answers.splice(0));
          since = this.clock.now();
        }
      }
      if (answers.length > 0) await this.postAnswers(answers);
    }
  }

  /** `GET requests_url?after=&wait=`: the next requests, none when the wait ran out, or the session's end. */
  private async poll(): Promise<RequestsResponse> {
    const url = new URL(this.grant.requests_url);
    url.searchParams.set('after', String(this.answered));
    url.searchParams.set('wait', String(this.waitS));
    const started = this.clock.now();
    // The device credential rides along: the server needs it to give a `contribute` request its task (it
    // keeps no device id of its own, only a binding to check the credential against).
    const credential = this.options.credential ? await this.options.credential() : undefined;
    const res = await this.patiently(() =>
      this.pollTransport.request(
        url.toString(),
        {
          headers: {
            ...this.auth(),
            accept: 'application/json',
            ...(credential !== undefined ? { 'x-device-credential': credential } : {}),
          },
        },
        { signal: this.signal },
        async (r) => (await r.json()) as RequestsResponse,
      ),
    );
    if (!Array.isArray(res?.requests)) {
      throw new DeviceEnd(
        'failed',
        'UNKNOWN',
        `GET ${url.toString()}: the answer has no requests list`,
        true,
      );
    }
    const early = (this.waitS * 1000) / 2 - (this.clock.now() - started);
    if (!res.end && res.requests.length === 0 && early > 0) {
      // A server that answers an empty poll well before the wait (one that does not hold polls, or holds them
      // for less) is polled at most twice a wait: the device would spin otherwise.
      await this.clock.sleep(early, this.signal);
    }
    return res;
  }

  /** Answers one request: the in-process request of the executor, with the bytes moved over HTTP. */
  private async answer(executor: ClientExecutor, seq: number, request: WireRequest): Promise<WireAnswer> {
    const kind: unknown = (request as { kind?: unknown } | null)?.kind;
    if (typeof kind !== 'string' || !REQUEST_KINDS.has(kind)) {
      return {
        seq,
        ok: false,
        code: 'REQUEST_INVALID',
        message: `unknown request kind ${JSON.stringify(kind)}`,
      };
    }
    switch (request.kind) {
      case 'create_value': {
        const bundle = await this.download(request.bundle_url);
        const { handle, type } = request;
        return wireAnswer(seq, await executor.execute({ kind: 'create_value', handle, type, bundle }));
      }
      case 'contribute':
        return this.contribute(executor, seq, request);
      default:
        return wireAnswer(seq, await executor.execute(request));
    }
  }

  /** `GET bundle_url`: a broadcast's bytes. */
  private download(url: string): Promise<Uint8Array> {
    return this.patiently(() =>
      this.transport.request(
        url,
        { headers: { ...this.auth(), accept: 'application/octet-stream' } },
        { signal: this.signal },
        async (res) => new Uint8Array(await res.arrayBuffer()),
      ),
    );
  }

  /**
   * The held value's bundle, uploaded as a round's result. An upload the aggregation's deadline made
   * impossible (or that the server found late) is a failed answer: the contribution is lost, and the server
   * must hear so rather than wait for it.
   */
  private async contribute(
    executor: ClientExecutor,
    seq: number,
    r: WireContributeRequest,
  ): Promise<WireAnswer> {
    const held = await executor.execute({
      kind: 'contribute',
      aggregation: r.aggregation,
      handle: r.handle,
      ...(r.secure_sum ? { secure_sum: r.secure_sum } : {}),
    });
    if (!held.ok || held.kind !== 'contributed') return wireAnswer(seq, held);
    const late = (why = 'could not be uploaded before its deadline'): WireAnswer => ({
      seq,
      ok: false,
      code: 'UPLOAD_LATE',
      message: `the contribution to "${r.aggregation}" ${why}`,
    });
    if (this.clock.now() >= r.deadline) return late();
    // A masked secure sum: keys, then shares once the others have sent theirs, then the masked value is what
    // is uploaded, as a round's task does it (secagg-task.ts).
    const exchange = r.secure_aggregation
      ? new SecAggExchange(
          {
            transport: this.transport,
            pollTransport: this.pollTransport,
            pollWaitS: this.waitS,
            clock: this.clock,
            random: this.random,
            ...(this.options.credential ? { credential: this.options.credential } : {}),
          },
          { token: r.token, deadline: r.deadline, secure_aggregation: r.secure_aggregation },
          this.signal,
        )
      : undefined;
    try {
      let sent = held.bundle;
      if (exchange) {
        await exchange.keys();
        await exchange.share();
        sent = await exchange.mask(held.bundle, held.type);
      }
      await this.patiently(
        () =>
          uploadBundle(this.transport, sent, r, {
            gzip: this.options.gzip,
            credential: this.options.credential,
            signal: this.signal,
          }),
        r.deadline,
      );
    } catch (e) {
      if (e instanceof DeadlineExceeded || isRoundhouseError(e, 'UPLOAD_LATE')) return late();
      if (e instanceof ExchangeDropped) return late(`was dropped from its secure aggregation: ${e.reason}`);
      throw e;
    }
    this.contributions++;
    // The survivors' unmasking shares are sent once the sum closes, which waits for this very answer when a
    // device drops out: so the answer goes now, and the shares when the server asks for them.
    if (exchange) this.unmasking.push(exchange.unmask().catch(() => undefined));
    return { seq, ok: true, kind: 'contributed', aggregation: r.aggregation };
  }

  /** `POST answers_url`. The server keeps answers by seq, so sending a batch again after a lost answer is safe. */
  private async postAnswers(answers: readonly WireAnswer[]): Promise<void> {
    // A failure goes to the server as its code only: a message may quote the device's own data (a CSV
    // cell, a value out of range), and data leaves a device only through aggregations.
    const body: AnswersBody = {
      answers: answers.map((a) => (a.ok ? a : { seq: a.seq, ok: false as const, code: a.code })),
    };
    await this.patiently(() =>
      this.transport.request(
        this.grant.answers_url,
        {
          method: 'POST',
          headers: { ...this.auth(), 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify(body),
        },
        { signal: this.signal },
        async (res) => (await res.json()) as AnswersResponse,
      ),
    );
  }

  /**
   * Sends `send` (which retries on its own) until it succeeds or fails for good: a transient failure is
   * tried again after a growing backoff while that can start before `until` (default: when the server would
   * time the session out, counted from the last exchange that succeeded).
   */
  private async patiently<T>(send: () => Promise<T>, until?: number): Promise<T> {
    const limit = until ?? this.lastContact + this.stepTimeoutMs;
    for (let failures = 1; ; failures++) {
      try {
        const result = await send();
        this.lastContact = this.clock.now();
        return result;
      } catch (e) {
        if (!(e instanceof RoundhouseError) || !e.transient || this.signal.aborted) throw e;
        const wait = Math.max(
          backoffMs(failures, this.options.retry ?? {}, this.random),
          e.retryAfterMs ?? 0,
        );
        if (this.clock.now() + wait >= limit) throw e;
        await this.clock.sleep(wait, this.signal);
      }
    }
  }

  /** The outcome of a session the device ended (left, or stopped by a failure), after leaving when due. */
  private async deviceEnd(e: unknown): Promise<SessionOutcome> {
    let end: DeviceEnd;
    if (this.signal.aborted) {
      end =
        this.signal.reason instanceof DeviceEnd
          ? this.signal.reason
          : new DeviceEnd('left', 'UNKNOWN', 'the device left', true);
    } else if (e instanceof DeviceEnd) {
      end = e;
    } else if (e instanceof RoundhouseError) {
      end = new DeviceEnd('failed', e.code, e.message, true);
    } else {
      // An answer that is not the protocol's (a proxy's page, JSON of another shape).
      end = new DeviceEnd('failed', 'UNKNOWN', e instanceof Error ? e.message : String(e), true);
    }
    if (end.leave && !this.over) await this.sendLeave();
    const code = end.code === 'UNKNOWN' && end.status === 'left' ? undefined : end.code;
    return this.outcome(end.status, 'device', code, end.message);
  }

  /** `DELETE session_url`, once; best effort: a server that cannot be told times the session out. */
  private sendLeave(): Promise<void> {
    this.leaving ??= this.transport
      .request(this.grant.session_url, { method: 'DELETE', headers: this.auth() }, {}, async () => undefined)
      .catch(() => undefined);
    return this.leaving;
  }

  private auth(): Record<string, string> {
    return { authorization: `Bearer ${this.grant.token}` };
  }

  private outcome(
    status: SessionOutcome['status'],
    endedBy: SessionOutcome['endedBy'],
    code: ClientErrorCode | undefined,
    reason: string | undefined,
  ): SessionOutcome {
    return {
      status,
      endedBy,
      programId: this.grant.program_id,
      sessionId: this.grant.session_id,
      requests: this.answered,
      contributions: this.contributions,
      ...(code === undefined ? {} : { code }),
      ...(reason === undefined ? {} : { reason }),
    };
  }
}

/** Runs a session granted at check-in to its end; see {@link SessionRunner}. */
export function runSession(grant: SessionGrant, options: SessionOptions): Promise<SessionOutcome> {
  return new SessionRunner(grant, options).run();
}

/** An executor's answer on the wire: the seq added, bytes dropped (a `created` answer keeps handle and type). */
function wireAnswer(seq: number, a: ExecutorAnswer): WireAnswer {
  if (!a.ok) return { seq, ok: false, code: a.code, message: a.message };
  switch (a.kind) {
    case 'created':
      return { seq, ok: true, kind: 'created', handle: a.handle, type: a.type };
    case 'contributed':
      return { seq, ok: true, kind: 'contributed', aggregation: a.aggregation };
    case 'disposed':
      return { seq, ok: true, kind: 'disposed' };
  }
}
